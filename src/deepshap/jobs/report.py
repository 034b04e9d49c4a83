"""An HTML report of a job: a few images with their attributions, on the demo's gallery page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import JSONObject
from deepshap.jobs.images import ImageDecoder
from deepshap.jobs.results import JobResults

if TYPE_CHECKING:
    import pyarrow as pa

REPORT = "report"


def write_report(
    out: Path | str,
    n_images: int = 8,
    images: Sequence[int | str] | None = None,
    data: np.ndarray | None = None,
) -> Path:
    """Write ``out/report/index.html``: a summary of the job and ``image_plot`` figures of ``images``
    (positions or ids; default: the first ``n_images`` explained). The images are shown from ``data``
    (the job's array), or read again from the job's folder or ``.npy`` file."""
    import matplotlib.pyplot as plt
    import pyarrow.compute as pc

    from deepshap.demo.gallery import write_gallery
    from deepshap.demo.sections import SectionResult
    from deepshap.plots import image as image_plot

    job = JobResults(out)
    table = job.index()
    failed = table.filter(pc.is_valid(table["error"]))
    chosen = _choose(job, table, n_images, images)
    folder = job.out / REPORT
    folder.mkdir(exist_ok=True)
    sections = []
    for row in chosen:
        pixels = _pixels(job, row, data)
        explanation = job.load_explanation(row["position"])  # values may be channels-first, pixels are not
        labels = row["class_names"] or [f"class {c}" for c in row["classes"]]
        shown = None if pixels is None else pixels[None]
        figure = image_plot(explanation, pixel_values=shown, labels=np.asarray([labels]), show=False)
        name = f"image-{row['position']:08d}.png"
        figure.savefig(folder / name, dpi=80, bbox_inches="tight")
        plt.close(figure)
        text = [
            f"f(x) = {_numbers(row['fx'])}, base values {_numbers(row['base_values'])}, "
            f"additivity gap {row['gap']:.3g}, {row['seconds']:.3f} s."
        ]
        sections.append(SectionResult(f"{row['id']}", text, [name], row["seconds"]))
    n_failed = failed.num_rows
    if n_failed:
        listed = [f"{row['id']}: {row['error']}" for row in failed.slice(0, 20).to_pylist()]
        more = [f"... and {n_failed - 20} more (see the index)."] if n_failed > 20 else []
        sections.append(SectionResult(f"{n_failed} images not explained", listed + more))
    largest_gap = pc.max(table["gap"]).as_py()
    manifest = job.manifest
    summary = [
        f"{table.num_rows - n_failed} images explained by the {manifest['explainer']} explainer, "
        f"{n_failed} failed; largest additivity gap {largest_gap or 0.0:.3g}.",
        f"Attributions: {job.out / 'values.zarr'} ({manifest['dtype']}); index: {job.out / 'index.parquet'}.",
    ]
    return write_gallery(folder, summary, sections, heading="deepshap explain: report")


def _choose(
    job: JobResults, table: pa.Table, n_images: int, images: Sequence[int | str] | None
) -> list[JSONObject]:
    """The rows to draw: those of ``images``, or the first ``n_images`` explained."""
    import pyarrow.compute as pc

    if images is None:
        return table.filter(pc.is_null(table["error"])).slice(0, n_images).to_pylist()
    return [job.row(image) for image in images]  # a KeyError names an image not in the job


def _pixels(job: JobResults, row: JSONObject, data: np.ndarray | None) -> np.ndarray | None:
    """The image itself, for the plot's first column; None when it cannot be read again."""
    if data is not None:
        return np.asarray(data[row["position"]])
    path = job.manifest.get("data_path")
    if path is None:
        return None
    source = Path(path)
    if source.is_dir():
        settings = job.manifest["decoder"]
        size = None if settings["size"] is None else tuple(settings["size"])
        decoder = ImageDecoder(size, settings["resize"], settings["crop"], settings["mode"])
        return decoder.decode(source / row["id"])
    if source.suffix == ".npy":
        from deepshap.jobs.data import NpyRows

        return NpyRows(source)[row["position"] : row["position"] + 1][0]
    return None


def _numbers(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"

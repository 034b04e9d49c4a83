"""Reopen a job's results: the index as a table and one image's Explanation for ``image_plot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import JSONObject

if TYPE_CHECKING:
    import pyarrow as pa
    from zarr.types import AnyArray

    from deepshap.explanation import Explanation

from deepshap.jobs.store import INDEX, INDEX_PARTS, MANIFEST, VALUES, read_index_parts


class JobResults:
    """A job's store, opened read-only (a job still running or stopped half-way can be read too)."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out).expanduser()
        manifest_path = self.out / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{self.out} holds no deepshap job (no {MANIFEST}).")
        self.manifest: JSONObject = json.loads(manifest_path.read_text())

    def index(self) -> pa.Table:
        """The index as a pyarrow Table, one row per image in image order."""
        import pyarrow.parquet as pq

        path = self.out / INDEX
        if path.is_file():
            return pq.read_table(path)
        return read_index_parts(self.out).sort_by("position")

    def values(self) -> AnyArray:
        """The attributions as a read-only Zarr array ``(N, *input_shape, R)`` (NaN for failed images)."""
        import zarr

        return zarr.open_array(str(self.out / VALUES), mode="r")

    def row(self, image: int | str) -> JSONObject:
        """The index row of an image, by position (read from its chunk's index file) or id (found with
        a filter): the whole index is not read."""
        import pyarrow.dataset as ds

        from deepshap.jobs.store import index_part, index_schema

        if isinstance(image, int | np.integer):
            parts = [index_part(self.out, int(image) // int(self.manifest["chunk_size"]))]
            condition = ds.field("position") == int(image)
        else:
            final = self.out / INDEX
            parts = [final] if final.is_file() else sorted((self.out / INDEX_PARTS).glob("chunk-*.parquet"))
            condition = ds.field("id") == str(image)
        parts = [part for part in parts if part.is_file()]
        found = []
        if parts:
            dataset = ds.dataset([str(p) for p in parts], format="parquet", schema=index_schema())
            found = dataset.to_table(filter=condition).to_pylist()
        if not found:
            raise KeyError(f"no image {image!r} in {self.out}.")
        return found[0]

    def load_explanation(self, image: int | str, data: np.ndarray | None = None) -> Explanation:
        """One image's :class:`~deepshap.Explanation` (values ``(1, *input_shape, R)``, base values,
        explained classes and their names); ``data`` (the image) is shown by ``image_plot`` if given."""
        from deepshap.explanation import Explanation

        row = self.row(image)
        if row["error"] is not None:
            raise ValueError(f"image {row['id']!r} was not explained: {row['error']}")
        values = np.asarray(self.values()[row["position"]], dtype=np.float32)[None]
        names = row["class_names"]
        return Explanation(
            values=values,
            base_values=np.asarray([row["base_values"]]),
            data=None if data is None else np.asarray(data)[None],
            output_names=None if names is None else np.asarray([names], dtype=object),
            output_indexes=np.asarray([row["classes"]], dtype=np.int64),
        )


def open_job(out: Path | str) -> JobResults:
    """Open the results a job wrote to ``out``."""
    return JobResults(out)

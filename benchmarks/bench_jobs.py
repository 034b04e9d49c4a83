"""The local job engine against its floor, and the job's peak memory against the dataset's size.

Throughput: ``explain_dataset`` (local engine, Zarr store, Parquet index) against the floor, the same
explainer built once and called directly on the same batches in a loop (results kept in memory, nothing
written). Target: the job at least 0.9x the floor's throughput.

* ``deep``: the seed-002 MNIST CNN (PyTorch), DeepExplainer, 100 background digits, 200 digits in
  chunks of 10, all 10 outputs;
* ``partition``: EfficientNet-Lite0 (pretrained, from the demo extra), the Partition explainer with
  blur(128,128), 200 evaluations per image, the top 4 classes, 10 photos (224x224) in chunks of 2.

Memory (``--memory``): peak RSS of a fresh process running a Deep job on 1,000 and on 10,000 digits
(background 2, the top class: the job's memory is measured, not the model's); target: within 10% of
each other.

Turns alternate floor and job and the best of each counts (the machine is shared). Run with
``python benchmarks/bench_jobs.py [--cases deep,partition] [--repeats 3] [--memory]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deep_torch import seed_cnn  # noqa: E402
from harness import mnist_digits, peak_rss_mb  # noqa: E402

DEEP_IMAGES, DEEP_BATCH, DEEP_BACKGROUND = 200, 10, 100
PARTITION_IMAGES, PARTITION_BATCH, PARTITION_EVALS, TOP_K = 10, 2, 200, 4


def deep_case(n_images: int = DEEP_IMAGES) -> tuple[Callable[[], Any], Callable[[Path], Any], int]:
    import deepshap
    from deepshap.jobs import explain_dataset

    model = seed_cnn()
    background = mnist_digits(DEEP_BACKGROUND, 0)[:, None]
    images = mnist_digits(n_images, 1)[:, None]

    def floor() -> list[Any]:
        explainer = deepshap.DeepExplainer(model, background)
        return [explainer(images[i : i + DEEP_BATCH]) for i in range(0, n_images, DEEP_BATCH)]

    def job(out: Path) -> Any:
        return explain_dataset(
            model, images, out, "deep", background=background, batch_size=DEEP_BATCH, quiet=True
        )

    return floor, job, n_images


def partition_case(n_images: int = PARTITION_IMAGES) -> tuple[Callable[[], Any], Callable[[Path], Any], int]:
    import deepshap
    from deepshap.datasets import sample_images
    from deepshap.demo.models import efficientnet_classifier
    from deepshap.jobs import explain_dataset

    model = efficientnet_classifier()
    photos = sample_images()[0]
    images = np.concatenate([photos, photos[:, :, ::-1]])[:n_images]  # mirrored: 10 distinct
    masker_text = "blur(128,128)"

    def floor() -> list[Any]:
        explainer = deepshap.PartitionExplainer(model, deepshap.maskers.Image(masker_text, images[0].shape))
        top = deepshap.Explanation.argsort.flip[:TOP_K]
        return [
            explainer(images[i : i + PARTITION_BATCH], max_evals=PARTITION_EVALS, outputs=top, silent=True)
            for i in range(0, n_images, PARTITION_BATCH)
        ]

    def job(out: Path) -> Any:
        options = {"max_evals": PARTITION_EVALS, "masker": masker_text}
        return explain_dataset(
            model, images, out, "partition", background=1, batch_size=PARTITION_BATCH, outputs=TOP_K,
            explainer_options=options, quiet=True,
        )  # fmt: skip

    return floor, job, n_images


CASES = {"deep": deep_case, "partition": partition_case}


def compare(name: str, repeats: int, n_images: int) -> dict[str, float]:
    floor, job, n_images = CASES[name](n_images)
    floor_times, job_times = [], []
    workdir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        for turn in range(repeats):
            start = time.perf_counter()
            floor()
            floor_times.append(time.perf_counter() - start)
            out = workdir / f"job-{turn}"
            start = time.perf_counter()
            job(out)
            job_times.append(time.perf_counter() - start)
            shutil.rmtree(out)
            print(
                f"  {name} turn {turn}: floor {floor_times[-1]:.2f} s, job {job_times[-1]:.2f} s", flush=True
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best_floor, best_job = min(floor_times), min(job_times)
    return {
        "floor_images_per_s": n_images / best_floor,
        "job_images_per_s": n_images / best_job,
        "ratio": best_floor / best_job,
        "floor_s": floor_times,
        "job_s": job_times,
    }


def memory_job(n_images: int) -> None:
    """A Deep job on ``n_images`` digits (a memmapped .npy, as a large dataset would be given)."""
    from deepshap.jobs import explain_dataset

    with tempfile.TemporaryDirectory(prefix="bench-jobs-memory-") as folder:
        data = Path(folder) / "digits.npy"
        digits = mnist_digits(1000, 1)[:, None]
        array = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=(n_images, 1, 28, 28))
        for start in range(0, n_images, 1000):
            array[start : start + 1000] = digits[: n_images - start]
        array.flush()
        del array
        explain_dataset(
            seed_cnn(), str(data), Path(folder) / "out", "deep", background=2, outputs=1, batch_size=100,
            quiet=True,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="deep,partition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deep-images", type=int, default=DEEP_IMAGES, help="a multiple of the chunk")
    parser.add_argument("--partition-images", type=int, default=PARTITION_IMAGES, help="at most 10")
    parser.add_argument(
        "--memory", action="store_true", help="also measure peak RSS at 1,000 and 10,000 images"
    )
    args = parser.parse_args()
    for name in filter(None, args.cases.split(",")):
        result = compare(name, args.repeats, getattr(args, f"{name}_images"))
        floor, job = result["floor_images_per_s"], result["job_images_per_s"]
        print(
            f"{name:10s} floor {floor:8.2f} img/s  job {job:8.2f} img/s  job/floor {result['ratio']:.2f}  "
            f"(floor s {_list(result['floor_s'])}; "
            f"job s {_list(result['job_s'])})",
            flush=True,
        )
    if args.memory:
        target = f"{Path(__file__).resolve()}:memory_job"
        small, large = peak_rss_mb(target, 1000, timeout=3600), peak_rss_mb(target, 10000, timeout=3600)
        print(f"peak RSS: 1,000 images {small:.0f} MiB, 10,000 images {large:.0f} MiB ({large / small:.3f}x)")


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()

"""The local job engine against its floor, and the job's peak memory against the dataset's size.

Throughput: ``explain_dataset`` (local engine, Zarr store, Parquet index) against the floor, the same
explainer built once and called directly on the same batches in a loop (results kept in memory, nothing
written). Target: the job at least 0.9x the floor's throughput.

* ``deep``: the seed-002 MNIST CNN (PyTorch), DeepExplainer, 100 background digits, 200 digits in
  chunks of 10, all 10 outputs;
* ``partition``: EfficientNet-Lite0 (pretrained, from the demo extra), the Partition explainer with
  blur(128,128), 200 evaluations per image, the top 4 classes, 10 photos (224x224) in chunks of 2.

Memory (``--memory``): peak RSS of a fresh process running a Deep job on 1,000 and on 10,000 digits
(see :func:`memory_job`); target: within 10% of each other.

Turns alternate floor and job and the best of each counts. Both run with ``--threads`` numeric threads
(default 1). Wall time is the target's measure; the CPU time of the process (all its threads) is printed
too, because on a shared, oversubscribed machine the wall time measures the neighbours. Run with
``python benchmarks/bench_jobs.py [--cases deep,partition] [--repeats 3] [--memory]``.
"""

from __future__ import annotations

import argparse
import functools
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
from harness import limit_threads, mnist_digits, peak_rss_mb  # noqa: E402

DEEP_IMAGES, DEEP_BATCH, DEEP_BACKGROUND = 200, 10, 100
PARTITION_IMAGES, PARTITION_BATCH, PARTITION_EVALS, TOP_K = 10, 2, 200, 4


def cases() -> list[Any]:
    """None for ``run.py``: the job's floor is its own loop over the same batches (run this file directly)."""
    return []


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


def compare(name: str, repeats: int, n_images: int) -> dict[str, Any]:
    """Best wall and CPU (this process, all threads) seconds of the floor and the job, alternating."""
    floor, job, n_images = CASES[name](n_images)
    times: dict[str, list[tuple[float, float]]] = {"floor": [], "job": []}
    workdir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        for turn in range(repeats):
            times["floor"].append(_timed(floor))
            out = workdir / f"job-{turn}"
            times["job"].append(_timed(functools.partial(job, out)))
            shutil.rmtree(out)
            (floor_wall, floor_cpu), (job_wall, job_cpu) = times["floor"][-1], times["job"][-1]
            print(
                f"  {name} turn {turn}: floor {floor_wall:.2f} s wall {floor_cpu:.2f} s CPU, "
                f"job {job_wall:.2f} s wall {job_cpu:.2f} s CPU",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = {key: (min(w for w, _ in runs), min(c for _, c in runs)) for key, runs in times.items()}
    return {
        "floor_images_per_s": n_images / best["floor"][0],
        "job_images_per_s": n_images / best["job"][0],
        "wall_ratio": best["floor"][0] / best["job"][0],
        "cpu_ratio": best["floor"][1] / best["job"][1],
    }


def _timed(work: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def memory_job(n_images: int) -> None:
    """A Deep job on ``n_images`` digits streamed as batches, every output of a linear model explained.

    The model is tiny so that the job's own memory shows: its 10 outputs make the attributions 31 KB per
    image (313 MB for 10,000), so a job that kept them would be seen at once. The digits come from a
    generator, not a memmap, whose pages would count in the peak as they are read.
    """
    import torch

    from deepshap.jobs import explain_dataset

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10)).eval()
    digits = mnist_digits(1000, 1)[:, None]
    batches = (digits[: min(100, n_images - start)] for start in range(0, n_images, 100))
    with tempfile.TemporaryDirectory(prefix="bench-jobs-memory-") as folder:
        explain_dataset(
            model, batches, Path(folder) / "out", "deep", background=digits[:1], batch_size=100,
            n_images=n_images, quiet=True,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="deep,partition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads for floor and job alike")
    parser.add_argument("--deep-images", type=int, default=DEEP_IMAGES, help="a multiple of the chunk")
    parser.add_argument("--partition-images", type=int, default=PARTITION_IMAGES, help="at most 10")
    parser.add_argument(
        "--memory", action="store_true", help="also measure peak RSS at 1,000 and 10,000 images"
    )
    args = parser.parse_args()
    limit_threads(args.threads)
    for name in filter(None, args.cases.split(",")):
        result = compare(name, args.repeats, getattr(args, f"{name}_images"))
        floor, job = result["floor_images_per_s"], result["job_images_per_s"]
        print(
            f"{name:10s} floor {floor:.3f} img/s, job {job:.3f} img/s; job/floor throughput: "
            f"{result['wall_ratio']:.3f} (wall), {result['cpu_ratio']:.3f} (CPU)",
            flush=True,
        )
    if args.memory:
        target = f"{Path(__file__).resolve()}:memory_job"
        small, large = peak_rss_mb(target, 1000, timeout=3600), peak_rss_mb(target, 10000, timeout=3600)
        print(f"peak RSS: 1,000 images {small:.0f} MiB, 10,000 images {large:.0f} MiB ({large / small:.3f}x)")


if __name__ == "__main__":
    main()

"""Partition explainer with the Image masker against its floor and shap's Partition explainer.

Cases: two real 224x224 photos (skimage's chelsea and coffee), a light model (a small strided CNN in
PyTorch, 1000 softmax outputs, one thread), the top 4 classes explained, batches of 50:

* blur(128,128) at 500 and 2000 evaluations per image; target: within 1.3x of the floor;
* inpaint_telea at 100 evaluations; target: at least 3x faster than shap;
* memory: ``outputs=None`` (all 1000 classes) for one image at 100 evaluations, peak RSS of a fresh
  process; target under 1 GB (shap: about 10 GB).

The floor is the model's own time for the same number of evaluations, in batches of batch_size, on
ready-made batches. Run alone with ``python benchmarks/bench_partition.py`` (prints timings and ratios;
``--shap-memory`` also measures shap's peak, stopped at 12 GB), or through the harness.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BATCH_SIZE = 50
TOP_K = 4
N_CLASSES = 1000
PHOTOS = ("chelsea", "coffee")
_SHAP_MEMORY_CAP_MB = 12_000


def photos() -> np.ndarray:
    """The two photos, (2, 224, 224, 3) float32 in [0, 255]."""
    from deepshap.datasets import sample_images

    return sample_images(list(PHOTOS))[0]


def light_model() -> Callable[[np.ndarray], np.ndarray]:
    """A small CNN on NHWC numpy batches in [0, 255] -> softmax over 1000 classes (float32)."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=4, padding=2),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, N_CLASSES),
        nn.Softmax(dim=1),
    ).eval()
    with torch.no_grad():
        net[6].weight.mul_(20.0)  # spread the class scores so the top classes are distinct

    def f(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2)
            return net(batch / 255.0).numpy()

    return f


def _floor(max_evals: int) -> Callable[[], Callable[[], Any]]:
    """The model alone on ready-made batches: ``max_evals`` evaluations per photo."""

    def make() -> Callable[[], Any]:
        f, X = light_model(), photos()
        batches = [np.ascontiguousarray(np.repeat(x[None], BATCH_SIZE, axis=0)) for x in X]
        sizes = [BATCH_SIZE] * (max_evals // BATCH_SIZE) + (
            [max_evals % BATCH_SIZE] if max_evals % BATCH_SIZE else []
        )
        return lambda: [f(batch[:size]) for batch in batches for size in sizes]

    return make


def _deepshap(mask_value: str, max_evals: int) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        import deepshap

        f, X = light_model(), photos()
        explainer = deepshap.Explainer(f, deepshap.maskers.Image(mask_value, X[0].shape))
        top = deepshap.Explanation.argsort.flip[:TOP_K]
        return lambda: explainer(X, max_evals=max_evals, batch_size=BATCH_SIZE, outputs=top, silent=True)

    return make


def _shap(mask_value: str, max_evals: int) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        import shap

        f, X = light_model(), photos()
        explainer = shap.Explainer(f, shap.maskers.Image(mask_value, X[0].shape))
        top = shap.Explanation.argsort.flip[:TOP_K]
        return lambda: explainer(X, max_evals=max_evals, batch_size=BATCH_SIZE, outputs=top, silent=True)

    return make


SPEED_CASES = (
    ("partition_blur_500", "blur(128,128)", 500, "target <= 1.3x floor"),
    ("partition_blur_2000", "blur(128,128)", 2000, "target <= 1.3x floor"),
    ("partition_inpaint_telea_100", "inpaint_telea", 100, "target >= 3x faster than shap"),
)


def cases() -> list[Any]:
    """The timing cases for the shared harness (memory: :func:`memory_report`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import Case

    return [
        Case(
            name=name,
            deepshap=_deepshap(mask_value, max_evals),
            floor=_floor(max_evals),
            shap=_shap(mask_value, max_evals),
            repeats=3,
            note=f"2 photos 224x224, small CNN (1000 classes, 1 thread), {mask_value}, {max_evals} evals, "
            f"top {TOP_K}, batch {BATCH_SIZE}; floor = the model on {max_evals} evals per photo; {target}",
        )
        for name, mask_value, max_evals, target in SPEED_CASES
    ]


# ---------------------------------------------------------------------------------------------- memory
_MEMORY_SNIPPET = """
import resource, sys
sys.path.insert(0, {bench_dir!r})
import bench_partition as b
f, X = b.light_model(), b.photos()[:1]
lib = __import__({library!r})
explainer = lib.Explainer(f, lib.maskers.Image("blur(128,128)", X[0].shape))
explanation = explainer(X, max_evals=100, batch_size=b.BATCH_SIZE, outputs=None, silent=True)
assert explanation.values.shape[-1] == b.N_CLASSES
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss_of_run(library: str, cap_mb: float | None = None) -> float:
    """Peak RSS (MB) of a fresh process explaining one photo, all 1000 classes, 100 evaluations.

    With ``cap_mb`` the process is watched and stopped once it passes the cap (returns ``inf``).
    """
    code = _MEMORY_SNIPPET.format(bench_dir=str(Path(__file__).resolve().parent), library=library)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while process.poll() is None:
        if cap_mb is not None and _rss_mb(process.pid) > cap_mb:
            process.kill()
            process.wait()
            return float("inf")
        time.sleep(0.05)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"memory run of {library} failed:\n{err.decode()[-2000:]}")
    return float(out.decode().split()[-1])


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def memory_report(with_shap: bool = False) -> dict[str, float]:
    """Peak RSS in MB for deepshap (and shap, capped at 12 GB) with ``outputs=None`` on 1000 classes."""
    report = {"deepshap_peak_rss_mb": peak_rss_of_run("deepshap")}
    if with_shap:
        report["shap_peak_rss_mb"] = peak_rss_of_run("shap", cap_mb=_SHAP_MEMORY_CAP_MB)
    return report


# ---------------------------------------------------------------------------------------------- main
def _best_of(make: Callable[[], Callable[[], Any]], repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeats`` runs after a warm-up (JIT for shap).

    CPU time is the steadier measure on a shared machine for single-threaded work (the blur cases);
    inpainting runs threads, so its wall time is the one that counts.
    """
    fn = make()
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-shap", action="store_true", help="skip shap's timings")
    parser.add_argument("--shap-memory", action="store_true", help="also measure shap's peak RSS (~10 GB)")
    args = parser.parse_args()
    for name, mask_value, max_evals, target in SPEED_CASES:
        runs = {"floor": _floor(max_evals), "deepshap": _deepshap(mask_value, max_evals)}
        if not args.no_shap:
            runs["shap"] = _shap(mask_value, max_evals)
        timings = {who: _best_of(make, args.repeats) for who, make in runs.items()}
        floor_wall, floor_cpu = timings["floor"]
        parts = [
            f"{who} {wall:.3f} s wall ({wall / floor_wall:.2f}x floor), "
            f"{cpu:.3f} s cpu ({cpu / floor_cpu:.2f}x)"
            for who, (wall, cpu) in timings.items()
        ]
        if "shap" in timings:
            parts.append(f"shap / deepshap {timings['shap'][0] / timings['deepshap'][0]:.2f}x wall")
        print(f"{name} [{target}]: " + "; ".join(parts), flush=True)
    memory = memory_report(with_shap=args.shap_memory)
    print("memory, outputs=None, 1000 classes, 1 photo, 100 evals: " + json.dumps(memory))


if __name__ == "__main__":
    main()

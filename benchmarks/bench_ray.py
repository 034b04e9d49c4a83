"""The Ray engine against the local engine: DeepExplainer on the seed-002 CNN, on this machine.

Run on its own: ``python benchmarks/bench_ray.py [--images 192] [--chunk 16] [--rounds 2]``. The whole
measurement runs in a loopback-only network namespace (``deepshap.jobs._loopback``) with a local Ray
cluster of as many CPUs as the machine has, so it is not one of ``run.py``'s in-process cases.

Each configuration explains the same images (100 background digits, all 10 outputs, chunks of ``--chunk``
images) through ``Engine.run`` with a ``commit`` that keeps the values, as a job does:
- ``local Nt``: the local engine, torch with N threads;
- ``ray AxT``: the Ray engine, A actors of T threads each (each actor imports torch and builds the model).
Reported per configuration (best of ``--rounds``, the configurations taking turns): the job's wall time,
its throughput over the whole job, its steady throughput (from the commit of the first third of the
chunks to the last commit: the actors' start-up excluded), and images per CPU-second, counting every
process of the namespace (driver, raylet, GCS, actors): on a machine shared with other work, wall times
depend on how the scheduler shares the cores between process groups, CPU time does not.
The target: ``ray 2x1`` at least 0.8x ``local 2t``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

N_BACKGROUND = 100
CONFIGS = ("local 2t", "ray 2x1", "local 1t", "ray 1x1")


def cases() -> list[Any]:
    """None for ``run.py``: this benchmark needs its own network namespace (run this file directly)."""
    return []


@dataclass(frozen=True)
class MakeDeepWorker:
    """The picklable ``make_worker``: DeepExplainer on the seed-002 CNN over ``background``."""

    background: np.ndarray
    chunk: int

    def __call__(self) -> Any:
        import torch
        from bench_deep_torch import seed_cnn
        from harness import steady_allocator

        import deepshap
        from deepshap.jobs.engine import ChunkResult, WorkItem

        steady_allocator()  # in each actor as in the driver: page faults out of the comparison
        explainer = deepshap.DeepExplainer(
            seed_cnn(), torch.from_numpy(self.background), batch_size=N_BACKGROUND * self.chunk
        )

        def explain(item: WorkItem) -> ChunkResult:
            values = np.asarray(explainer(torch.from_numpy(item.images)).values, dtype=np.float32)
            return ChunkResult(item.chunk, values, [{"id": image_id} for image_id in item.ids])

        return explain


class Timeline:
    """``commit`` and ``progress`` of one job: when each chunk was committed."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: dict[int, np.ndarray] = {}

    def commit(self, result: Any) -> None:
        self.values[result.chunk] = result.values
        self.times.append(time.perf_counter())

    def update(self, n: int = 1) -> None:
        pass


def process_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) used so far by each process of this PID namespace."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        seconds[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


class CpuMeter(threading.Thread):
    """CPU seconds the namespace's processes use from start to stop, those that exit meanwhile included.

    Each process's time is sampled every 0.2 s and its last sample kept, since an exited process's time is
    gone (or folded into its parent's children's time, which is not counted, so nothing counts twice).
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.base = process_cpu_seconds()
        self.last = dict(self.base)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.last.update(process_cpu_seconds())

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.last.update(process_cpu_seconds())
        return sum(seconds - self.base.get(pid, 0.0) for pid, seconds in self.last.items())


def run_config(name: str, items: list[Any], make_worker: MakeDeepWorker) -> dict[str, float]:
    """One job of configuration ``name``; its wall time and throughputs."""
    import torch

    kind, shape = name.split()
    if kind == "local":
        from deepshap.jobs.engines.local import LocalEngine

        torch.set_num_threads(int(shape.rstrip("t")))
        engine: Any = LocalEngine()
    else:
        from deepshap.jobs.engines.ray_engine import RayEngine

        actors, threads = map(int, shape.split("x"))
        engine = RayEngine(num_actors=actors, threads_per_actor=threads)
    timeline, meter = Timeline(), CpuMeter()
    meter.start()
    start = time.perf_counter()
    engine.run(items, make_worker, timeline.commit, timeline)
    wall = time.perf_counter() - start
    cpu = meter.stop()
    chunk = len(items[0].ids)
    n_images = chunk * len(items)
    first = len(items) // 3
    steady_images = chunk * (len(items) - 1 - first)
    steady_s = timeline.times[-1] - timeline.times[first]
    assert sorted(timeline.values) == list(range(len(items))), "a chunk is missing or doubled"
    return {
        "wall_s": wall,
        "job_img_s": n_images / wall,
        "steady_img_s": steady_images / steady_s,
        "img_per_cpu_s": n_images / cpu,
    }


def measure(config_json: str) -> None:
    """Inside the namespace: run every configuration ``rounds`` times in turn; print JSON results."""
    from harness import mnist_digits, steady_allocator

    from deepshap.jobs import _loopback
    from deepshap.jobs.engine import WorkItem

    steady_allocator()
    config = json.loads(config_json)
    n_images, chunk, rounds = config["images"], config["chunk"], config["rounds"]
    images = mnist_digits(n_images, 1)[:, None]
    make_worker = MakeDeepWorker(mnist_digits(N_BACKGROUND, 0)[:, None], chunk)
    items = [
        WorkItem(k, [str(i) for i in range(k * chunk, (k + 1) * chunk)], images[k * chunk : (k + 1) * chunk])
        for k in range(n_images // chunk)
    ]
    ray = _loopback.start_local_ray(num_cpus=os.cpu_count() or 1)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    try:
        for _ in range(rounds):
            for name in CONFIGS:
                results[name].append(run_config(name, items, make_worker))
                print(f"# {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    finally:
        ray.shutdown()
    print("RESULTS " + json.dumps(results), flush=True)


def report(results: dict[str, list[dict[str, float]]], images: int, chunk: int) -> str:
    best = {
        name: {key: (min if key == "wall_s" else max)(run[key] for run in runs) for key in runs[0]}
        for name, runs in results.items()
    }
    lines = [
        f"DeepExplainer, seed-002 CNN, {N_BACKGROUND} background, 10 outputs, {images} images in chunks of "
        f"{chunk}; {os.cpu_count()} CPUs; best of {len(next(iter(results.values())))} rounds",
        f"{'config':<10}{'wall s':>9}{'job img/s':>11}{'steady img/s':>14}{'img/CPU-s':>11}",
    ]
    for name, run in best.items():
        lines.append(
            f"{name:<10}{run['wall_s']:>9.1f}{run['job_img_s']:>11.2f}{run['steady_img_s']:>14.2f}"
            f"{run['img_per_cpu_s']:>11.3f}"
        )
    for ray_name, local_name in (("ray 2x1", "local 2t"), ("ray 1x1", "local 1t"), ("ray 2x1", "ray 1x1")):
        ratios = {key: best[ray_name][key] / best[local_name][key] for key in best[ray_name]}
        lines.append(
            f"{ray_name} / {local_name}: steady {ratios['steady_img_s']:.2f}x, whole job "
            f"{ratios['job_img_s']:.2f}x, per CPU-second {ratios['img_per_cpu_s']:.2f}x"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from deepshap.jobs import _loopback

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole measurement")
    args = parser.parse_args(argv)
    config = json.dumps({"images": args.images, "chunk": args.chunk, "rounds": args.rounds})
    src = HERE.parent / "src"
    path = os.pathsep.join([str(src), str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}
    done = _loopback.call_isolated("bench_ray:measure", config, timeout=args.timeout, env=env)
    sys.stderr.write("".join(line + "\n" for line in done.stderr.splitlines() if line.startswith("# ")))
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    if done.returncode != 0 or not results:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        return 1
    print(report(json.loads(results[-1].removeprefix("RESULTS ")), args.images, args.chunk))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

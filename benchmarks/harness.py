"""A tiny benchmark harness: deepshap vs. its floor, shap and Captum on the same work, in one process.

Each ``benchmarks/bench_<name>.py`` defines ``cases() -> list[Case]``. A case holds zero-argument
callables that each do the measured work once (all set-up done before, outside the callables):
``deepshap``, ``floor`` (the bare framework passes the algorithm cannot avoid, e.g. the forward and
backward passes over the same rows), and optionally ``shap`` and ``captum``. Every callable is warmed up
once, then the best of ``repeats`` wall times is kept (deepshap and its floor take turns). A shap or
Captum callable that raises is reported as failing (shap is broken on many models); a failing deepshap
or floor callable fails the case.

Memory is measured separately with :func:`peak_rss_mb`, which runs a function in a fresh interpreter.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
COLUMNS = (
    ("case", 34),
    ("deepshap s", 11),
    ("floor s", 9),
    ("ds/floor", 9),
    ("shap s", 9),
    ("shap/ds", 8),
    ("captum s", 9),
    ("captum/ds", 9),
)

Work = Callable[[], object]
Clock = Callable[[], float]


@dataclass
class Case:
    """One piece of work timed with deepshap, its floor and optionally shap and Captum."""

    name: str
    deepshap: Work
    floor: Work
    shap: Work | None = None
    captum: Work | None = None
    repeats: int = 3
    note: str = ""


@dataclass
class CaseResult:
    """Best wall times in seconds; ``None`` when not given, with the error text when a rival failed."""

    name: str
    deepshap_s: float
    floor_s: float
    shap_s: float | None = None
    captum_s: float | None = None
    errors: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def over_floor(self) -> float:
        return ratio(self.deepshap_s, self.floor_s)

    @property
    def shap_speedup(self) -> float | None:
        return None if self.shap_s is None else ratio(self.shap_s, self.deepshap_s)

    @property
    def captum_speedup(self) -> float | None:
        return None if self.captum_s is None else ratio(self.captum_s, self.deepshap_s)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, infinite when the denominator is below the clock's resolution."""
    return numerator / denominator if denominator > 0 else math.inf


def best_time(work: Work, repeats: int, clock: Clock = time.perf_counter) -> float:
    """Run ``work`` once to warm up, then ``repeats`` times; return the fastest run in seconds."""
    return best_times([work], repeats, clock)[0]


def best_times(works: Sequence[Work], repeats: int, clock: Clock = time.perf_counter) -> list[float]:
    """Warm each of ``works`` up once, then run them in turn ``repeats`` times; the fastest run of each.

    Taking turns makes a slow spell of a shared machine hit every callable alike, which keeps their
    ratio steadier than timing one after the other.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for work in works:
        if callable(work()):
            raise TypeError(
                "A Case callable returned a callable: it is a set-up factory, so only the set-up would "
                "be timed. Call the factory in cases() and pass the work it returns."
            )
    best = [math.inf] * len(works)
    for _ in range(repeats):
        for i, work in enumerate(works):
            start = clock()
            work()
            best[i] = min(best[i], clock() - start)
    return best


def time_rival(work: Work | None, repeats: int, clock: Clock) -> tuple[float | None, str | None]:
    """Time shap or Captum; a rival that raises is a result ("fails: ...") rather than a crash."""
    if work is None:
        return None, None
    try:
        return best_time(work, repeats, clock), None
    except Exception as exc:  # the rival library's failure is what we report
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return None, f"{type(exc).__name__}: {first_line[:160]}"


def run_case(case: Case, repeats: int | None = None, clock: Clock = time.perf_counter) -> CaseResult:
    """Time every callable of ``case`` (``repeats`` overrides the case's own count)."""
    n = case.repeats if repeats is None else repeats
    result = CaseResult(case.name, *best_times([case.deepshap, case.floor], n, clock))
    result.note = case.note
    result.shap_s, shap_error = time_rival(case.shap, n, clock)
    result.captum_s, captum_error = time_rival(case.captum, n, clock)
    result.errors = {name: err for name, err in (("shap", shap_error), ("captum", captum_error)) if err}
    return result


def fmt(value: float | None, rival_failed: bool = False) -> str:
    """A table cell: 3 significant digits, "fails" for a rival that raised, "-" when not measured."""
    if value is None:
        return "fails" if rival_failed else "-"
    return f"{value:.3g}"


def table_line(cells: tuple[str, ...]) -> str:
    """Cells padded to the column widths: the case name left-aligned, numbers right-aligned."""
    widths = [width for _, width in COLUMNS]
    return " ".join(
        f"{cell:>{width}}" if i else f"{cell:<{width}}"
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


def header() -> str:
    return table_line(tuple(title for title, _ in COLUMNS))


def format_row(result: CaseResult) -> str:
    """One table row, then one indented line per note or rival failure."""
    row = table_line(
        (
            result.name,
            fmt(result.deepshap_s),
            fmt(result.floor_s),
            fmt(result.over_floor),
            fmt(result.shap_s, "shap" in result.errors),
            fmt(result.shap_speedup, "shap" in result.errors),
            fmt(result.captum_s, "captum" in result.errors),
            fmt(result.captum_speedup, "captum" in result.errors),
        )
    )
    extra = [f"    note: {result.note}"] if result.note else []
    extra += [f"    {name} fails: {error}" for name, error in result.errors.items()]
    return "\n".join([row, *extra])


def format_table(results: Iterable[CaseResult]) -> str:
    return "\n".join([header(), *(format_row(result) for result in results)])


def steady_allocator() -> bool:
    """Tell glibc's malloc to keep freed memory, so that page faults do not decide the timings.

    By default glibc hands big freed blocks back to the OS, and the next allocation of that size faults
    every page in again. Whether a model's 30 MB input tensor does this changes from process to process
    (we counted 0 to 40,000 page faults per run for the same work), which swung the ratios of one
    benchmark by 15%. With the thresholds raised, the floor, deepshap and its rivals all run without
    that noise. Returns whether the setting took (glibc only; elsewhere nothing changes).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 1 << 30))


def limit_threads(n: int) -> None:
    """Use ``n`` threads in every numeric library, so that all contestants run under the same limit.

    Environment variables cover BLAS/OpenMP and TensorFlow (read when they initialise, so call this
    before importing the bench files); torch is told directly when it is installed.
    """
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(n)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


_RSS_CHILD = """
import importlib, importlib.util, json, resource, sys
target, args = sys.argv[1], json.loads(sys.argv[2])
where, _, function = target.rpartition(":")
if where.endswith(".py"):
    spec = importlib.util.spec_from_file_location("_rss_target", where)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    module = importlib.import_module(where)
getattr(module, function)(*args)
try:  # Linux: this process's own high-water mark (ru_maxrss would start from the parent's at fork)
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    peak = int(line.split()[1]) * 1024
except OSError:  # macOS: ru_maxrss is in bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_bytes": peak}))
"""


def peak_rss_mb(callable_path: str, *args: object, timeout: float = 600.0) -> float:
    """Peak resident memory (MiB) of a fresh interpreter that imports and calls one function.

    ``callable_path`` is ``"package.module:function"`` or ``"path/to/file.py:function"``; ``args`` must be
    JSON-serialisable. The number includes the interpreter and its imports, so compare cases against a
    floor measured the same way. The child inherits the environment, thread limits included.
    """
    where, sep, function = callable_path.rpartition(":")
    if not sep or not where or not function:
        raise ValueError(
            f"callable_path must look like 'module:function' or 'file.py:function', got {callable_path!r}"
        )
    completed = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, callable_path, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{callable_path} failed in the memory subprocess:\n{completed.stderr[-3000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return report["peak_rss_bytes"] / 2**20


def mnist_digits(n: int, seed: int) -> np.ndarray:
    """``n`` real MNIST digits ``(n, 28, 28)`` float32 in [0, 1] from the offline set, picked by ``seed``."""
    from deepshap.datasets import mnist

    (x_train, _), _ = mnist()
    return x_train[np.random.default_rng(seed).choice(len(x_train), n, replace=False)]

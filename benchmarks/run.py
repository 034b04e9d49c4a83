"""Run the cases in ``benchmarks/bench_*.py``: ``python benchmarks/run.py [-k SUBSTR] [--repeats N]``.

Prints the machine, the library versions, then one table row per case as it finishes: deepshap's best
time, the floor's, their ratio, and shap's and Captum's times with their ratios to deepshap.
Exits non-zero if a deepshap or floor callable fails, or if nothing matches ``-k``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # bench files import the harness as a top-level module

from harness import Case, format_row, header, limit_threads, run_case, steady_allocator  # noqa: E402

LIBRARIES = ("deepshap", "numpy", "torch", "tensorflow-cpu", "keras", "shap", "captum")


def machine_info(threads: int) -> list[str]:
    """CPU, Python and library versions (read from package metadata, without importing them)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"machine: {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", {os.cpu_count()} CPUs ({usable} usable), {threads} threads per library",
        f"python {platform.python_version()}; " + ", ".join(versions),
    ]


def discover(directory: Path) -> list[ModuleType]:
    """Import every ``bench_*.py`` in ``directory``, in name order."""
    modules = []
    for path in sorted(directory.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load benchmark file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses and pickling look their module up by name
        spec.loader.exec_module(module)
        if not callable(getattr(module, "cases", None)):
            raise TypeError(f"{path} must define cases() -> list[Case]")
        modules.append(module)
    return modules


def selected_cases(module: ModuleType, keyword: str | None) -> list[Case]:
    """The module's cases whose "<module>:<case>" name contains ``keyword`` (all when None)."""
    cases = module.cases()
    if keyword is None or keyword in module.__name__:
        return cases
    return [case for case in cases if keyword in f"{module.__name__}:{case.name}"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="keyword", help="run only cases whose 'bench_file:case' contains this")
    parser.add_argument("--repeats", type=int, help="timed runs per callable (default: each case's own)")
    parser.add_argument("--threads", type=int, default=2, help="threads per library (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, directory: Path = HERE) -> int:
    args = parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {args.repeats}")
    limit_threads(args.threads)  # before the bench files import numpy / torch / tensorflow
    steady = steady_allocator()
    warnings.filterwarnings("ignore", module=r"(shap|captum)(\.|$)")  # rivals' chatter breaks the table
    print("\n".join(machine_info(args.threads)), flush=True)
    print(f"allocator: freed memory kept (page faults out of the timings): {'yes' if steady else 'no'}")
    failures, ran = 0, 0
    for module in discover(directory):
        cases = selected_cases(module, args.keyword)
        if not cases:
            continue
        print(f"\n{module.__name__}\n{header()}", flush=True)
        for case in cases:
            ran += 1
            try:
                print(format_row(run_case(case, args.repeats)), flush=True)
            except Exception:
                failures += 1
                print(f"{case.name:<34} FAILED (traceback on stderr)", flush=True)
                traceback.print_exc()
    if ran == 0:
        where = f" matching -k {args.keyword!r}" if args.keyword else ""
        print(f"no benchmark cases{where} in {directory}/bench_*.py", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

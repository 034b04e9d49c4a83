"""Where the checkout's folders are, and the environment a test's child process needs to import them."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root: the folder that holds ``src/``, ``tests/``, ``examples/`` and ``benchmarks/``.
ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples"
BENCHMARKS = ROOT / "benchmarks"


def child_environment(**extra: str) -> dict[str, str]:
    """``os.environ`` plus ``extra``, with ``src/`` and the repository root first on ``PYTHONPATH``.

    A child process (the ``deepshap`` CLI, a Ray worker) then imports this checkout's deepshap and the
    test helpers by the names the tests use, such as the entry point ``tests.helpers.jobs_models:tiny_cnn``.
    """
    path = [str(SRC), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}

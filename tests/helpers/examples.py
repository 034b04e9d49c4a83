"""The walkthroughs in examples/ (shap's notebooks, offline), run by the tests as written."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.paths import EXAMPLES


def example_main(name: str, *packages: str) -> Callable[..., dict[str, Any]]:
    """The ``main`` function of ``examples/<name>``.

    ``packages`` are the optional ones the example imports (its framework, the demo's data and models):
    the calling test skips unless every one is installed.
    """
    for package in packages:
        pytest.importorskip(package)
    return runpy.run_path(str(EXAMPLES / name), run_name="example")["main"]

"""The helper of ``shap.utils`` that scripts written for shap use to probe optional packages."""

from __future__ import annotations

import importlib


def assert_import(package_name: str) -> None:
    """Raise ImportError, naming the package, unless ``package_name`` can be imported."""
    try:
        importlib.import_module(package_name)
    except ImportError as error:
        raise ImportError(f"{package_name} is needed here but cannot be imported ({error}).") from error

"""deepshap in the return layout of shap 0.45 and later: ``import deepshap.current as shap``.

The same names as :mod:`deepshap`, except that DeepExplainer and GradientExplainer return one array per
model input with the explained outputs on the last axis (kept for a single output), as shap >= 0.45 does;
``import deepshap as shap`` keeps the layout of shap 0.44 and earlier unless the environment variable
``DEEPSHAP_SHAP_LAYOUT=0.45`` is set (see :mod:`deepshap.explainers._layout`). Names are resolved on first
use, so importing this module imports neither torch nor TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from deepshap import _PUBLIC as _DEEPSHAP_PUBLIC
from deepshap import __version__ as __version__

# deepshap's names, with the two explainers whose return layout differs taken from deepshap.current
_PUBLIC = {
    **_DEEPSHAP_PUBLIC,
    "GradientExplainer": ("deepshap.current.explainers", "GradientExplainer"),
    "DeepExplainer": ("deepshap.current.explainers", "DeepExplainer"),
    "explainers": ("deepshap.current.explainers", None),
    "utils": ("deepshap.current.utils", None),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'deepshap.current' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC) | {"__version__"})

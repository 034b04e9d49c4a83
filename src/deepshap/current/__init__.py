"""deepshap in the return layout of shap 0.45 and later: ``import deepshap.current as shap``.

The same names as :mod:`deepshap`, except that DeepExplainer and GradientExplainer return one array per
model input with the explained outputs on the last axis (kept for a single output), as shap >= 0.45 does;
``import deepshap as shap`` keeps the layout of shap 0.44 and earlier unless the environment variable
``DEEPSHAP_SHAP_LAYOUT=0.45`` is set (see :mod:`deepshap.explainers._layout`). Names are resolved on first
use, so importing this module imports neither torch nor TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # the names _PUBLIC resolves, for type checkers
    from deepshap import AdditivityError as AdditivityError
    from deepshap import Explainer as Explainer
    from deepshap import Explanation as Explanation
    from deepshap import PartitionExplainer as PartitionExplainer
    from deepshap import UnsupportedOperationError as UnsupportedOperationError
    from deepshap import datasets as datasets
    from deepshap import errors as errors
    from deepshap import image_plot as image_plot
    from deepshap import maskers as maskers
    from deepshap import metrics as metrics
    from deepshap import plots as plots
    from deepshap import rules as rules
    from deepshap.current import explainers as explainers
    from deepshap.current import utils as utils
    from deepshap.current.explainers import DeepExplainer as DeepExplainer
    from deepshap.current.explainers import GradientExplainer as GradientExplainer


def __getattr__(name: str) -> object:
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

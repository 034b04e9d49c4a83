"""deepshap: fast, correct Shapley-value explanations for deep-learning models.

``import deepshap as shap`` runs shap's deep-learning tutorials in the return layout of shap 0.44 and
earlier; ``import deepshap.current as shap`` (or ``DEEPSHAP_SHAP_LAYOUT=0.45``) gives shap 0.45's.
Public names are resolved lazily, so importing deepshap never imports torch or TensorFlow; each
framework is loaded when a model of it is explained.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names _PUBLIC resolves, for type checkers
    from deepshap import datasets as datasets
    from deepshap import errors as errors
    from deepshap import explainers as explainers
    from deepshap import maskers as maskers
    from deepshap import metrics as metrics
    from deepshap import plots as plots
    from deepshap import rules as rules
    from deepshap.errors import AdditivityError as AdditivityError
    from deepshap.errors import UnsupportedOperationError as UnsupportedOperationError
    from deepshap.explainers.deep import DeepExplainer as DeepExplainer
    from deepshap.explainers.gradient import GradientExplainer as GradientExplainer
    from deepshap.explainers.partition import Explainer as Explainer
    from deepshap.explainers.partition import PartitionExplainer as PartitionExplainer
    from deepshap.explanation import Explanation as Explanation
    from deepshap.plots import image_plot as image_plot

    __version__: str

_PUBLIC = {
    "Explanation": ("deepshap.explanation", "Explanation"),
    "GradientExplainer": ("deepshap.explainers.gradient", "GradientExplainer"),
    "DeepExplainer": ("deepshap.explainers.deep", "DeepExplainer"),
    "Explainer": ("deepshap.explainers.partition", "Explainer"),
    "PartitionExplainer": ("deepshap.explainers.partition", "PartitionExplainer"),
    "image_plot": ("deepshap.plots", "image"),
    "plots": ("deepshap.plots", None),
    "maskers": ("deepshap.maskers", None),
    "datasets": ("deepshap.datasets", None),
    "rules": ("deepshap.rules", None),
    "errors": ("deepshap.errors", None),
    "AdditivityError": ("deepshap.errors", "AdditivityError"),
    "UnsupportedOperationError": ("deepshap.errors", "UnsupportedOperationError"),
    "metrics": ("deepshap.metrics", None),
    "explainers": ("deepshap.explainers", None),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    """Import a public name on first use (PEP 562)."""
    if name == "__version__":
        globals()[name] = _installed_version()
        return globals()[name]
    if name not in _PUBLIC:
        raise AttributeError(f"module 'deepshap' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC) | {"__version__"})


def _installed_version() -> str:
    """The installed distribution's version, which setuptools-scm takes from the git tags at build time."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepshap")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"

"""The explainers: expected gradients, DeepSHAP and Partition (Owen) values.

Under shap's names too (``explainers.Deep``, ``explainers.Gradient``, ``explainers.Partition``). Names are
resolved on first use, so importing this package imports neither torch nor TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names _PUBLIC resolves, for type checkers
    from deepshap.explainers.deep import DeepExplainer as DeepExplainer
    from deepshap.explainers.gradient import GradientExplainer as GradientExplainer
    from deepshap.explainers.partition import Explainer as Explainer
    from deepshap.explainers.partition import PartitionExplainer as PartitionExplainer

    Deep = DeepExplainer
    Gradient = GradientExplainer
    Partition = PartitionExplainer

_PUBLIC = {
    "DeepExplainer": ("deepshap.explainers.deep", "DeepExplainer"),
    "Deep": ("deepshap.explainers.deep", "DeepExplainer"),
    "GradientExplainer": ("deepshap.explainers.gradient", "GradientExplainer"),
    "Gradient": ("deepshap.explainers.gradient", "GradientExplainer"),
    "PartitionExplainer": ("deepshap.explainers.partition", "PartitionExplainer"),
    "Partition": ("deepshap.explainers.partition", "PartitionExplainer"),
    "Explainer": ("deepshap.explainers.partition", "Explainer"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    """Import a public name on first use (PEP 562)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'deepshap.explainers' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))

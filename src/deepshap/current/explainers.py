"""The explainers of :mod:`deepshap.current`: DeepExplainer and GradientExplainer fixed to shap >= 0.45's
return layout, Partition unchanged (its Explanation is the same in both layouts), under shap's names."""

from __future__ import annotations

from deepshap.explainers import deep, gradient
from deepshap.explainers._layout import CURRENT
from deepshap.explainers.partition import Explainer, PartitionExplainer

__all__ = [
    "Deep",
    "DeepExplainer",
    "Explainer",
    "Gradient",
    "GradientExplainer",
    "Partition",
    "PartitionExplainer",
]


class DeepExplainer(deep.DeepExplainer):
    __doc__ = deep.DeepExplainer.__doc__
    shap_layout = CURRENT


class GradientExplainer(gradient.GradientExplainer):
    __doc__ = gradient.GradientExplainer.__doc__
    shap_layout = CURRENT


Deep = DeepExplainer
Gradient = GradientExplainer
Partition = PartitionExplainer

"""How right is an explanation? Measure it against the model's true Shapley values, and the standard
faithfulness curves.

- :func:`shapley_values`: the regions' interventional Shapley values of a model over a background,
  sampled by antithetic permutations with a standard error (the truth DeepSHAP approximates);
  :func:`owen_values`: exact Owen values on a Partition tree's cut (the truth of the Partition explainer).
- :func:`explanation_error`: any explanation's relative L1 error and correlation against that truth,
  with bootstrap confidence intervals.
- :func:`deletion_insertion`: RISE's deletion and insertion curves and AUCs.
- :func:`randomisation_check`: the model-randomisation sanity check.
- :func:`compare`: several explainers measured on the same images, as a table and a plot.
- Regions: :func:`grid`, :func:`pixels`, :func:`superpixels`, :func:`partition_cut`.

Importing this package needs neither torch nor TensorFlow.
"""

from deepshap.metrics._compare import Comparison, ComparisonRow, compare
from deepshap.metrics._curves import Curves, deletion_insertion, make_fill
from deepshap.metrics._errors import ErrorReport, correlation, explanation_error, relative_l1
from deepshap.metrics._explainers import EXPLAINERS
from deepshap.metrics._owen import owen_values
from deepshap.metrics._randomisation import RandomisationReport, randomisation_check, randomise_top_layers
from deepshap.metrics._regions import Regions, grid, partition_cut, pixels, superpixels
from deepshap.metrics._truth import RegionShapley, shapley_values

__all__ = [
    "EXPLAINERS",
    "Comparison",
    "ComparisonRow",
    "Curves",
    "ErrorReport",
    "RandomisationReport",
    "RegionShapley",
    "Regions",
    "compare",
    "correlation",
    "deletion_insertion",
    "explanation_error",
    "grid",
    "make_fill",
    "owen_values",
    "partition_cut",
    "pixels",
    "randomisation_check",
    "randomise_top_layers",
    "relative_l1",
    "shapley_values",
    "superpixels",
]

"""The two return layouts of shap's DeepExplainer and GradientExplainer, and how one is chosen.

Explainers compute attributions in one canonical layout: a list with one array per model input, each
shaped ``(N, *input_shape, R)`` where the trailing axis runs over the R explained outputs. Users see it in
one of shap's two layouts:

- ``LEGACY`` ("0.44", shap before 0.45, the layout the seed walkthroughs print): ``shap_values`` is a list
  with one entry per output, each an array (a list per input for several inputs), and a bare array for a
  single-output model; ``ranked_output`` gives ``(list over the ranks, indexes)``. An Explanation of a
  single-output model has no output axis.
- ``CURRENT`` ("0.45", shap 0.45 and later): one array per input with the explained outputs on the last
  axis, kept (of size 1) for a single-output model; several inputs give a list of such arrays;
  ``ranked_output`` gives ``(values, indexes)``. Explanations keep the output axis too.

An explainer class may fix its layout (``deepshap.current``'s explainers fix ``CURRENT``); otherwise the
environment variable ``DEEPSHAP_SHAP_LAYOUT`` decides, read at every call, so a script or test suite
switches without an edit: a shap version (``0.45``, ``0.51``; ``current`` for short) from 0.45 on selects
``CURRENT``, an earlier one (``0.44``; ``legacy``) or none ``LEGACY``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

LEGACY = "0.44"
CURRENT = "0.45"
LAYOUT_ENV = "DEEPSHAP_SHAP_LAYOUT"
_FIRST_CURRENT = (0, 45)

#: Attributions in one of shap's layouts: an array; a list of arrays (one per input, or per output); or a
#: list per output of lists per input.
Values: TypeAlias = np.ndarray | list[np.ndarray] | list[list[np.ndarray]]
#: What ``shap_values`` returns: the values, or ``(values, output indexes)`` for ranked outputs.
ShapValues: TypeAlias = Values | tuple[Values, np.ndarray]


def resolve_layout(fixed: str | None = None) -> str:
    """``fixed`` when an explainer class sets it, else the layout ``DEEPSHAP_SHAP_LAYOUT`` names now."""
    if fixed is not None:
        return fixed
    raw = os.environ.get(LAYOUT_ENV, "").strip()
    if raw.lower() in ("", "legacy"):
        return LEGACY
    if raw.lower() == "current":
        return CURRENT
    try:
        version = tuple(int(part) for part in raw.split(".")[:2])
    except ValueError:
        raise ValueError(
            f"{LAYOUT_ENV}={raw!r} is not a shap version: set it to 0.45 (or any later version, or "
            "'current') for shap's current return layout, or to 0.44 ('legacy') or nothing for the one "
            "before 0.45."
        ) from None
    return CURRENT if version >= _FIRST_CURRENT else LEGACY


def format_values(
    phi: Sequence[np.ndarray],
    layout: str,
    single_output: bool,
    multi_input: bool,
    output_index: np.ndarray,
    ranked: bool,
) -> ShapValues:
    """Canonical attributions in ``layout``; ``ranked=True`` returns ``(values, output_index)``."""
    values = layout_values(phi, layout, single_output, multi_input, ranked)
    if ranked:
        return values, np.asarray(output_index, dtype=np.int64)
    return values


def layout_values(
    phi: Sequence[np.ndarray], layout: str, single_output: bool, multi_input: bool, ranked: bool
) -> Values:
    """Canonical attributions in ``layout``, without the output indexes."""
    if layout == CURRENT:
        arrays = [np.ascontiguousarray(p) for p in phi]
        return arrays if multi_input else arrays[0]
    per_output: list[np.ndarray] | list[list[np.ndarray]]
    if multi_input:
        per_output = [[np.ascontiguousarray(p[..., j]) for p in phi] for j in range(phi[0].shape[-1])]
    else:
        per_output = [np.ascontiguousarray(phi[0][..., j]) for j in range(phi[0].shape[-1])]
    return per_output[0] if single_output and not ranked else per_output


def build_explanation(
    phi: Sequence[np.ndarray],
    base_values: np.ndarray,
    data: Sequence[np.ndarray],
    output_index: np.ndarray,
    layout: str,
    single_output: bool = False,
    ranked: bool = False,
    compute_time: float | None = None,
) -> Explanation | list[Explanation]:
    """Wrap canonical attributions in Explanation objects (one per model input, a list for several).

    Values keep the trailing output axis ``(N, *input_shape, R)`` and base_values are ``(N, R)``; in the
    legacy layout a single-output model explained without ranking drops that axis. ``output_indexes``
    records which model outputs each column explains when outputs were ranked.
    """
    from deepshap.explanation import Explanation

    base_values = np.asarray(base_values)
    drop_output_axis = layout == LEGACY and single_output and not ranked
    explanations = []
    for values, inputs in zip(phi, data, strict=True):
        explanations.append(
            Explanation(
                values=values[..., 0] if drop_output_axis else values,
                base_values=base_values[:, 0] if drop_output_axis else base_values,
                data=np.asarray(inputs),
                output_indexes=np.asarray(output_index) if ranked else None,
                compute_time=compute_time,
            )
        )
    return explanations if len(explanations) > 1 else explanations[0]

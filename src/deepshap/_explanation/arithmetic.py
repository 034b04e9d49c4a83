"""Arithmetic on Explanations that keeps its meaning: scaling, adding and joining attributions.

``c * e`` explains ``c * f`` (values, base values and bounds scale, the data does not), ``e1 + e2``
explains ``f + g`` for the same inputs, and ``e1.hstack(e2)`` joins the features of two explanations of
the same rows. What would break the values' sum to the output (adding a number) is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deepshap._explanation.chains import OpHistoryItem, explanation_class
from deepshap._explanation.layout import as_indexable

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

Scalar = float | np.integer | np.floating
"""A real number an Explanation can be scaled by."""


class ExplanationMismatchError(ValueError, AssertionError):
    """Explanations that cannot be combined (an AssertionError too, as shap raises for them)."""


def scale(e: Explanation, factor: Scalar) -> Explanation:
    """Attributions of ``factor * f``: values and base values scaled, the data unchanged."""
    if isinstance(factor, explanation_class()) or np.ndim(factor) != 0:
        raise TypeError(
            "An Explanation can be multiplied by a number only (it then explains number * f); "
            "to weight pixels or outputs, work on .values."
        )
    fields = dict(e._fields, values=e.values * factor)
    for name in ("base_values", "lower_bounds", "upper_bounds", "main_effects", "hierarchical_values"):
        if name in fields:
            fields[name] = np.asarray(fields[name]) * factor
    if "error_std" in fields:
        fields["error_std"] = np.asarray(fields["error_std"]) * abs(factor)
    if factor < 0 and "lower_bounds" in fields and "upper_bounds" in fields:
        fields["lower_bounds"], fields["upper_bounds"] = fields["upper_bounds"], fields["lower_bounds"]
    return e._build(fields, e._dims, e._output_dims, e.compute_time)


def add(e: Explanation, other: object) -> Explanation:
    """Attributions of ``f + g`` from those of ``f`` (``e``) and ``g`` (``other``) on the same inputs."""
    if not isinstance(other, explanation_class()):
        raise TypeError(
            f"Only another Explanation of the same inputs can be added to an Explanation; got "
            f"{type(other).__name__}. Adding a number to every value breaks their sum to f(x)."
        )
    if other.shape != e.shape:
        raise ValueError(f"Explanations of shapes {e.shape} and {other.shape} cannot be added.")
    for name in ("output_indexes", "output_names"):
        mine, theirs = e._fields.get(name), other._fields.get(name)
        if mine is not None and theirs is not None and not np.array_equal(mine, theirs):
            raise ValueError(f"The Explanations explain different outputs (their {name} differ).")
    if e.data is not None and other.data is not None and not np.array_equal(e.data, other.data):
        raise ValueError("The Explanations are of different inputs (their data differ).")
    fields = dict(e._fields, values=e.values + other.values)
    for name in ("base_values", "main_effects"):
        if name in fields and other._fields.get(name) is not None:
            fields[name] = np.asarray(fields[name]) + np.asarray(other._fields[name])
        else:
            fields.pop(name, None)
    for name in ("lower_bounds", "upper_bounds", "error_std", "hierarchical_values"):
        fields.pop(name, None)  # they do not add up
    return e._build(fields, e._dims, e._output_dims, None)


def hstack(e: Explanation, other: object) -> Explanation:
    """The features of ``other`` after those of ``e``, for the same rows (see ``Explanation.hstack``)."""
    if not isinstance(other, explanation_class()):
        raise TypeError(f"hstack joins two Explanations; got {type(other).__name__}.")
    if len(e.shape) < 2 or len(other.shape) < 2 or e.shape[0] != other.shape[0]:
        raise ExplanationMismatchError(
            f"Can't hstack explanations with different numbers of rows, or without a feature axis: "
            f"shapes {e.shape} and {other.shape}."
        )
    mine, theirs = e.base_values, other.base_values
    if (mine is None) != (theirs is None) or (
        mine is not None and (np.shape(mine) != np.shape(theirs) or not np.allclose(mine, theirs, atol=1e-6))
    ):
        raise ExplanationMismatchError(
            "Can't hstack explanations with different base values: they explain different outputs."
        )
    for name in ("output_names", "output_indexes"):
        a, b = e._fields.get(name), other._fields.get(name)
        if a is not None and b is not None and not np.array_equal(a, b):
            raise ExplanationMismatchError(f"Can't hstack explanations of different outputs ({name}).")
    data: dict[str, np.ndarray] = {}
    for name in ("data", "display_data"):
        a, b = e._fields.get(name), other._fields.get(name)
        if a is not None and b is not None:
            data[name] = np.concatenate([as_indexable(a), as_indexable(b)], axis=1)
    names = e.feature_names, other.feature_names
    feature_names = None
    if names[0] is not None and names[1] is not None:
        feature_names = [*as_indexable(names[0]), *as_indexable(names[1])]
    result = explanation_class()(
        values=np.concatenate([e.values, other.values], axis=1),
        base_values=mine,
        output_names=e.output_names if e.output_names is not None else other.output_names,
        output_indexes=e.output_indexes if e.output_indexes is not None else other.output_indexes,
        instance_names=e.instance_names,
        data=data.get("data"),
        display_data=data.get("display_data"),
        feature_names=feature_names,
    )
    result._history = (*e._history, OpHistoryItem("hstack", e.shape, (other,)))
    return result

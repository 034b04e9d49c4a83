"""The fields of an Explanation and the axes of ``values`` that each one follows.

Every field but ``values`` lines up with some axes of ``values``: ``base_values`` with the sample and
output axes, ``data`` with the sample and feature axes, names with the axis they label, and so on. The
functions here convert given fields (arrays to numpy, names kept as given), read how many trailing axes
of ``values`` are outputs, and work out the axes each field follows from the shapes, with errors that say
which shapes would line up.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

_NAME_FIELDS = ("instance_names", "feature_names", "output_names")
_ARRAY_FIELDS = (
    "base_values",
    "data",
    "display_data",
    "output_indexes",
    "lower_bounds",
    "upper_bounds",
    "error_std",
    "main_effects",
    "hierarchical_values",
    "clustering",
)
FIELDS = ("values", *_ARRAY_FIELDS[:3], *_NAME_FIELDS, *_ARRAY_FIELDS[3:])
# Fields whose numbers can be combined like the values when an axis is reduced (mean, sum, max, min).
REDUCIBLE = frozenset({"base_values", "data", "lower_bounds", "upper_bounds"})
# Fields the output axes are read from: one of a new shape works the whole layout out again.
LAYOUT_FIELDS = frozenset({"values", "output_names", "output_indexes", "base_values"})
# Fields that line up with the leading axes of values (or at least its first axis).
_PREFIX_FIELDS = frozenset(
    {"data", "display_data", "lower_bounds", "upper_bounds", "error_std", "main_effects"}
)


def to_array(value: object, name: str) -> np.ndarray:
    """Convert a field to numpy with an error that says what to pass."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"Explanation {name} could not be converted to a numpy array ({type(value).__name__}: {exc}); "
            "pass a rectangular numpy array (convert framework tensors with .numpy() first)."
        ) from exc


def convert(name: str, value: npt.ArrayLike) -> npt.ArrayLike:
    """Store arrays as numpy; keep names in the form given (a list stays a list); keep scalars."""
    if name in _NAME_FIELDS:
        return value
    if name != "values" and np.ndim(value) == 0:
        return value
    return to_array(value, name)


def shape_of(value: npt.ArrayLike, name: str) -> tuple[int, ...]:
    """``np.shape(value)``, with an error that names the field when it is ragged."""
    try:
        return np.shape(value)
    except ValueError as exc:
        raise ValueError(f"Explanation {name} is ragged ({exc}); pass a rectangular array or list.") from exc


def _names_dims(
    shape: tuple[int, ...], vshape: tuple[int, ...], out: tuple[int, ...], name: str
) -> tuple[int, ...]:
    """Axes followed by output names / indexes: the output axes, or the sample axis and the output axes."""
    n, k = len(vshape), len(out)
    out_shape = vshape[n - k :] if k else ()
    if len(shape) == 0:
        return ()
    if shape == out_shape and k:
        return out
    if n and shape == (vshape[0], *out_shape):
        return (0, *out)
    if name == "base_values" and not k and n and shape == (vshape[0], 1):  # one output as a column
        return (0,)
    raise ValueError(
        f"Explanation {name} has shape {shape}, which lines up with neither the output axes {out_shape} "
        f"nor (samples, outputs) {(vshape[0] if n else None, *out_shape)} of values {vshape}."
    )


def output_rank(vshape: tuple[int, ...], fields: Mapping[str, npt.ArrayLike]) -> int:
    """How many trailing axes of values are outputs, read from output names, indexes or base values."""
    n = len(vshape)
    for name in ("output_names", "output_indexes"):
        if fields.get(name) is None:
            continue
        shape = shape_of(fields[name], name)
        m = len(shape)
        if m == 0:
            return 0
        # per sample first: (N, k) names for values (N, ..., C, k) with N == C are not two output axes
        if 2 <= m <= n + 1 and shape[0] == vshape[0] and vshape[n - m + 1 :] == shape[1:]:
            return m - 1
        if m <= n and vshape[n - m :] == shape:
            return m
        if m == 1 and n and shape[0] == vshape[0]:  # one output picked per sample: no output axis left
            return 0
        raise ValueError(
            f"Explanation {name} has shape {shape}, which does not match the trailing (output) axes of "
            f"values {vshape}, flat or per sample; give one name per output."
        )
    base = fields.get("base_values")
    if base is None or np.ndim(base) == 0:
        return 0
    shape = np.shape(base)
    m = len(shape)
    if m - 1 < n and shape[0] == vshape[0] and vshape[n - m + 1 :] == shape[1:]:
        return m - 1
    if m <= n and vshape[n - m :] == shape:
        return m
    if n and shape == (vshape[0], 1):  # one output as a column, as shap's DeepExplainer gives it
        return 0
    raise ValueError(
        f"Explanation base_values has shape {shape}; it must be (samples, *outputs) or (*outputs) for "
        f"values of shape {vshape}."
    )


def field_dims(
    name: str, value: npt.ArrayLike, vshape: tuple[int, ...], out: tuple[int, ...]
) -> tuple[int, ...]:
    """The axes of values that the leading axes of a field follow (empty: the field is not sliced)."""
    shape = shape_of(value, name)
    m = len(shape)
    if m == 0:
        return ()
    if name in ("output_names", "output_indexes"):
        return _names_dims(shape, vshape, out, name)
    if name == "base_values":
        return _names_dims(shape, vshape, out, name)
    if name == "instance_names":
        if m == 1 and len(vshape) and shape[0] == vshape[0]:
            return (0,)
        raise ValueError(
            f"Explanation instance_names has shape {shape}; give one name per sample ({vshape})."
        )
    if name == "feature_names":
        if m == 1 and len(vshape) >= 2 and shape[0] == vshape[1]:
            return (1,)
        if m <= 2 and vshape[:m] == shape:
            return tuple(range(m))
        raise ValueError(
            f"Explanation feature_names has shape {shape}; give one name per feature (axis 1 of values "
            f"{vshape}), or per sample and feature."
        )
    if name == "clustering":
        # one linkage matrix per sample: (N, nodes, 4), or an (N,) object array when the trees differ
        per_sample = m == 3 or (m == 1 and np.asarray(value).dtype == object)
        return (0,) if per_sample and len(vshape) and shape[0] == vshape[0] else ()
    if vshape[:m] == shape:
        return tuple(range(m))
    if len(vshape) and shape[0] == vshape[0] and name not in _PREFIX_FIELDS:
        return (0,)
    if name in _PREFIX_FIELDS:
        raise ValueError(
            f"Explanation {name} has shape {shape}, which does not line up with values {vshape}: its "
            "leading axes must equal the leading axes of values (samples first)."
        )
    return ()


def as_indexable(value: npt.ArrayLike) -> np.ndarray:
    """A field as a numpy array to slice: lists and tuples (of names) as object arrays."""
    return np.asarray(value, dtype=object) if isinstance(value, (list, tuple)) else np.asarray(value)


def restore(original: npt.ArrayLike, result: npt.ArrayLike) -> npt.ArrayLike:
    """Give a sliced field back in its original form: lists stay lists, a single element is itself."""
    if isinstance(result, np.ndarray) and result.ndim == 0:
        return result.item() if isinstance(original, (list, tuple)) else result[()]
    if isinstance(original, (list, tuple)) and isinstance(result, np.ndarray):
        return result.tolist()
    return result

"""Reducing an Explanation over axes (mean, sum, max, min, percentile), its fields along with its values.

The values are reduced with the numpy function; the fields that follow a reduced axis are reduced with
it when they hold numbers that combine like the values (base values, data, bounds), kept when they are
the same all along the axis (names shared by every row), and dropped otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Number
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from deepshap._explanation.layout import REDUCIBLE, as_indexable, restore

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

Reduction = Callable[..., npt.ArrayLike]
"""A numpy reduction called as ``func(array)`` (every axis) or ``func(array, axis=axis)``."""


def reduce(
    e: Explanation, func: Reduction, axis: int | tuple[int, ...] | None, one_at_a_time: bool = True
) -> Explanation:
    """Apply a numpy reduction ``func(array, axis=...)`` to the values and to the fields that follow
    the reduced axis. A tuple of axes is reduced one axis after another, which gives the same result
    for the reductions where ``one_at_a_time`` holds (mean, sum, max, min over equal-sized groups)."""
    if isinstance(axis, tuple):
        axes = [check_axis(e, a) for a in axis]
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis {axis!r} names an axis twice.")
        if len(axes) > 1 and not one_at_a_time:
            raise ValueError(f"axis {axis!r}: this reduction takes one axis (or None for all of them).")
        result = e
        for a in sorted(axes, reverse=True):  # the last first, so the others keep their numbers
            result = reduce(result, func, a)
        return result
    if axis is None:
        unreduced = {k: v for k, v in e._fields.items() if not e._dims[k]}
        unreduced["values"] = np.asarray(func(e.values))
        return e._build(unreduced, dict(e._dims, values=()), (), e.compute_time)
    axis = check_axis(e, axis)
    values = np.asarray(func(e.values, axis=axis))
    fields: dict[str, npt.ArrayLike] = {"values": values}
    dims = {"values": tuple(range(values.ndim))}
    for name, value in e._fields.items():
        d = e._dims[name]
        if name == "values":
            continue
        if axis in d:
            reduced = _reduce_field(name, value, d.index(axis), func)
            if reduced is None:
                continue
            value = reduced
        fields[name] = value
        dims[name] = tuple(a - (a > axis) for a in d if a != axis)
    out = tuple(a - (a > axis) for a in e._output_dims if a != axis)
    return e._build(fields, dims, out, e.compute_time)


def check_axis(e: Explanation, axis: object) -> int:
    """``axis`` as a non-negative axis number of the values, or a ValueError that says why not."""
    ndim = len(e.shape)
    if isinstance(axis, bool) or not isinstance(axis, Integral) or not -ndim <= int(axis) < ndim:
        raise ValueError(
            f"axis {axis!r} is not an axis of an Explanation of shape {e.shape}: pass an int, a "
            "tuple of ints or None."
        )
    return int(axis) % ndim


def _reduce_field(name: str, value: npt.ArrayLike, at: int, func: Reduction) -> npt.ArrayLike | None:
    """Reduce numbers alongside the values; keep other fields only if the same along the axis."""
    arr = as_indexable(value)
    if name in REDUCIBLE and (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        return func(arr, axis=at)
    if _identical_along(arr, at):
        return restore(value, np.take(arr, 0, axis=at))
    return None


def percentile(a: np.ndarray, q: float, axis: int | None = None) -> np.ndarray:
    """``np.percentile``, which refuses booleans: they count as 0 and 1."""
    return np.percentile(a.astype(np.float64) if a.dtype == bool else a, q, axis=axis)


def _identical_along(arr: np.ndarray, axis: int) -> bool:
    """Whether every slice of ``arr`` along ``axis`` equals the first (objects other than names and
    numbers, such as sparse matrices, only when they are the same objects)."""
    if arr.shape[axis] == 0:
        return False
    if arr.dtype == object:
        moved = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)
        return all(
            a is b or (isinstance(a, (str, Number)) and isinstance(b, (str, Number)) and a == b)
            for row in moved[1:]
            for a, b in zip(row, moved[0], strict=True)
        )
    return bool(np.all(arr == np.take(arr, [0], axis=axis)))

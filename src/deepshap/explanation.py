"""`Explanation`: a sliceable bundle of attributions and the arrays that travel with them.

An Explanation holds ``values`` shaped ``(N, *features, *outputs)`` (shap >= 0.45 style: a trailing
output axis when several outputs are explained) and the fields that line up with some of those axes:
``base_values`` ``(N, *outputs)``, ``data`` ``(N, *features)``, ``output_names`` (flat, or ``(N, k)`` per
row as the Partition explainer gives when outputs are ranked), bounds, names and so on. Every field
remembers which axes of ``values`` its leading axes follow, so indexing slices them all consistently.

Indexing is numpy-like: ints, slices, ``...``, lists / integer arrays, 1-D boolean masks, 0-d tensors,
and output (or feature) names as strings or lists of them. At most one axis takes a list or array
(numpy and shap pair several point by point; that is refused here rather than done differently).

Accessed on the class, the operations build lazy :class:`OpChain` selectors instead of running:
``Explanation.argsort.flip[:4]`` records "argsort, flip, take the first four" and ``.apply(explanation)``
runs it later (the Partition explainer uses that to pick the top outputs of each sample).

This module holds the class and its fields; the workings (axes of each field, indexing, reductions,
arithmetic, operation chains) are in :mod:`deepshap._explanation`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from numbers import Number
from typing import Any, Generic, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from deepshap._explanation import arithmetic, indexing, reductions
from deepshap._explanation.arithmetic import ExplanationMismatchError, Scalar
from deepshap._explanation.chains import (
    OpChain,
    OperationMethod,
    OperationProperty,
    OpHistoryItem,
    recorded,
    unrecorded_operation_method,
)
from deepshap._explanation.layout import (
    LAYOUT_FIELDS,
    as_indexable,
    convert,
    field_dims,
    output_rank,
    restore,
    shape_of,
)

__all__ = ["Explanation", "ExplanationMismatchError", "OpChain", "OpHistoryItem"]

T = TypeVar("T")


class _Field(Generic[T]):
    """Descriptor for a field: reads it, and on assignment works out which axes it follows."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Field[T]: ...

    @overload
    def __get__(self, obj: Explanation, owner: type | None = None) -> T: ...

    def __get__(self, obj: Explanation | None, owner: type | None = None) -> _Field[T] | T:
        if obj is None:
            return self
        return cast(T, obj._fields.get(self.name))

    def __set__(self, obj: Explanation, value: npt.ArrayLike | None) -> None:
        obj._assign(self.name, value)


class Explanation:
    """Attributions with their base values, inputs and names, sliceable like a numpy array.

    Fields follow shap: ``values`` ``(N, *features, *outputs)``; ``base_values`` ``(N, *outputs)``;
    ``data`` / ``display_data`` ``(N, *features)``; ``output_names`` one per output, or ``(N, k)`` per
    sample; ``output_indexes`` the model outputs each column explains; bounds, ``error_std``,
    ``main_effects``, ``hierarchical_values``, ``clustering``, ``compute_time``. The output axes are read
    from ``output_names``, ``output_indexes`` or ``base_values`` (see :attr:`output_dims`).

    On an instance, ``abs``, ``argsort``, ``flip``, ``mean(axis)`` ... return new Explanations; on the
    class they build lazy :class:`OpChain` selectors such as ``Explanation.argsort.flip[:4]``.
    """

    # values is always a numpy array; the other fields hold what they were given (arrays as numpy,
    # numbers, names, sparse matrices ...), so they read as Any for the caller to use as what it knows.
    values: _Field[np.ndarray] = _Field()
    base_values: _Field[Any] = _Field()
    data: _Field[Any] = _Field()
    display_data: _Field[Any] = _Field()
    instance_names: _Field[Any] = _Field()
    feature_names: _Field[Any] = _Field()
    output_names: _Field[Any] = _Field()
    output_indexes: _Field[Any] = _Field()
    lower_bounds: _Field[Any] = _Field()
    upper_bounds: _Field[Any] = _Field()
    error_std: _Field[Any] = _Field()
    main_effects: _Field[Any] = _Field()
    hierarchical_values: _Field[Any] = _Field()
    clustering: _Field[Any] = _Field()

    _fields: dict[str, npt.ArrayLike]  # the fields given (never None)
    _dims: dict[str, tuple[int, ...]]  # per field, the axes of values its leading axes follow
    _output_dims: tuple[int, ...]
    _history: tuple[OpHistoryItem, ...]
    compute_time: float | None

    def __init__(
        self,
        values: npt.ArrayLike | Explanation,
        base_values: npt.ArrayLike | None = None,
        data: npt.ArrayLike | None = None,
        display_data: npt.ArrayLike | None = None,
        instance_names: npt.ArrayLike | None = None,
        feature_names: npt.ArrayLike | None = None,
        output_names: npt.ArrayLike | None = None,
        output_indexes: npt.ArrayLike | None = None,
        lower_bounds: npt.ArrayLike | None = None,
        upper_bounds: npt.ArrayLike | None = None,
        error_std: npt.ArrayLike | None = None,
        main_effects: npt.ArrayLike | None = None,
        hierarchical_values: npt.ArrayLike | None = None,
        clustering: npt.ArrayLike | None = None,
        compute_time: float | None = None,
    ) -> None:
        given: dict[str, npt.ArrayLike | None] = {
            "base_values": base_values,
            "data": data,
            "display_data": display_data,
            "instance_names": instance_names,
            "feature_names": feature_names,
            "output_names": output_names,
            "output_indexes": output_indexes,
            "lower_bounds": lower_bounds,
            "upper_bounds": upper_bounds,
            "error_std": error_std,
            "main_effects": main_effects,
            "hierarchical_values": hierarchical_values,
            "clustering": clustering,
        }
        if isinstance(values, Explanation):  # a copy in the source's layout, then the fields given
            copy = values.__copy__()
            self._fields, self._dims, self._output_dims = copy._fields, copy._dims, copy._output_dims
            self._history = copy._history
            self.compute_time = values.compute_time if compute_time is None else compute_time
            for name, value in given.items():
                if value is not None:
                    self._assign(name, value)
            return
        if values is None:
            raise TypeError("An Explanation needs values: an array of attributions, or an Explanation.")
        fields = {"values": convert("values", values)}
        fields.update({name: convert(name, v) for name, v in given.items() if v is not None})
        self._fields = fields
        self.compute_time = compute_time
        self._history = ()
        self._infer_layout()

    # ------------------------------------------------------------------ layout

    def _infer_layout(self) -> None:
        vshape = self.shape
        k = output_rank(vshape, self._fields)
        self._output_dims = tuple(range(len(vshape) - k, len(vshape)))
        self._dims = {
            name: field_dims(name, value, vshape, self._output_dims)
            for name, value in self._fields.items()
            if name != "values"
        }
        self._dims["values"] = tuple(range(len(vshape)))

    def _assign(self, name: str, value: npt.ArrayLike | None) -> None:
        """Set a field. A field of the shape it had keeps its axes; values, or a field the output axes are
        read from (names, indexes, base values), of a new shape work the whole layout out again; another
        field only its own axes."""
        if name in LAYOUT_FIELDS:
            if name == "values" and value is None:
                raise ValueError("An Explanation needs values.")
            current = self._fields.get(name)
            if value is not None and current is not None and shape_of(value, name) == np.shape(current):
                self._fields[name] = convert(name, value)  # same shape: the axes stay as they are
                return
            old = dict(self._fields)
            if value is None:
                self._fields.pop(name, None)
            else:
                self._fields[name] = convert(name, value)
            try:
                self._infer_layout()
            except ValueError:
                self._fields = old
                raise
            return
        if value is None:
            self._fields.pop(name, None)
            self._dims.pop(name, None)
            return
        value = convert(name, value)
        self._dims[name] = field_dims(name, value, self.shape, self._output_dims)
        self._fields[name] = value

    @staticmethod
    def _build(
        fields: Mapping[str, npt.ArrayLike | None],
        dims: dict[str, tuple[int, ...]],
        output_dims: tuple[int, ...],
        compute_time: float | None,
    ) -> Explanation:
        """Make an Explanation from fields whose axes are already known (after slicing or reducing)."""
        new = Explanation.__new__(Explanation)
        new._fields = {name: v for name, v in fields.items() if v is not None}
        new._dims = {name: dims[name] for name in new._fields}
        new._output_dims = output_dims
        new.compute_time = compute_time
        new._history = ()
        return new

    def __copy__(self) -> Explanation:
        """A shallow copy: the arrays are shared, setting a field on the copy leaves the original alone."""
        copy = Explanation._build(dict(self._fields), dict(self._dims), self._output_dims, self.compute_time)
        copy._history = self._history
        return copy

    @property
    def op_history(self) -> list[OpHistoryItem]:
        """The operations (slicing, abs, mean, arithmetic ...) that made this Explanation, oldest first."""
        return list(self._history)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``values``."""
        return self.values.shape

    @property
    def output_dims(self) -> tuple[int, ...]:
        """The axes of ``values`` that index model outputs (empty when there is no output axis)."""
        return self._output_dims

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d Explanation (a single number) is undefined.")
        return self.shape[0]

    def __iter__(self) -> Iterator[Explanation]:
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        values = self.values
        return np.array(values, dtype=dtype) if copy else np.asarray(values, dtype=dtype)

    def __repr__(self) -> str:
        out = f".values =\n{self.values!r}"
        if self.base_values is not None:
            out += f"\n\n.base_values =\n{self.base_values!r}"
        if self.data is not None:
            out += f"\n\n.data =\n{self.data!r}"
        return out

    def __class_getitem__(cls, item: object) -> OpChain:
        """``Explanation[...]`` builds a lazy selector that indexes later."""
        return OpChain()[item]

    # ------------------------------------------------------------------ indexing

    @recorded
    def __getitem__(self, item: object) -> Explanation:
        return indexing.index(self, item)

    # ------------------------------------------------------------------ operations

    def _map_values(self, values: np.ndarray, drop_axis: int | None = None) -> Explanation:
        """A copy with new values of the same shape; fields following ``drop_axis`` are dropped."""
        fields = dict(self._fields, values=values)
        if drop_axis is not None:
            fields = {k: v for k, v in fields.items() if k == "values" or drop_axis not in self._dims[k]}
        return Explanation._build(fields, self._dims, self._output_dims, self.compute_time)

    @OperationProperty
    def abs(self) -> Explanation:
        """Absolute attributions (the data and other fields are unchanged)."""
        return self._map_values(np.abs(self.values))

    @OperationProperty
    def identity(self) -> Explanation:
        """This explanation, unchanged."""
        return self

    @OperationProperty
    def argsort(self) -> Explanation:
        """Indices that sort the values along the last axis, ascending (ties keep their order).

        Fields that follow the last axis (data, names along it ...) no longer line up and are dropped.
        """
        if not self.shape:
            raise ValueError("argsort needs at least one axis; this Explanation holds a single number.")
        values = np.argsort(self.values, axis=-1, kind="stable")
        return self._map_values(values, drop_axis=len(self.shape) - 1)

    @OperationProperty
    def flip(self) -> Explanation:
        """Reverse every axis (``np.flip``), and every field along the axes it follows."""
        fields = {}
        for name, value in self._fields.items():
            d = self._dims[name]
            fields[name] = restore(value, np.flip(as_indexable(value), tuple(range(len(d))))) if d else value
        return Explanation._build(fields, self._dims, self._output_dims, self.compute_time)

    @OperationMethod
    def mean(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Mean over ``axis`` (base values and data are averaged alongside)."""
        return reductions.reduce(self, np.mean, axis)

    @OperationMethod
    def sum(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Sum over ``axis`` (base values and data are summed alongside)."""
        return reductions.reduce(self, np.sum, axis)

    @OperationMethod
    def max(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Maximum over ``axis``."""
        return reductions.reduce(self, np.max, axis)

    @OperationMethod
    def min(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Minimum over ``axis``."""
        return reductions.reduce(self, np.min, axis)

    @OperationMethod
    def percentile(self, q: float, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """The ``q``-th percentile (0-100) over ``axis``, of the values and of the data alongside."""
        if not 0 <= q <= 100:
            raise ValueError(f"q must be a percentile between 0 and 100; got {q!r}.")
        percentile = functools.partial(reductions.percentile, q=q)
        return reductions.reduce(self, percentile, axis, one_at_a_time=False)

    @unrecorded_operation_method
    def sample(self, max_samples: int, replace: bool = False, random_state: int = 0) -> Explanation:
        """Rows drawn at random (at most ``len(self)`` of them without replacement), reproducibly."""
        rng = np.random.RandomState(random_state)
        size = max_samples if replace else min(max_samples, len(self))
        return self[rng.choice(len(self), size=size, replace=replace)]

    # ------------------------------------------------------------------ arithmetic

    @recorded
    def __mul__(self, factor: Scalar) -> Explanation:
        """Attributions of ``factor * f``: values and base values scaled, the data unchanged."""
        return arithmetic.scale(self, factor)

    @recorded
    def __rmul__(self, factor: Scalar) -> Explanation:
        return self * factor

    @recorded
    def __truediv__(self, divisor: Scalar) -> Explanation:
        """Attributions of ``f / divisor`` (a number)."""
        if isinstance(divisor, Explanation) or np.ndim(divisor) != 0:
            raise TypeError("An Explanation can be divided by a number only.")
        return self * (1.0 / divisor)

    @recorded
    def __neg__(self) -> Explanation:
        return self * -1

    @recorded
    def __add__(self, other: Explanation) -> Explanation:
        """Attributions of ``f + g`` from those of ``f`` and ``g`` on the same inputs: values and base
        values add. A number cannot be added: the values would no longer sum to the output."""
        return arithmetic.add(self, other)

    @recorded
    def __radd__(self, other: object) -> Explanation:
        """``0 + e`` is ``e``, so that ``sum([e1, e2])`` works."""
        if isinstance(other, Number) and not other:  # a zero
            return self
        return arithmetic.add(self, other)

    @recorded
    def __sub__(self, other: Explanation) -> Explanation:
        """Attributions of ``f - g`` (see :meth:`__add__`)."""
        if not isinstance(other, Explanation):
            raise TypeError("Only another Explanation of the same inputs can be subtracted from one.")
        return self + (-other)

    def hstack(self, other: Explanation) -> Explanation:
        """The features of ``other`` after this one's, for the same rows: values, data and feature names
        joined along axis 1. Both must explain the same rows from the same base values and outputs."""
        return arithmetic.hstack(self, other)


# Defined in deepshap._explanation, these classes are public here: pickles and the docs name them here.
for _public in (OpChain, OpHistoryItem, ExplanationMismatchError):
    _public.__module__ = __name__

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
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from numbers import Integral, Number
from typing import Any

import numpy as np

__all__ = ["Explanation", "ExplanationMismatchError", "OpChain", "OpHistoryItem"]

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
_REDUCIBLE = frozenset({"base_values", "data", "lower_bounds", "upper_bounds"})
_LAYOUT_FIELDS = frozenset({"values", "output_names", "output_indexes", "base_values"})
# Fields that line up with the leading axes of values (or at least its first axis).
_PREFIX_FIELDS = frozenset(
    {"data", "display_data", "lower_bounds", "upper_bounds", "error_std", "main_effects"}
)


class ExplanationMismatchError(ValueError, AssertionError):
    """Explanations that cannot be combined (an AssertionError too, as shap raises for them)."""


@dataclass
class OpHistoryItem:
    """One operation applied to an Explanation, as shap records it in ``op_history``."""

    name: str
    prev_shape: tuple[int, ...]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    collapsed_instances: bool = False


def _recorded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Append the call to the ``op_history`` of the Explanation it returns (the caller's history + it)."""
    name = func.__name__

    @functools.wraps(func)
    def record(self: Explanation, *args: Any, **kwargs: Any) -> Any:
        result = func(self, *args, **kwargs)
        if isinstance(result, Explanation) and result is not self:
            axis = kwargs.get("axis", args[0] if args and name in _REDUCTIONS else None)
            item = OpHistoryItem(name, self.shape, args, kwargs, collapsed_instances=axis == 0)
            result._history = (*self._history, item)
        return result

    return record


_REDUCTIONS = frozenset({"mean", "sum", "max", "min"})


# ----------------------------------------------------------------------------------------------------
# Lazy operation chains
# ----------------------------------------------------------------------------------------------------


class OpChain:
    """A recorded chain of attribute accesses, calls and ``[...]`` indexing, applied later.

    Built by accessing an operation on the :class:`Explanation` class, e.g.
    ``Explanation.abs.mean(0).argsort.flip[:4]``; ``chain.apply(explanation)`` replays it.
    Chains are immutable: extending one returns a new chain.
    """

    __slots__ = ("_ops", "_root")

    def __init__(self, root: str = "Explanation", ops: tuple[tuple[Any, ...], ...] = ()) -> None:
        self._root = root
        self._ops = ops

    def _extend(self, op: tuple[Any, ...]) -> OpChain:
        return OpChain(self._root, (*self._ops, op))

    def __getattr__(self, name: str) -> OpChain:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in _chainable_names():
            raise AttributeError(
                f"Explanation has no operation or field {name!r} to chain; "
                f"available: {', '.join(sorted(_chainable_names()))}."
            )
        return self._extend(("attr", name))

    def __call__(self, *args: Any, **kwargs: Any) -> OpChain:
        if not self._ops or self._ops[-1][0] != "attr":
            raise TypeError(
                f"{self!r} cannot be called: only a chained method such as .mean(0) takes arguments."
            )
        name = self._ops[-1][1]
        if name not in _METHOD_OPS:
            raise TypeError(f"Explanation.{name} is not a method: use {self!r} without parentheses.")
        return self._extend(("call", args, kwargs))

    def __getitem__(self, item: Any) -> OpChain:
        return self._extend(("item", item))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(f"{self!r} is a lazy selector, not a sequence: apply it with .apply(explanation).")

    def apply(self, obj: Any) -> Any:
        """Run the recorded operations on ``obj`` (an Explanation; an array is wrapped in one first)."""
        if not isinstance(obj, Explanation):
            obj = Explanation(obj)
        for op in self._ops:
            if op[0] == "attr":
                obj = getattr(obj, op[1])
            elif op[0] == "call":
                obj = obj(*op[1], **op[2])
            else:
                obj = obj[op[1]]
        return obj

    def __repr__(self) -> str:
        out = self._root
        for op in self._ops:
            if op[0] == "attr":
                out += f".{op[1]}"
            elif op[0] == "call":
                parts = [repr(a) for a in op[1]] + [f"{k}={v!r}" for k, v in op[2].items()]
                out += f"({', '.join(parts)})"
            else:
                out += f"[{_format_index(op[1])}]"
        return out


def _format_index(item: Any) -> str:
    """Write an index the way it is typed: ``:4``, ``..., 2``, ``[0, 2]``."""
    if isinstance(item, tuple):
        return ", ".join(_format_index(i) for i in item)
    if isinstance(item, slice):
        text = ":".join("" if p is None else repr(p) for p in (item.start, item.stop))
        return text if item.step is None else f"{text}:{item.step!r}"
    if item is Ellipsis:
        return "..."
    return repr(item)


class _Operation:
    """Descriptor for an Explanation operation: runs on an instance, builds an OpChain on the class."""

    def __init__(self, func: Callable[..., Any], *, is_property: bool, record: bool = True) -> None:
        self.func = _recorded(func) if record else func
        self.is_property = is_property
        self.__doc__ = func.__doc__
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return getattr(OpChain(), self.name)
        if self.is_property:
            return self.func(obj)
        return types.MethodType(self.func, obj)


def _operation_property(func: Callable[..., Any]) -> _Operation:
    return _Operation(func, is_property=True)


def _operation_method(func: Callable[..., Any]) -> _Operation:
    return _Operation(func, is_property=False)


def _unrecorded_operation_method(func: Callable[..., Any]) -> _Operation:
    """A method recorded as the operations it is made of (``sample`` as an ``__getitem__``, like shap)."""
    return _Operation(func, is_property=False, record=False)


def _chainable_names() -> frozenset[str]:
    return frozenset(FIELDS) | {"compute_time", "shape", "output_dims"} | _METHOD_OPS | _PROPERTY_OPS


class _Field:
    """Descriptor for a field: reads it, and on assignment works out which axes it follows."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._fields.get(self.name)

    def __set__(self, obj: Explanation, value: Any) -> None:
        obj._assign(self.name, value)


# ----------------------------------------------------------------------------------------------------
# Shape bookkeeping
# ----------------------------------------------------------------------------------------------------


def _to_array(value: Any, name: str) -> np.ndarray:
    """Convert a field to numpy with an error that says what to pass."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"Explanation {name} could not be converted to a numpy array ({type(value).__name__}: {exc}); "
            "pass a rectangular numpy array (convert framework tensors with .numpy() first)."
        ) from exc


def _convert(name: str, value: Any) -> Any:
    """Store arrays as numpy; keep names in the form given (a list stays a list); keep scalars."""
    if value is None or name in _NAME_FIELDS:
        return value
    if name != "values" and np.ndim(value) == 0:
        return value
    return _to_array(value, name)


def _shape_of(value: Any, name: str) -> tuple[int, ...]:
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


def _output_rank(vshape: tuple[int, ...], fields: dict[str, Any]) -> int:
    """How many trailing axes of values are outputs, read from output names, indexes or base values."""
    n = len(vshape)
    for name in ("output_names", "output_indexes"):
        if fields.get(name) is None:
            continue
        shape = _shape_of(fields[name], name)
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


def _field_dims(name: str, value: Any, vshape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of values that the leading axes of a field follow (empty: the field is not sliced)."""
    shape = _shape_of(value, name)
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


def _as_indexable(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=object) if isinstance(value, (list, tuple)) else np.asarray(value)


def _restore(original: Any, result: np.ndarray) -> Any:
    """Give a sliced field back in its original form: lists stay lists, a single element is itself."""
    if isinstance(result, np.ndarray) and result.ndim == 0:
        return result.item() if isinstance(original, (list, tuple)) else result[()]
    if isinstance(original, (list, tuple)) and isinstance(result, np.ndarray):
        return result.tolist()
    return result


def _normalize_axis_index(ix: Any, size: int, axis: int) -> Any:
    """Check one per-axis index and turn it into an int, a slice or a 1-D int64 array."""
    if isinstance(ix, (bool, np.bool_)):
        raise IndexError(
            "A single True/False is not a valid index; pass a boolean mask with one entry per row."
        )
    if isinstance(ix, Integral):
        i = int(ix)
        if not -size <= i < size:
            raise IndexError(f"index {i} is out of bounds for axis {axis} with size {size}")
        return i % size
    if isinstance(ix, slice):
        return ix
    arr = _to_array(ix, "index")
    if arr.dtype == bool:
        if arr.ndim != 1 or arr.shape[0] != size:
            raise IndexError(
                f"boolean index of shape {arr.shape} does not match axis {axis} of size {size}; "
                "boolean masks must be 1-D with one entry per element of the axis they select."
            )
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise IndexError(
            f"index {ix!r} for axis {axis} must be an int, a slice, a 1-D list of ints, a 1-D boolean mask "
            "or an output name."
        )
    if arr.min() < -size or arr.max() >= size:
        raise IndexError(f"index {arr.tolist()} is out of bounds for axis {axis} with size {size}")
    return arr.astype(np.int64) % size


def _numpy_moves_the_list_axis(indexers: list[Any]) -> bool:
    """Whether numpy would put the axis of a list index first, where an Explanation keeps it in place:
    an int and a list separated by a slice, with a slice before the list (``e[1, ..., [3, 0]]``)."""
    picked = [axis for axis, ix in enumerate(indexers) if isinstance(ix, (int, np.ndarray))]
    lists = [axis for axis in picked if isinstance(indexers[axis], np.ndarray)]
    if not lists or picked[-1] - picked[0] < len(picked):  # no list, or ints and list side by side
        return False
    return any(isinstance(ix, slice) for ix in indexers[: lists[0]])


def _take(value: Any, dims: tuple[int, ...], indexers: list[Any]) -> Any:
    """Index a field along the axes it follows, last axis first so earlier axis numbers stay valid."""
    arr = _as_indexable(value)
    for field_axis in reversed(range(len(dims))):
        ix = indexers[dims[field_axis]]
        if isinstance(ix, slice) and ix == slice(None):
            continue
        arr = arr[(slice(None),) * field_axis + (ix,)]
    return _restore(value, arr)


def _node_outputs(value: Any, columns: Callable[[tuple[int, ...]], Any]) -> Any:
    """The Partition explainer's per-node values (a sparse ``(nodes, k)`` matrix, or an object array of
    them, one per sample) restricted to the outputs ``columns(position)`` selects; other forms of
    hierarchical values are sliced by the axes they follow and are returned as they are."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        out = np.empty(value.shape, dtype=object)
        for position, nodes in np.ndenumerate(value):
            out[position] = nodes[:, columns(position)] if hasattr(nodes, "tocsr") else nodes
        return out
    return value[:, columns(())] if hasattr(value, "tocsr") else value


def _percentile(a: np.ndarray, q: float, axis: int | None = None) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------------
# Explanation
# ----------------------------------------------------------------------------------------------------


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

    values = _Field()
    base_values = _Field()
    data = _Field()
    display_data = _Field()
    instance_names = _Field()
    feature_names = _Field()
    output_names = _Field()
    output_indexes = _Field()
    lower_bounds = _Field()
    upper_bounds = _Field()
    error_std = _Field()
    main_effects = _Field()
    hierarchical_values = _Field()
    clustering = _Field()

    def __init__(
        self,
        values: Any,
        base_values: Any = None,
        data: Any = None,
        display_data: Any = None,
        instance_names: Any = None,
        feature_names: Any = None,
        output_names: Any = None,
        output_indexes: Any = None,
        lower_bounds: Any = None,
        upper_bounds: Any = None,
        error_std: Any = None,
        main_effects: Any = None,
        hierarchical_values: Any = None,
        clustering: Any = None,
        compute_time: float | None = None,
    ) -> None:
        given = {
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
            self._history: tuple[OpHistoryItem, ...] = copy._history
            self.compute_time = values.compute_time if compute_time is None else compute_time
            for name, value in given.items():
                if value is not None:
                    self._assign(name, value)
            return
        if values is None:
            raise TypeError("An Explanation needs values: an array of attributions, or an Explanation.")
        fields = {"values": _convert("values", values)}
        fields.update({name: _convert(name, v) for name, v in given.items() if v is not None})
        self._fields: dict[str, Any] = fields
        self.compute_time = compute_time
        self._history = ()
        self._infer_layout()

    # ------------------------------------------------------------------ layout

    def _infer_layout(self) -> None:
        vshape = self._fields["values"].shape
        k = _output_rank(vshape, self._fields)
        self._output_dims = tuple(range(len(vshape) - k, len(vshape)))
        self._dims = {
            name: _field_dims(name, value, vshape, self._output_dims)
            for name, value in self._fields.items()
            if name != "values"
        }
        self._dims["values"] = tuple(range(len(vshape)))

    def _assign(self, name: str, value: Any) -> None:
        """Set a field. A field of the shape it had keeps its axes; values, or a field the output axes are
        read from (names, indexes, base values), of a new shape work the whole layout out again; another
        field only its own axes."""
        if name in _LAYOUT_FIELDS:
            if name == "values" and value is None:
                raise ValueError("An Explanation needs values.")
            current = self._fields.get(name)
            if value is not None and current is not None and _shape_of(value, name) == np.shape(current):
                self._fields[name] = _convert(name, value)  # same shape: the axes stay as they are
                return
            old = dict(self._fields)
            if value is None:
                self._fields.pop(name, None)
            else:
                self._fields[name] = _convert(name, value)
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
        value = _convert(name, value)
        self._dims[name] = _field_dims(name, value, self.shape, self._output_dims)
        self._fields[name] = value

    @classmethod
    def _build(
        cls,
        fields: dict[str, Any],
        dims: dict[str, tuple[int, ...]],
        output_dims: tuple[int, ...],
        compute_time: float | None,
    ) -> Explanation:
        """Make an Explanation from fields whose axes are already known (after slicing or reducing)."""
        new = cls.__new__(cls)
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
        return self._fields["values"].shape

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

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        values = self._fields["values"]
        return np.array(values, dtype=dtype) if copy else np.asarray(values, dtype=dtype)

    def __repr__(self) -> str:
        out = f".values =\n{self.values!r}"
        if self.base_values is not None:
            out += f"\n\n.base_values =\n{self.base_values!r}"
        if self.data is not None:
            out += f"\n\n.data =\n{self.data!r}"
        return out

    def __class_getitem__(cls, item: Any) -> OpChain:
        """``Explanation[...]`` builds a lazy selector that indexes later."""
        return OpChain()[item]

    # ------------------------------------------------------------------ indexing

    @_recorded
    def __getitem__(self, item: Any) -> Explanation:
        items = list(item) if isinstance(item, tuple) else [item]
        items = [self._resolve_index_object(t) for t in items]
        per_axis = self._names_to_positions(self._expand(items))
        strings = {axis: t for axis, t in enumerate(per_axis) if isinstance(t, str)}
        indexers = [
            slice(None) if isinstance(t, str) else _normalize_axis_index(t, size, axis)
            for axis, (t, size) in enumerate(zip(per_axis, self.shape, strict=True))
        ]
        if sum(isinstance(ix, np.ndarray) for ix in indexers) > 1:
            raise IndexError(
                "Index one axis with a list or array at a time, e.g. e[[0, 1]][:, [2, 3]]: each list "
                "selects along its own axis here, where numpy and shap would pair the lists point by point."
            )
        if _numpy_moves_the_list_axis(indexers):
            raise IndexError(
                "An int and a list separated by a slice or '...' (e.g. e[1, ..., [3, 0]]): numpy and shap "
                "move the list's axis to the front there. Index in two steps instead, e.g. e[1][..., [3, 0]]."
            )
        result = self._index_axes(indexers)
        kept = [axis for axis, ix in enumerate(indexers) if not isinstance(ix, int)]
        claimed = set(strings)
        targets = []
        for axis, name in strings.items():
            target = self._name_axis(axis, name, kept, claimed)
            claimed.add(target)
            targets.append((kept.index(target), name))
        for axis, name in sorted(targets, reverse=True):
            result = result._select_name(axis, name)
        return result

    def _names_to_positions(self, per_axis: list[Any]) -> list[Any]:
        """Turn lists of names into positions on the axis they label (this axis, else the output axis)."""
        per_axis = list(per_axis)
        for axis, t in enumerate(per_axis):
            if not isinstance(t, (list, tuple, np.ndarray)) or len(t) == 0:
                continue
            if not all(isinstance(v, (str, np.str_)) for v in np.ravel(np.asarray(t, dtype=object))):
                continue
            names = [str(v) for v in np.ravel(np.asarray(t, dtype=object))]
            for target in (axis, *self._output_dims):
                flat = [n for field, n in self._names_along(target) if self._dims[field] == (target,)]
                known = [list(map(str, n)) for n in flat if all(name in list(map(str, n)) for name in names)]
                free = isinstance(per_axis[target], slice) and per_axis[target] == slice(None)
                if known and (target == axis or free):
                    per_axis[axis], per_axis[target] = slice(None), [known[0].index(n) for n in names]
                    break
            else:
                raise IndexError(
                    f"No axis is labelled with all of {names}; a list of names selects on an axis with one "
                    "name per position (names given per sample select one name at a time: e[..., 'name'])."
                )
        return per_axis

    def _resolve_index_object(self, t: Any) -> Any:
        """Run lazy selectors against this explanation and unwrap Explanations used as indexes."""
        if isinstance(t, OpChain):
            t = t.apply(self)
        if isinstance(t, Explanation):
            t = t.values
        if not isinstance(t, (np.ndarray, list, tuple, str, slice)) and hasattr(t, "numpy"):
            t = np.asarray(t.detach().cpu() if hasattr(t, "detach") else t)  # a torch / tf tensor
        if isinstance(t, np.ndarray) and t.ndim == 0:
            t = t.item()
        if isinstance(t, np.str_):
            t = str(t)
        return t

    def _expand(self, items: list[Any]) -> list[Any]:
        """One index per axis of values: ``...`` expands, missing trailing ones are full slices."""
        n_ellipsis = sum(t is Ellipsis for t in items)
        if n_ellipsis > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if any(t is None for t in items):
            raise IndexError("np.newaxis / None is not supported when indexing an Explanation.")
        explicit = len(items) - n_ellipsis
        ndim = len(self.shape)
        if explicit > ndim:
            raise IndexError(
                f"too many indices for an Explanation of shape {self.shape}: {ndim} axes, {explicit} indexed"
            )
        if n_ellipsis:
            at = next(i for i, t in enumerate(items) if t is Ellipsis)  # not .index: arrays compare with ==
            items = items[:at] + [slice(None)] * (ndim - explicit) + items[at + 1 :]
        return items + [slice(None)] * (ndim - len(items))

    def _index_axes(self, indexers: list[Any]) -> Explanation:
        """Apply one int / slice / int array per axis to values and every field that follows that axis."""
        removed = [isinstance(ix, int) for ix in indexers]
        new_axis, shift = [], 0
        for gone in removed:
            new_axis.append(-1 if gone else len(new_axis) - shift)
            shift += gone
        fields, dims = {}, {}
        for name, value in self._fields.items():
            d = self._dims[name]
            fields[name] = _take(value, d, indexers) if d else value
            dims[name] = tuple(new_axis[a] for a in d if not removed[a])
        if "hierarchical_values" in fields and len(self._output_dims) == 1:
            ix = indexers[self._output_dims[0]]
            if not (isinstance(ix, slice) and ix == slice(None)):
                fields["hierarchical_values"] = _node_outputs(fields["hierarchical_values"], lambda _: ix)
        out = tuple(new_axis[a] for a in self._output_dims if not removed[a])
        return Explanation._build(fields, dims, out, self.compute_time)

    def _names_along(self, axis: int) -> list[tuple[str, np.ndarray]]:
        """Name fields that label ``axis``: flat along it, or per sample (axis 0) and along it."""
        found = []
        for name in ("output_names", "feature_names", "instance_names"):
            d = self._dims.get(name, ())
            if d == (axis,) or (axis != 0 and d == (0, axis)):
                found.append((name, _as_indexable(self._fields[name])))
        return found

    def _name_axis(self, axis: int, name: str, kept: list[int], claimed: set[int]) -> int:
        """The axis (numbered before indexing) a string index selects on.

        A name that labels its own axis selects there; otherwise an output name selects on the output
        axis, so ``exp[:, "espresso"]`` works whatever the number of feature axes.
        """
        if any(np.any(names == name) for _, names in self._names_along(axis)):
            return axis
        outputs = [a for a in self._output_dims if a in kept and (a == axis or a not in claimed)]
        for out in outputs:
            if any(
                np.any(names == name) for field, names in self._names_along(out) if field == "output_names"
            ):
                return out
        known = [names for field, names in self._names_along(outputs[0])] if len(outputs) == 1 else []
        hint = ""
        if known:
            shown = list(dict.fromkeys(str(v) for v in np.ravel(known[0])))
            hint = f" Known output names include: {', '.join(shown[:10])}{' ...' if len(shown) > 10 else ''}."
        if not any(self._names_along(a) for a in range(len(self.shape))):
            hint = " This explanation has no output_names or feature_names to look names up in."
        raise KeyError(f"No output or feature is named {name!r}.{hint}")

    def _select_name(self, axis: int, name: str) -> Explanation:
        """Select by name along ``axis`` (numbered after indexing); names per sample select per row."""
        found = [(f, n) for f, n in self._names_along(axis) if np.any(n == name)]
        if not found:
            raise KeyError(f"No output or feature is named {name!r} among the selected rows or outputs.")
        field, names = found[0]
        if self._dims[field] == (axis,):
            position = int(np.flatnonzero(names == name)[0])
            indexers: list[Any] = [slice(None)] * len(self.shape)
            indexers[axis] = position
            return self._index_axes(indexers)
        match = names == name
        rows = np.flatnonzero(match.any(axis=1))
        picked = self._index_axes([rows] + [slice(None)] * (len(self.shape) - 1))
        return picked._gather_per_row(axis, match[rows].argmax(axis=1))

    def _gather_per_row(self, axis: int, cols: np.ndarray) -> Explanation:
        """Keep, for each row i, only position ``cols[i]`` of ``axis``: that axis disappears."""
        rows = np.arange(len(cols))
        fields, dims = {}, {}
        for name, value in self._fields.items():
            d = self._dims[name]
            if axis in d and 0 in d:
                arr = _as_indexable(value)
                at = d.index(axis)
                fields[name] = _restore(value, arr[(rows,) + (slice(None),) * (at - 1) + (cols,)])
            elif axis in d:  # shared along rows: only kept if every row picked the same position
                if len(set(cols.tolist())) > 1:
                    continue
                arr = _as_indexable(value)
                fields[name] = _restore(value, np.take(arr, cols[0] if len(cols) else 0, axis=d.index(axis)))
            elif name == "hierarchical_values" and self._output_dims == (axis,) and d == (0,):
                fields[name] = _node_outputs(value, lambda row: int(cols[row[0]]))
            else:
                fields[name] = value
            dims[name] = tuple(a - (a > axis) for a in d if a != axis)
        out = tuple(a - (a > axis) for a in self._output_dims if a != axis)
        return Explanation._build(fields, dims, out, self.compute_time)

    # ------------------------------------------------------------------ operations

    def _map_values(self, values: np.ndarray, drop_axis: int | None = None) -> Explanation:
        """A copy with new values of the same shape; fields following ``drop_axis`` are dropped."""
        fields = dict(self._fields, values=values)
        if drop_axis is not None:
            fields = {k: v for k, v in fields.items() if k == "values" or drop_axis not in self._dims[k]}
        return Explanation._build(fields, self._dims, self._output_dims, self.compute_time)

    @_operation_property
    def abs(self) -> Explanation:
        """Absolute attributions (the data and other fields are unchanged)."""
        return self._map_values(np.abs(self.values))

    @_operation_property
    def identity(self) -> Explanation:
        """This explanation, unchanged."""
        return self

    @_operation_property
    def argsort(self) -> Explanation:
        """Indices that sort the values along the last axis, ascending (ties keep their order).

        Fields that follow the last axis (data, names along it ...) no longer line up and are dropped.
        """
        if not self.shape:
            raise ValueError("argsort needs at least one axis; this Explanation holds a single number.")
        values = np.argsort(self.values, axis=-1, kind="stable")
        return self._map_values(values, drop_axis=len(self.shape) - 1)

    @_operation_property
    def flip(self) -> Explanation:
        """Reverse every axis (``np.flip``), and every field along the axes it follows."""
        fields = {}
        for name, value in self._fields.items():
            d = self._dims[name]
            fields[name] = (
                _restore(value, np.flip(_as_indexable(value), tuple(range(len(d))))) if d else value
            )
        return Explanation._build(fields, self._dims, self._output_dims, self.compute_time)

    def _reduce(
        self, func: Callable[..., Any], axis: int | tuple[int, ...] | None, one_at_a_time: bool = True
    ) -> Explanation:
        """Apply a numpy reduction ``func(array, axis=...)`` to the values and to the fields that follow
        the reduced axis. A tuple of axes is reduced one axis after another, which gives the same result
        for the reductions where ``one_at_a_time`` holds (mean, sum, max, min over equal-sized groups)."""
        if isinstance(axis, tuple):
            axes = [self._check_axis(a) for a in axis]
            if len(set(axes)) != len(axes):
                raise ValueError(f"axis {axis!r} names an axis twice.")
            if len(axes) > 1 and not one_at_a_time:
                raise ValueError(f"axis {axis!r}: this reduction takes one axis (or None for all of them).")
            result = self
            for a in sorted(axes, reverse=True):  # the last first, so the others keep their numbers
                result = result._reduce(func, a)
            return result
        if axis is None:
            fields = {k: v for k, v in self._fields.items() if not self._dims[k]}
            fields["values"] = np.asarray(func(self.values))
            return Explanation._build(fields, dict(self._dims, values=()), (), self.compute_time)
        axis = self._check_axis(axis)
        values = np.asarray(func(self.values, axis=axis))
        fields, dims = {"values": values}, {"values": tuple(range(values.ndim))}
        for name, value in self._fields.items():
            d = self._dims[name]
            if name == "values":
                continue
            if axis in d:
                value = self._reduce_field(name, value, d.index(axis), func)
                if value is None:
                    continue
            fields[name] = value
            dims[name] = tuple(a - (a > axis) for a in d if a != axis)
        out = tuple(a - (a > axis) for a in self._output_dims if a != axis)
        return Explanation._build(fields, dims, out, self.compute_time)

    def _check_axis(self, axis: Any) -> int:
        """``axis`` as a non-negative axis number of the values, or a ValueError that says why not."""
        if (
            isinstance(axis, bool)
            or not isinstance(axis, Integral)
            or not -len(self.shape) <= axis < len(self.shape)
        ):
            raise ValueError(
                f"axis {axis!r} is not an axis of an Explanation of shape {self.shape}: pass an int, a "
                "tuple of ints or None."
            )
        return int(axis) % len(self.shape)

    @staticmethod
    def _reduce_field(name: str, value: Any, at: int, func: Callable[..., Any]) -> Any:
        """Reduce numbers alongside the values; keep other fields only if the same along the axis."""
        arr = _as_indexable(value)
        if name in _REDUCIBLE and (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            return func(arr, axis=at)
        if _identical_along(arr, at):
            return _restore(value, np.take(arr, 0, axis=at))
        return None

    @_operation_method
    def mean(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Mean over ``axis`` (base values and data are averaged alongside)."""
        return self._reduce(np.mean, axis)

    @_operation_method
    def sum(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Sum over ``axis`` (base values and data are summed alongside)."""
        return self._reduce(np.sum, axis)

    @_operation_method
    def max(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Maximum over ``axis``."""
        return self._reduce(np.max, axis)

    @_operation_method
    def min(self, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """Minimum over ``axis``."""
        return self._reduce(np.min, axis)

    @_operation_method
    def percentile(self, q: float, axis: int | tuple[int, ...] | None = None) -> Explanation:
        """The ``q``-th percentile (0-100) over ``axis``, of the values and of the data alongside."""
        if not 0 <= q <= 100:
            raise ValueError(f"q must be a percentile between 0 and 100; got {q!r}.")
        return self._reduce(functools.partial(_percentile, q=q), axis, one_at_a_time=False)

    # ------------------------------------------------------------------ arithmetic

    @_recorded
    def __mul__(self, factor: Any) -> Explanation:
        """Attributions of ``factor * f``: values and base values scaled, the data unchanged."""
        if isinstance(factor, Explanation) or np.ndim(factor) != 0:
            raise TypeError(
                "An Explanation can be multiplied by a number only (it then explains number * f); "
                "to weight pixels or outputs, work on .values."
            )
        fields = dict(self._fields, values=self.values * factor)
        for name in ("base_values", "lower_bounds", "upper_bounds", "main_effects", "hierarchical_values"):
            if name in fields:
                fields[name] = np.asarray(fields[name]) * factor
        if "error_std" in fields:
            fields["error_std"] = np.asarray(fields["error_std"]) * abs(factor)
        if factor < 0 and "lower_bounds" in fields and "upper_bounds" in fields:
            fields["lower_bounds"], fields["upper_bounds"] = fields["upper_bounds"], fields["lower_bounds"]
        return Explanation._build(fields, self._dims, self._output_dims, self.compute_time)

    @_recorded
    def __rmul__(self, factor: Any) -> Explanation:
        return self * factor

    @_recorded
    def __truediv__(self, divisor: Any) -> Explanation:
        """Attributions of ``f / divisor`` (a number)."""
        if isinstance(divisor, Explanation) or np.ndim(divisor) != 0:
            raise TypeError("An Explanation can be divided by a number only.")
        return self * (1.0 / divisor)

    @_recorded
    def __neg__(self) -> Explanation:
        return self * -1

    @_recorded
    def __add__(self, other: Any) -> Explanation:
        """Attributions of ``f + g`` from those of ``f`` and ``g`` on the same inputs: values and base
        values add. A number cannot be added: the values would no longer sum to the output."""
        if not isinstance(other, Explanation):
            raise TypeError(
                f"Only another Explanation of the same inputs can be added to an Explanation; got "
                f"{type(other).__name__}. Adding a number to every value breaks their sum to f(x)."
            )
        if other.shape != self.shape:
            raise ValueError(f"Explanations of shapes {self.shape} and {other.shape} cannot be added.")
        for name in ("output_indexes", "output_names"):
            mine, theirs = self._fields.get(name), other._fields.get(name)
            if mine is not None and theirs is not None and not np.array_equal(mine, theirs):
                raise ValueError(f"The Explanations explain different outputs (their {name} differ).")
        if self.data is not None and other.data is not None and not np.array_equal(self.data, other.data):
            raise ValueError("The Explanations are of different inputs (their data differ).")
        fields = dict(self._fields, values=self.values + other.values)
        for name in ("base_values", "main_effects"):
            if name in fields and other._fields.get(name) is not None:
                fields[name] = np.asarray(fields[name]) + np.asarray(other._fields[name])
            else:
                fields.pop(name, None)
        for name in ("lower_bounds", "upper_bounds", "error_std", "hierarchical_values"):
            fields.pop(name, None)  # they do not add up
        return Explanation._build(fields, self._dims, self._output_dims, None)

    @_recorded
    def __radd__(self, other: Any) -> Explanation:
        """``0 + e`` is ``e``, so that ``sum([e1, e2])`` works."""
        if isinstance(other, Number) and other == 0:
            return self
        return self + other

    @_recorded
    def __sub__(self, other: Any) -> Explanation:
        """Attributions of ``f - g`` (see :meth:`__add__`)."""
        if not isinstance(other, Explanation):
            raise TypeError("Only another Explanation of the same inputs can be subtracted from one.")
        return self + (-other)

    def hstack(self, other: Explanation) -> Explanation:
        """The features of ``other`` after this one's, for the same rows: values, data and feature names
        joined along axis 1. Both must explain the same rows from the same base values and outputs."""
        if not isinstance(other, Explanation):
            raise TypeError(f"hstack joins two Explanations; got {type(other).__name__}.")
        if len(self.shape) < 2 or len(other.shape) < 2 or self.shape[0] != other.shape[0]:
            raise ExplanationMismatchError(
                f"Can't hstack explanations with different numbers of rows, or without a feature axis: "
                f"shapes {self.shape} and {other.shape}."
            )
        mine, theirs = self.base_values, other.base_values
        if (mine is None) != (theirs is None) or (
            mine is not None
            and (np.shape(mine) != np.shape(theirs) or not np.allclose(mine, theirs, atol=1e-6))
        ):
            raise ExplanationMismatchError(
                "Can't hstack explanations with different base values: they explain different outputs."
            )
        for name in ("output_names", "output_indexes"):
            a, b = self._fields.get(name), other._fields.get(name)
            if a is not None and b is not None and not np.array_equal(a, b):
                raise ExplanationMismatchError(f"Can't hstack explanations of different outputs ({name}).")
        joined: dict[str, Any] = {}
        for name in ("data", "display_data"):
            a, b = self._fields.get(name), other._fields.get(name)
            if a is not None and b is not None:
                joined[name] = np.concatenate([_as_indexable(a), _as_indexable(b)], axis=1)
        names = self._fields.get("feature_names"), other._fields.get("feature_names")
        if names[0] is not None and names[1] is not None:
            joined["feature_names"] = [*_as_indexable(names[0]), *_as_indexable(names[1])]
        result = Explanation(
            values=np.concatenate([self.values, other.values], axis=1),
            base_values=mine,
            output_names=self._fields.get("output_names", other._fields.get("output_names")),
            output_indexes=self._fields.get("output_indexes", other._fields.get("output_indexes")),
            instance_names=self.instance_names,
            **joined,
        )
        result._history = (*self._history, OpHistoryItem("hstack", self.shape, (other,)))
        return result

    @_unrecorded_operation_method
    def sample(self, max_samples: int, replace: bool = False, random_state: int = 0) -> Explanation:
        """Rows drawn at random (at most ``len(self)`` of them without replacement), reproducibly."""
        rng = np.random.RandomState(random_state)
        size = max_samples if replace else min(max_samples, len(self))
        return self[rng.choice(len(self), size=size, replace=replace)]


_PROPERTY_OPS = frozenset(
    n for n, v in vars(Explanation).items() if isinstance(v, _Operation) and v.is_property
)
_METHOD_OPS = frozenset(
    n for n, v in vars(Explanation).items() if isinstance(v, _Operation) and not v.is_property
)

"""Indexing an Explanation: ``e[...]`` by position, mask or name, slicing every field along with values.

Indexing is numpy-like: ints, slices, ``...``, lists / integer arrays, 1-D boolean masks, 0-d tensors,
and output (or feature) names as strings or lists of them. At most one axis takes a list or array
(numpy and shap pair several point by point; that is refused here rather than done differently). Each
field is sliced along the axes of values it follows; a name selects on the axis it labels, and names
given per sample select per row.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from deepshap._explanation.chains import OpChain, explanation_class
from deepshap._explanation.layout import as_indexable, restore, to_array

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

AxisIndex = int | slice | np.ndarray
"""One axis's index once checked: a position, a slice, or a 1-D array of positions (int64)."""


def index(e: Explanation, item: object) -> Explanation:
    """``e[item]``: numpy-like indexing by position, mask or name (see :class:`~deepshap.Explanation`)."""
    items = list(item) if isinstance(item, tuple) else [item]
    items = [_resolve_index_object(e, t) for t in items]
    per_axis = _names_to_positions(e, _expand(e, items))
    strings = {axis: t for axis, t in enumerate(per_axis) if isinstance(t, str)}
    indexers = [
        slice(None) if isinstance(t, str) else _normalize_axis_index(t, size, axis)
        for axis, (t, size) in enumerate(zip(per_axis, e.shape, strict=True))
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
    result = _index_axes(e, indexers)
    kept = [axis for axis, ix in enumerate(indexers) if not isinstance(ix, int)]
    claimed = set(strings)
    targets = []
    for axis, name in strings.items():
        target = _name_axis(e, axis, name, kept, claimed)
        claimed.add(target)
        targets.append((kept.index(target), name))
    for axis, name in sorted(targets, reverse=True):
        result = _select_name(result, axis, name)
    return result


def _names_to_positions(e: Explanation, per_axis: list[object]) -> list[object]:
    """Turn lists of names into positions on the axis they label (this axis, else the output axis)."""
    per_axis = list(per_axis)
    for axis, t in enumerate(per_axis):
        if not isinstance(t, (list, tuple, np.ndarray)) or len(t) == 0:
            continue
        if not all(isinstance(v, (str, np.str_)) for v in np.ravel(np.asarray(t, dtype=object))):
            continue
        names = [str(v) for v in np.ravel(np.asarray(t, dtype=object))]
        for target in (axis, *e._output_dims):
            flat = [n for field, n in _names_along(e, target) if e._dims[field] == (target,)]
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


def _resolve_index_object(e: Explanation, t: object) -> object:
    """Run lazy selectors against ``e`` and unwrap Explanations used as indexes."""
    if isinstance(t, OpChain):
        t = t.apply(e)
    if isinstance(t, explanation_class()):
        t = t.values
    if not isinstance(t, (np.ndarray, list, tuple, str, slice)) and hasattr(t, "numpy"):
        tensor: Any = t  # a torch / tf tensor
        t = np.asarray(tensor.detach().cpu() if hasattr(tensor, "detach") else tensor)
    if isinstance(t, np.ndarray) and t.ndim == 0:
        t = t.item()
    if isinstance(t, np.str_):
        t = str(t)
    return t


def _expand(e: Explanation, items: list[object]) -> list[object]:
    """One index per axis of values: ``...`` expands, missing trailing ones are full slices."""
    n_ellipsis = sum(t is Ellipsis for t in items)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if any(t is None for t in items):
        raise IndexError("np.newaxis / None is not supported when indexing an Explanation.")
    explicit = len(items) - n_ellipsis
    ndim = len(e.shape)
    if explicit > ndim:
        raise IndexError(
            f"too many indices for an Explanation of shape {e.shape}: {ndim} axes, {explicit} indexed"
        )
    if n_ellipsis:
        at = next(i for i, t in enumerate(items) if t is Ellipsis)  # not .index: arrays compare with ==
        items = items[:at] + [slice(None)] * (ndim - explicit) + items[at + 1 :]
    return items + [slice(None)] * (ndim - len(items))


def _index_axes(e: Explanation, indexers: list[AxisIndex]) -> Explanation:
    """Apply one int / slice / int array per axis to values and every field that follows that axis."""
    removed = [isinstance(ix, int) for ix in indexers]
    new_axis: list[int] = []
    shift = 0
    for gone in removed:
        new_axis.append(-1 if gone else len(new_axis) - shift)
        shift += gone
    fields, dims = {}, {}
    for name, value in e._fields.items():
        d = e._dims[name]
        fields[name] = _take(value, d, indexers) if d else value
        dims[name] = tuple(new_axis[a] for a in d if not removed[a])
    if "hierarchical_values" in fields and len(e._output_dims) == 1:
        ix = indexers[e._output_dims[0]]
        if not (isinstance(ix, slice) and ix == slice(None)):
            fields["hierarchical_values"] = _node_outputs(fields["hierarchical_values"], lambda _: ix)
    out = tuple(new_axis[a] for a in e._output_dims if not removed[a])
    return e._build(fields, dims, out, e.compute_time)


def _names_along(e: Explanation, axis: int) -> list[tuple[str, np.ndarray]]:
    """Name fields that label ``axis``: flat along it, or per sample (axis 0) and along it."""
    found = []
    for name in ("output_names", "feature_names", "instance_names"):
        d = e._dims.get(name, ())
        if d == (axis,) or (axis != 0 and d == (0, axis)):
            found.append((name, as_indexable(e._fields[name])))
    return found


def _name_axis(e: Explanation, axis: int, name: str, kept: list[int], claimed: set[int]) -> int:
    """The axis (numbered before indexing) a string index selects on.

    A name that labels its own axis selects there; otherwise an output name selects on the output
    axis, so ``exp[:, "espresso"]`` works whatever the number of feature axes.
    """
    if any(np.any(names == name) for _, names in _names_along(e, axis)):
        return axis
    outputs = [a for a in e._output_dims if a in kept and (a == axis or a not in claimed)]
    for out in outputs:
        if any(np.any(names == name) for field, names in _names_along(e, out) if field == "output_names"):
            return out
    known = [names for field, names in _names_along(e, outputs[0])] if len(outputs) == 1 else []
    hint = ""
    if known:
        shown = list(dict.fromkeys(str(v) for v in np.ravel(known[0])))
        hint = f" Known output names include: {', '.join(shown[:10])}{' ...' if len(shown) > 10 else ''}."
    if not any(_names_along(e, a) for a in range(len(e.shape))):
        hint = " This explanation has no output_names or feature_names to look names up in."
    raise KeyError(f"No output or feature is named {name!r}.{hint}")


def _select_name(e: Explanation, axis: int, name: str) -> Explanation:
    """Select by name along ``axis`` (numbered after indexing); names per sample select per row."""
    found = [(f, n) for f, n in _names_along(e, axis) if np.any(n == name)]
    if not found:
        raise KeyError(f"No output or feature is named {name!r} among the selected rows or outputs.")
    field, names = found[0]
    if e._dims[field] == (axis,):
        position = int(np.flatnonzero(names == name)[0])
        indexers: list[AxisIndex] = [slice(None)] * len(e.shape)
        indexers[axis] = position
        return _index_axes(e, indexers)
    match = names == name
    rows = np.flatnonzero(match.any(axis=1))
    per_row: list[AxisIndex] = [rows, *[slice(None)] * (len(e.shape) - 1)]
    picked = _index_axes(e, per_row)
    return _gather_per_row(picked, axis, match[rows].argmax(axis=1))


def _gather_per_row(e: Explanation, axis: int, cols: np.ndarray) -> Explanation:
    """Keep, for each row i, only position ``cols[i]`` of ``axis``: that axis disappears."""
    rows = np.arange(len(cols))
    fields, dims = {}, {}
    for name, value in e._fields.items():
        d = e._dims[name]
        if axis in d and 0 in d:
            arr = as_indexable(value)
            at = d.index(axis)
            fields[name] = restore(value, arr[(rows,) + (slice(None),) * (at - 1) + (cols,)])
        elif axis in d:  # shared along rows: only kept if every row picked the same position
            if len(set(cols.tolist())) > 1:
                continue
            arr = as_indexable(value)
            fields[name] = restore(value, np.take(arr, cols[0] if len(cols) else 0, axis=d.index(axis)))
        elif name == "hierarchical_values" and e._output_dims == (axis,) and d == (0,):
            fields[name] = _node_outputs(value, lambda row: int(cols[row[0]]))
        else:
            fields[name] = value
        dims[name] = tuple(a - (a > axis) for a in d if a != axis)
    out = tuple(a - (a > axis) for a in e._output_dims if a != axis)
    return e._build(fields, dims, out, e.compute_time)


def _normalize_axis_index(ix: object, size: int, axis: int) -> AxisIndex:
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
    arr = to_array(ix, "index")
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


def _numpy_moves_the_list_axis(indexers: list[AxisIndex]) -> bool:
    """Whether numpy would put the axis of a list index first, where an Explanation keeps it in place:
    an int and a list separated by a slice, with a slice before the list (``e[1, ..., [3, 0]]``)."""
    picked = [axis for axis, ix in enumerate(indexers) if isinstance(ix, (int, np.ndarray))]
    lists = [axis for axis in picked if isinstance(indexers[axis], np.ndarray)]
    if not lists or picked[-1] - picked[0] < len(picked):  # no list, or ints and list side by side
        return False
    return any(isinstance(ix, slice) for ix in indexers[: lists[0]])


def _take(value: npt.ArrayLike, dims: tuple[int, ...], indexers: list[AxisIndex]) -> npt.ArrayLike:
    """Index a field along the axes it follows, last axis first so earlier axis numbers stay valid."""
    arr = as_indexable(value)
    for field_axis in reversed(range(len(dims))):
        ix = indexers[dims[field_axis]]
        if isinstance(ix, slice) and ix == slice(None):
            continue
        arr = arr[(slice(None),) * field_axis + (ix,)]
    return restore(value, arr)


def _node_outputs(value: npt.ArrayLike, columns: Callable[[tuple[int, ...]], AxisIndex]) -> npt.ArrayLike:
    """The Partition explainer's per-node values (a sparse ``(nodes, k)`` matrix, or an object array of
    them, one per sample) restricted to the outputs ``columns(position)`` selects; other forms of
    hierarchical values are sliced by the axes they follow and are returned as they are."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        out = np.empty(value.shape, dtype=object)
        for position, nodes in np.ndenumerate(value):
            out[position] = nodes[:, columns(position)] if hasattr(nodes, "tocsr") else nodes
        return out
    if hasattr(value, "tocsr"):
        sparse: Any = value  # a scipy.sparse matrix (nodes, k)
        return sparse[:, columns(())]
    return value

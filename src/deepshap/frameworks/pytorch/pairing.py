"""Pairing each sample with its references, and telling which tensors depend on the input.

In the pair pass row ``i*m + j`` pairs sample i with background row j, while the reference pass holds the
m background rows only. :class:`Refs` gives a rule call the references of its input-dependent arguments
in the pair pass's shape (finding the batch axis, merged or not with an inner factor such as heads), and
refuses a layout it cannot pair with :class:`AmbiguousLayout`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from deepshap._typing import CallValue
from deepshap.frameworks.pytorch import deep_rules as R
from deepshap.frameworks.pytorch.deep_rules import Pair

#: A function of one tensor to another (a reshape splitting or merging a batch axis).
TensorMap = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["TAG", "AmbiguousLayout", "Refs", "depends", "is_float", "pair_of"]

#: Attribute set on integer and boolean tensors computed from the input (masks, argmaxes): they carry no
#: gradient, so ``requires_grad`` cannot say that they depend on the input.
TAG = "_deepshap_from_input"


class AmbiguousLayout(RuntimeError):
    """Several samples per chunk cannot be paired with their references: the batch axis does not split
    into (samples, background rows, inner factor) on the values, or one background row cannot show it."""


def depends(t: object) -> bool:
    """Whether ``t`` is a tensor computed from the explained input."""
    return isinstance(t, torch.Tensor) and (t.requires_grad or getattr(t, TAG, False))


def is_float(t: object) -> bool:
    return isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())


def pair_of(t: CallValue, ref_of: Refs) -> Pair:
    """``t`` and its reference, or a constant (the same on both sides)."""
    return Pair(t, ref_of[id(t)]) if isinstance(t, torch.Tensor) and id(t) in ref_of else R.constant(t)


def batch_axis(ref: torch.Tensor, like: torch.Tensor, n: int) -> int | None:
    """The axis of ``like`` (pair pass) that holds the n samples times the reference's rows, or None.

    Row ``i*m + j`` pairs sample i with background row j, so along that axis ``like`` splits into (n, m)
    and the reference broadcasts over n. The batch may be merged with heads, as in attention
    ((batch * heads, ...)); with one sample per chunk the shapes are equal and nothing is split.
    """
    if ref.shape == like.shape:
        return None
    differ = [d for d in range(ref.dim()) if ref.shape[d] != like.shape[d]] if ref.dim() == like.dim() else []
    if len(differ) != 1 or like.shape[differ[0]] != n * ref.shape[differ[0]]:
        raise AmbiguousLayout(
            f"cannot pair a reference of shape {tuple(ref.shape)} with a pair-pass tensor of shape "
            f"{tuple(like.shape)}: the model's forward pass must treat the rows of a batch independently."
        )
    return differ[0]


class Refs:
    """The references of one rule call's input-dependent arguments (keyed by the argument's id)."""

    def __init__(self, dependent: list[torch.Tensor], refs: list[torch.Tensor], n: int, m: int) -> None:
        self._items = {id(t): (t, r) for t, r in zip(dependent, refs, strict=True)}
        self._full: dict[int, torch.Tensor] = {}
        self._checked: set[int] = set()
        self.n = n  # samples
        self.m = m  # background rows per sample
        self.inner_split = False  # an axis merging the batch with an inner factor was split

    def __contains__(self, key: int) -> bool:
        return key in self._items

    def _axis(self, key: int) -> int | None:
        """The batch axis, checked on the values: the sample side must not vary over background rows.

        Along the batch axis the reference holds m background rows times an inner factor (heads in
        (batch * heads, ...), positions in (batch * seq, ...)), so the pair tensor splits into
        (n, m, inner). Shapes alone cannot tell (batch * heads) from (heads * batch); a wrong split would
        pair sample rows with the wrong references, so it is refused here rather than left to the
        additivity check.
        """
        like, ref = self._items[key]
        axis = batch_axis(ref, like, self.n)
        rows = 1 if axis is None else ref.shape[axis]
        if axis is not None and rows > 1 and like.numel() and key not in self._checked:
            if self.m == 1 or rows % self.m:  # an inner factor that one background row cannot check
                raise AmbiguousLayout(f"batch axis of a tensor of shape {tuple(like.shape)}")
            split = like.detach().unflatten(axis, (self.n, self.m, rows // self.m))
            if not repeats(split.select(axis + 1, 0), split.select(axis + 1, self.m - 1)):
                raise AmbiguousLayout(f"batch axis of a tensor of shape {tuple(like.shape)}")
            self.inner_split |= rows > self.m
            self._checked.add(key)
        return axis

    def __getitem__(self, key: int) -> torch.Tensor:
        """The reference repeated over the samples: the pair tensor's shape (materialised once)."""
        if key not in self._full:
            like, ref = self._items[key]
            axis = self._axis(key)
            if axis is None:
                self._full[key] = ref
            else:
                view = ref.unsqueeze(axis).expand(*ref.shape[:axis], self.n, *ref.shape[axis:])
                self._full[key] = view.reshape(like.shape)
        return self._full[key]

    def raw(self, t: torch.Tensor) -> torch.Tensor:
        """The reference as recorded (background rows only)."""
        return self._items[id(t)][1]

    def split(self, t: torch.Tensor) -> tuple[TensorMap, TensorMap, TensorMap]:
        """Functions to view a pair tensor as (..., n, m, ...), a reference as (..., 1, m, ...), and back."""
        ref = self._items[id(t)][1]
        axis = self._axis(id(t))
        if axis is None:
            return same, same, same
        n, m = self.n, ref.shape[axis]
        return (
            lambda v: v.unflatten(axis, (n, m)),
            lambda v: v.unsqueeze(axis),
            lambda v: v.flatten(axis, axis + 1),
        )


def repeats(first: torch.Tensor, last: torch.Tensor) -> bool:
    """Whether two sample sides hold the same values. Equal is the usual case; otherwise the entries that
    differ may differ by at most 1e-3 of the spread of their values (not of their magnitude, so that
    neither a large mask such as -1e9 nor a large offset hides a wrong pairing), and non-finite entries
    must be equal. A false "no" only costs speed (one sample per pass)."""
    if torch.equal(first, last):
        return True
    if not first.is_floating_point():  # a condition computed from the input
        return False
    differ = first != last
    gap = torch.where(differ, first - last, 0).abs().max()
    high = torch.where(differ, torch.maximum(first, last), -math.inf).max()
    low = torch.where(differ, torch.minimum(first, last), math.inf).min()
    spread = high - low
    # one read of the device per check: this runs on every rule call of a pass
    close, finite = torch.stack([gap <= 1e-3 * spread, torch.isfinite(gap) & torch.isfinite(spread)]).tolist()
    return close and finite


def same(t: torch.Tensor) -> torch.Tensor:
    return t

"""DeepSHAP for PyTorch: DeepLIFT/Shapley rules bound to operations by a ``TorchFunctionMode``.

How it works, for a chunk of n samples and m background rows:

1. Reference pass: the model runs on the m background rows inside the mode. Each call of an operation
   with a nonlinear rule (see :mod:`deepshap.rules.pytorch_ops`) whose arguments depend on the input
   records those arguments.
2. Pair pass: the model runs on the n*m (sample, background) pairs (sample rows repeated, row
   ``i*m + j`` pairs sample i with background row j). The k-th rule call takes the k-th recorded reference,
   broadcast over the samples, and returns its output through a rule whose backward pass applies the
   DeepLIFT/Shapley multipliers (:mod:`deep_rules`). Linear operations run untouched: their gradient is
   exact. Anything else that carries the input into a floating result raises, naming the operation.
3. One vector-Jacobian product per explained output over the pairs gives the multipliers; times
   ``x - b`` and averaged over the background rows, they are the SHAP values.

Interception is at the function level, so functional calls, modules reused several times and in-place
operations all get their rule, and nothing is stored on modules. Parameters are kept out of the graph
for the duration of a call (``requires_grad`` is restored afterwards), so "depends on the input" is
exactly "requires grad".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._pytree import tree_flatten, tree_unflatten

from deepshap.frameworks.pytorch import deep_rules as R
from deepshap.frameworks.pytorch.deep_rules import Pair
from deepshap.frameworks.pytorch.model import require_autograd
from deepshap.rules import Rule
from deepshap.rules.pytorch_ops import INPLACE_ARG, INPLACE_METHODS, RULES

__all__ = ["UnsupportedOperationError", "deep_attributions"]

_TAG = "_deepshap_from_input"


class UnsupportedOperationError(TypeError):
    """An operation without a DeepLIFT/Shapley rule touched the input."""


class _OperationsDiffer(RuntimeError):
    """The pass on (sample, reference) pairs called other operations than the pass on the references."""


class _AmbiguousLayout(RuntimeError):
    """Several samples per chunk cannot be paired with their references: the batch axis does not split
    into (samples, background rows, inner factor) on the values, or one background row cannot show it."""


def deep_attributions(
    adapter: Any, inputs: list[torch.Tensor], output_index: np.ndarray, batch_size: int
) -> list[np.ndarray]:
    """Mean over background rows of multipliers * (x - b): one ``(N, *shape, R)`` array per input."""
    require_autograd("DeepExplainer")
    n_bg = int(adapter.background[0].shape[0])
    m_chunk = min(n_bg, max(1, batch_size))
    n_chunk = max(1, batch_size // m_chunk)
    index = torch.as_tensor(np.asarray(output_index, dtype=np.int64), device=inputs[0].device)
    with _frozen_parameters(adapter):
        try:
            phi = _attributions(adapter, inputs, index, m_chunk, n_chunk)
        except _AmbiguousLayout:  # one sample per chunk: pair and reference shapes are then equal
            phi = _attributions(adapter, inputs, index, m_chunk, 1)
        except _OperationsDiffer:
            if n_chunk == 1:
                raise
            # a model that loops over the rows of its batch calls more operations on more rows: one
            # sample per chunk gives both passes the same rows (data-dependent control flow fails again)
            phi = _attributions(adapter, inputs, index, m_chunk, 1)
    return [adapter.to_numpy(p / n_bg) for p in phi]


def _attributions(
    adapter: Any, inputs: list[torch.Tensor], index: torch.Tensor, m_chunk: int, n_chunk: int
) -> list[torch.Tensor]:
    """Sums over background rows of multipliers * (x - b), chunks of n_chunk samples by m_chunk rows."""
    background = adapter.background
    n_samples, n_bg, n_out = int(inputs[0].shape[0]), int(background[0].shape[0]), int(index.shape[1])
    phi = [torch.zeros((n_samples, *x.shape[1:], n_out), dtype=x.dtype, device=x.device) for x in inputs]
    layout_probed = False
    for j0 in range(0, n_bg, m_chunk):
        refs = [b[j0 : j0 + m_chunk] for b in background]
        records = _reference_pass(adapter, refs)
        for i0 in range(0, n_samples, n_chunk):
            xs = [x[i0 : i0 + n_chunk] for x in inputs]
            parts, inner_split = _pair_pass(adapter, xs, refs, records, index[i0 : i0 + n_chunk])
            if inner_split and not layout_probed:
                _probe_layout(adapter, refs, records, len(xs[0]))
                layout_probed = True
            for k, part in enumerate(parts):
                phi[k][i0 : i0 + n_chunk] += part
    return phi


def _reference_pass(adapter: Any, refs: list[torch.Tensor]) -> list[tuple[Any, list[torch.Tensor]]]:
    """Run the background rows through the model, recording the arguments of every rule call.

    Arguments are recorded as views of the live tensors; when the model later changes one of them in
    place (``p[:, 4:] = p[:, 4:].sigmoid()``), the pass runs again keeping copies of them all.
    """

    def run(copy_records: bool) -> _DeepMode:
        mode = _DeepMode(records=[], n_samples=0, copy_records=copy_records)
        leaves = [r.detach().clone().requires_grad_(True) for r in refs]
        with torch.enable_grad(), mode:
            adapter.forward([leaf.clone() for leaf in leaves])
        return mode

    mode = run(copy_records=False)
    if mode.records_changed():
        mode = run(copy_records=True)
    return mode.records


def _pair_forward(
    adapter: Any,
    xs: list[torch.Tensor],
    refs: list[torch.Tensor],
    records: list[tuple[Any, list[torch.Tensor]]],
) -> tuple[torch.Tensor, list[torch.Tensor], _DeepMode]:
    """The model on n samples times m background rows (row i*m + j: sample i, row j), rules applied:
    the output, the input leaves and the mode (call within ``torch.enable_grad()``)."""
    n, m = int(xs[0].shape[0]), int(refs[0].shape[0])
    leaves = [x.detach().repeat_interleave(m, dim=0).requires_grad_(True) for x in xs]
    mode = _DeepMode(records=records, n_samples=n, n_rows=m)
    with mode:
        out = adapter.forward([leaf.clone() for leaf in leaves])
    mode.check_consumed()
    return out, leaves, mode


def _pair_pass(
    adapter: Any,
    xs: list[torch.Tensor],
    refs: list[torch.Tensor],
    records: list[tuple[Any, list[torch.Tensor]]],
    index: torch.Tensor,
) -> tuple[list[torch.Tensor], bool]:
    """Multipliers times differences, summed over the background rows, for n samples: ``(n, *shape, R)``;
    and whether a merged batch axis was split on the values of these samples (see :func:`_probe_layout`)."""
    n, m = int(xs[0].shape[0]), int(refs[0].shape[0])
    with torch.enable_grad():
        out, leaves, mode = _pair_forward(adapter, xs, refs, records)
        if not out.requires_grad:
            raise ValueError("the model output does not depend on its input; nothing to explain.")
        selected = out.gather(1, index.repeat_interleave(m, dim=0))
        n_out = int(index.shape[1])
        deltas = [
            leaf.detach() - r.repeat((n,) + (1,) * (r.dim() - 1))
            for leaf, r in zip(leaves, refs, strict=True)
        ]
        columns: list[list[torch.Tensor]] = [[] for _ in leaves]
        for col in range(n_out):
            grads = torch.autograd.grad(
                selected[:, col].sum(), leaves, retain_graph=col < n_out - 1, allow_unused=True
            )
            # The rules reuse their gradient buffers in the next backward pass: use g before it.
            for k, (g, delta) in enumerate(zip(grads, deltas, strict=True)):
                contrib = torch.zeros_like(delta) if g is None else g * delta
                columns[k].append(contrib.reshape(n, m, *delta.shape[1:]).sum(1))
    return [torch.stack(cols, dim=-1) for cols in columns], mode.inner_split


def _probe_layout(
    adapter: Any, refs: list[torch.Tensor], records: list[tuple[Any, list[torch.Tensor]]], n: int
) -> None:
    """Check the split of merged batch axes again on made-up samples (background rows plus noise).

    Where the batch is merged with an inner factor ((batch * tokens, ...)), the split is checked on the
    values: the sample side must repeat over the background rows. Samples that are equal to each other or
    constant along the tokens can pass a wrong split; generic values cannot, and the layout belongs to
    the model, not to the data. Raises :class:`_AmbiguousLayout` where the split does not hold.
    """
    generator = torch.Generator(device=refs[0].device).manual_seed(0)
    xs = []
    for ref in refs:
        rows = ref[torch.arange(n, device=ref.device) % len(ref)]
        scale = ref.std(0, correction=0) + 0.1 * ref.abs().mean() + 1e-3
        noise = torch.randn(rows.shape, generator=generator, device=ref.device, dtype=ref.dtype)
        xs.append(rows + noise * scale)
    with torch.enable_grad():  # the rules follow the input through requires_grad; no backward pass
        _pair_forward(adapter, xs, refs, records)


@contextlib.contextmanager
def _frozen_parameters(adapter: Any) -> Iterator[None]:
    """Parameters out of the graph for the duration of the block (``requires_grad`` restored after)."""
    module = getattr(adapter, "module", None)
    params = [p for p in module.parameters() if p.requires_grad] if module is not None else []
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# the interception mode ---------------------------------------------------------------------------
_NAMES: dict[Any, str] = {}


def _name_of(func: Any) -> str:
    name = _NAMES.get(func)
    if name is None:
        try:
            name = resolve_name(func) or repr(func)
        except Exception:  # noqa: BLE001 - a name is only used for lookup and messages
            name = repr(func)
        _NAMES[func] = name
    return name


def _depends(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and (t.requires_grad or getattr(t, _TAG, False))


def _is_float(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())


class _DeepMode(TorchFunctionMode):
    """Reference pass (``n_samples == 0``): records rule arguments. Pair pass: applies the rules."""

    def __init__(
        self,
        records: list[tuple[Any, list[torch.Tensor]]],
        n_samples: int,
        copy_records: bool = False,
        n_rows: int = 1,
    ) -> None:
        super().__init__()
        self.records = records
        self.n_samples = n_samples
        self.n_rows = n_rows  # background rows per sample in the pair pass
        self.inner_split = False  # a merged batch axis was split on the values (see _Refs._axis)
        self.position = 0
        self.copy_records = copy_records
        self._versions: list[list[int]] = []  # version counters of the recorded tensors when recorded

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        flat, _ = tree_flatten((args, kwargs))
        dependent = [t for t in flat if _depends(t)]
        if not dependent:
            return func(*args, **kwargs)
        name = _name_of(func)
        rule = RULES.get(name)
        if rule is None:
            return _unknown(func, name, args, kwargs)
        condition = None
        if rule is Rule.SELECT:
            operands = _select_operands(name, args, kwargs)
            if operands is None or not _depends(operands[0]):  # a constant condition: linear
                rule = Rule.LINEAR
            else:
                condition = operands[0]
                if not (_depends(operands[1]) or _depends(operands[2])):
                    raise UnsupportedOperationError(
                        f"{name} chooses between values that do not depend on the input, on a condition "
                        "that does (a step function); DeepLIFT has no rule for it."
                    )
        discrete = [t for t in dependent if not _is_float(t) and t is not condition]
        if discrete and len(discrete) == len(dependent) and rule is Rule.LINEAR:
            return _unknown(func, name, args, kwargs)  # a view or copy of a mask: a mask again
        if discrete:
            raise UnsupportedOperationError(
                f"{name} uses a mask or index computed from the input (a data-dependent selection); "
                "DeepLIFT has no rule for it. Compute masks from constants, or explain the model's "
                "input to this part instead."
            )
        if rule is Rule.LINEAR or (rule is Rule.BILINEAR and _linear_call(name, args, kwargs)):
            _check_linear(name, args, kwargs)
            return _tag_discrete(func(*args, **kwargs), name)
        if rule is Rule.DECOMPOSE:
            with self:  # the primitives of the decomposition are intercepted again, each with its rule
                return _DECOMPOSITIONS[name.rsplit(".", 1)[-1]](*args, **kwargs)
        if self.n_samples == 0:
            copy = self.copy_records or _inplace(name, args, kwargs)
            saved = [t.detach().clone() if copy else t.detach() for t in dependent]
            self.records.append((func, saved))
            self._versions.append([t._version for t in saved])
            return func(*args, **kwargs)
        return self._apply_rule(func, name, rule, args, kwargs, dependent)

    def _apply_rule(
        self, func: Any, name: str, rule: Rule, args: Sequence[Any], kwargs: dict, dependent: list
    ) -> Any:
        if self.position >= len(self.records) or self.records[self.position][0] is not func:
            raise _OperationsDiffer(
                f"the model's forward pass called {name} where the reference pass did not: deepshap needs a "
                "forward pass whose operations do not depend on the input values (no data-dependent "
                "control flow)."
            )
        refs = self.records[self.position][1]
        self.position += 1
        ref_of = _Refs(dependent, refs, self.n_samples, self.n_rows)
        result = _RULE_IMPLS[rule](func, name, list(args), kwargs, ref_of)
        self.inner_split |= ref_of.inner_split
        return result

    def records_changed(self) -> bool:
        """Whether a recorded tensor was changed in place after it was recorded."""
        return any(
            t._version != version
            for (_, saved), versions in zip(self.records, self._versions, strict=True)
            for t, version in zip(saved, versions, strict=True)
        )

    def check_consumed(self) -> None:
        if self.position != len(self.records):
            raise RuntimeError(
                "the pair pass made fewer rule calls than the reference pass: the model's forward pass must "
                "not depend on the input values (no data-dependent control flow)."
            )


def _unknown(func: Any, name: str, args: Sequence[Any], kwargs: dict) -> Any:
    """Operations with no rule: fine when no floating result carries the input on, else an error."""
    out = func(*args, **kwargs)
    outputs, _ = tree_flatten(out)
    if any(_is_float(t) for t in outputs) or not outputs:
        raise UnsupportedOperationError(
            f"DeepExplainer has no DeepLIFT/Shapley rule for {name}, which the model applies to a tensor "
            "computed from its input. Rewrite that part with supported operations (see "
            "deepshap.rules.pytorch_ops), or explain with GradientExplainer."
        )
    for t in outputs:
        if isinstance(t, torch.Tensor):
            setattr(t, _TAG, True)
    return out


# linear operations whose result does not depend on the values of their input, only on its shape
_VALUE_FREE = frozenset(
    "zeros_like ones_like empty_like full_like new_zeros new_ones new_empty new_full new_tensor".split()
)


def _tag_discrete(out: Any, name: str) -> Any:
    """Mark the integer or boolean results of linear operation ``name`` on the input (``x.to(torch.bool)``)
    as computed from it, so that using them as a mask or an index gets its rule or an error, never a
    constant's. Floating results (the usual case) are left as they are, at the cost of a dtype check."""
    for t in [out] if isinstance(out, torch.Tensor) else tree_flatten(out)[0]:
        if isinstance(t, torch.Tensor) and not _is_float(t) and name.rsplit(".", 1)[-1] not in _VALUE_FREE:
            setattr(t, _TAG, True)
    return out


def _check_linear(name: str, args: Sequence[Any], kwargs: dict) -> None:
    """Operations that are linear only in evaluation mode."""
    short = name.rsplit(".", 1)[-1]
    if "dropout" in short:
        training = kwargs.get("training", args[2] if len(args) > 2 else True)
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        if training and p > 0:
            raise UnsupportedOperationError(
                f"{name} is called with training=True (random); put the model in eval mode (model.eval())."
            )
    elif short == "batch_norm":
        training = kwargs.get("training", args[5] if len(args) > 5 else False)
        if training:
            raise UnsupportedOperationError(
                f"{name} uses batch statistics (training=True), which couple the rows of a batch; "
                "put the model in eval mode (model.eval())."
            )
    elif short in ("div", "divide", "true_divide") and kwargs.get("rounding_mode") is not None:
        raise UnsupportedOperationError(
            f"{name} with rounding_mode has no DeepLIFT rule (it is piecewise constant)."
        )


_DIVISIONS = (
    "div",
    "div_",
    "divide",
    "true_divide",
    "__truediv__",
    "__itruediv__",
    "__rtruediv__",
    "__div__",
)
_ADDITIVE_FIRST = ("addmm", "baddbmm", "addbmm")


def _linear_call(name: str, args: Sequence[Any], kwargs: dict) -> bool:
    """A product or quotient linear in the input: one input-dependent factor, or only the numerator."""
    short = name.rsplit(".", 1)[-1]
    if short in _DIVISIONS:
        denominator = (
            args[0] if short == "__rtruediv__" else (args[1] if len(args) > 1 else kwargs.get("other"))
        )
        return not _depends(denominator)
    flat = tree_flatten((list(args), kwargs))[0]
    factors = [t for i, t in enumerate(flat) if _depends(t) and not (short in _ADDITIVE_FIRST and i == 0)]
    return len(factors) <= 1


def _inplace(name: str, args: Sequence[Any], kwargs: dict) -> bool:
    if name in INPLACE_METHODS:
        return True
    position = INPLACE_ARG.get(name)
    if position is None:
        return False
    return bool(kwargs.get("inplace", args[position] if len(args) > position else False))


def _batch_axis(ref: torch.Tensor, like: torch.Tensor, n: int) -> int | None:
    """The axis of ``like`` (pair pass) that holds the n samples times the reference's rows, or None.

    Row ``i*m + j`` pairs sample i with background row j, so along that axis ``like`` splits into (n, m)
    and the reference broadcasts over n. The batch may be merged with heads, as in attention
    ((batch * heads, ...)); with one sample per chunk the shapes are equal and nothing is split.
    """
    if ref.shape == like.shape:
        return None
    differ = [d for d in range(ref.dim()) if ref.shape[d] != like.shape[d]] if ref.dim() == like.dim() else []
    if len(differ) != 1 or like.shape[differ[0]] != n * ref.shape[differ[0]]:
        raise _AmbiguousLayout(
            f"cannot pair a reference of shape {tuple(ref.shape)} with a pair-pass tensor of shape "
            f"{tuple(like.shape)}: the model's forward pass must treat the rows of a batch independently."
        )
    return differ[0]


class _Refs:
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
        axis = _batch_axis(ref, like, self.n)
        rows = 1 if axis is None else ref.shape[axis]
        if axis is not None and rows > 1 and like.numel() and key not in self._checked:
            if self.m == 1 or rows % self.m:  # an inner factor that one background row cannot check
                raise _AmbiguousLayout(f"batch axis of a tensor of shape {tuple(like.shape)}")
            split = like.detach().unflatten(axis, (self.n, self.m, rows // self.m))
            if not _repeats(split.select(axis + 1, 0), split.select(axis + 1, self.m - 1)):
                raise _AmbiguousLayout(f"batch axis of a tensor of shape {tuple(like.shape)}")
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

    def split(self, t: torch.Tensor) -> tuple[Callable, Callable, Callable]:
        """Functions to view a pair tensor as (..., n, m, ...), a reference as (..., 1, m, ...), and back."""
        ref = self._items[id(t)][1]
        axis = self._axis(id(t))
        if axis is None:
            return _same, _same, _same
        n, m = self.n, ref.shape[axis]
        return (
            lambda v: v.unflatten(axis, (n, m)),
            lambda v: v.unsqueeze(axis),
            lambda v: v.flatten(axis, axis + 1),
        )


def _repeats(first: torch.Tensor, last: torch.Tensor) -> bool:
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


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


# rule implementations ---------------------------------------------------------------------------
def _substitute(args: list, kwargs: dict, mapping: dict[int, Any]) -> tuple[list, dict]:
    flat, spec = tree_flatten((args, kwargs))
    flat = [mapping.get(id(t), t) if isinstance(t, torch.Tensor) else t for t in flat]
    new_args, new_kwargs = tree_unflatten(flat, spec)
    return list(new_args), dict(new_kwargs)


def _out_of_place(func: Any, name: str, args: list, kwargs: dict) -> tuple[Any, list, dict, bool]:
    """The out-of-place form of a call, and whether the call was in place."""
    if name in INPLACE_METHODS:
        return _resolve(INPLACE_METHODS[name]), args, kwargs, True
    position = INPLACE_ARG.get(name)
    if position is not None:
        if "inplace" in kwargs:
            inplace, kwargs = bool(kwargs["inplace"]), {**kwargs, "inplace": False}
            return func, args, kwargs, inplace
        if len(args) > position:
            inplace = bool(args[position])
            args = [*args[:position], False, *args[position + 1 :]]
            return func, args, kwargs, inplace
    return func, args, kwargs, False


_RESOLVED: dict[str, Any] = {}


def _resolve(name: str) -> Any:
    if name not in _RESOLVED:
        obj: Any = torch
        for part in name.split(".")[1:]:
            obj = getattr(obj, part)
        _RESOLVED[name] = obj
    return _RESOLVED[name]


def _finish(target: torch.Tensor, out: torch.Tensor, inplace: bool) -> torch.Tensor:
    if not inplace:
        return out
    target.copy_(out)
    return target


def _rescale_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    func, args, kwargs, inplace = _out_of_place(func, name, args, kwargs)
    tensors = [t for t in tree_flatten((args, kwargs))[0] if id(t) in ref_of]
    if len(tensors) != 1:
        raise UnsupportedOperationError(f"{name} with several input-dependent arguments has no rule.")
    x = tensors[0]

    def fn(t: torch.Tensor) -> torch.Tensor:
        a, k = _substitute(args, kwargs, {id(x): t})
        return func(*a, **k)

    others = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t is not x]
    if others:  # other tensor arguments broadcast against x's own shape
        return _finish(x, R.rescale(fn, x, ref_of[id(x)]), inplace)
    to_split, ref_split, merge = ref_of.split(x)
    return _finish(x, merge(R.rescale(fn, to_split(x), ref_split(ref_of.raw(x)))), inplace)


def _pair_of(t: Any, ref_of: dict) -> Pair:
    return Pair(t, ref_of[id(t)]) if isinstance(t, torch.Tensor) and id(t) in ref_of else R.constant(t)


def _shapley_pair_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    func, args, kwargs, inplace = _out_of_place(func, name, args, kwargs)
    if len(args) < 2:  # operands by name: torch.pow(x, exponent=2), torch.maximum(input=x, other=y)
        args, kwargs = _operands_by_name(name, args, kwargs)
    a, b, rest = args[0], args[1], args[2:]
    if not (_depends(a) and _depends(b)):  # a function of one operand: the rescale rule, cheaper
        x = a if _depends(a) else b
        if isinstance(b if x is a else a, torch.Tensor):  # a constant tensor broadcasts against x's shape
            to_split, ref_split, merge, raw = _same, _same, _same, ref_of[id(x)]
        else:
            (to_split, ref_split, merge), raw = ref_of.split(x), ref_of.raw(x)

        def unary(t: torch.Tensor) -> torch.Tensor:
            return func(t, b, *rest, **kwargs) if x is a else func(a, t, *rest, **kwargs)

        return _finish(a, merge(R.rescale(unary, to_split(x), ref_split(raw))), inplace)
    out = R.shapley_pair(lambda u, v: func(u, v, *rest, **kwargs), _pair_of(a, ref_of), _pair_of(b, ref_of))
    return _finish(a, out.x, inplace)


def _operands_by_name(name: str, args: list, kwargs: dict) -> tuple[list, dict]:
    """The two operands of a binary function moved from ``kwargs`` into ``args``."""
    args, kwargs = list(args), dict(kwargs)
    for position, keys in ((0, ("input", "self")), (1, ("exponent", "other"))):
        for key in keys:
            if len(args) == position and key in kwargs:
                args.append(kwargs.pop(key))
    if len(args) < 2:
        raise UnsupportedOperationError(
            f"{name} called with operands DeepExplainer cannot find: {list(kwargs)}."
        )
    return args, kwargs


def _select_operands(name: str, args: Sequence[Any], kwargs: dict) -> tuple[Any, Any, Any] | None:
    """``(condition, chosen, other)`` of a three-operand ``where`` or of ``masked_fill`` (the fill value is
    chosen where the mask is True); None for ``torch.where(condition)``, which returns indices."""
    short = name.rsplit(".", 1)[-1]
    if short.startswith("masked_fill"):
        bound = dict(zip(("input", "mask", "value"), args, strict=False)) | kwargs
        return bound.get("mask"), bound.get("value"), bound.get("input")
    method = name.startswith("torch.Tensor.")
    keys = ("input", "condition", "other") if method else ("condition", "input", "other")
    bound = dict(zip(keys, args, strict=False)) | kwargs
    if "input" not in bound or "other" not in bound:
        return None
    return bound["condition"], bound["input"], bound["other"]


def _select_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    func, args, kwargs, inplace = _out_of_place(func, name, args, kwargs)
    condition, chosen, other = _select_operands(name, args, kwargs)  # type: ignore[misc]
    out, step = R.select(condition, ref_of[id(condition)], _pair_of(chosen, ref_of), _pair_of(other, ref_of))
    if step:
        raise UnsupportedOperationError(
            f"the condition of {name} differs between an input and a reference where neither of the values "
            "it chooses between changes (a step function), or where the output's change is too large to "
            "split (a fill of -inf or of the dtype's minimum); DeepLIFT has no rule for that."
        )
    return _finish(args[0], out.x, inplace)


def _bilinear_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    short = name.rsplit(".", 1)[-1]
    inplace = short.endswith("_") and not short.startswith("__") or short.startswith("__i")
    if short in _DIVISIONS:
        if kwargs.get("rounding_mode") is not None:
            _check_linear(name, args, kwargs)
        num, den = (args[1], args[0]) if short == "__rtruediv__" else (args[0], args[1])
        out = R.divide(_pair_of(num, ref_of), _pair_of(den, ref_of)).x
        return _finish(args[0], out, inplace)
    if short in ("mul", "mul_", "multiply", "__mul__", "__rmul__", "__imul__"):
        out = R.multiply(_pair_of(args[0], ref_of), _pair_of(args[1], ref_of)).x
        return _finish(args[0], out, inplace)
    flat, spec = tree_flatten((args, kwargs))
    slots = [i for i, t in enumerate(flat) if isinstance(t, torch.Tensor) and id(t) in ref_of]
    if len([i for i in slots if not (short in _ADDITIVE_FIRST and i == 0)]) > 2:
        raise UnsupportedOperationError(f"{name} multiplies more than two input-dependent tensors; no rule.")

    def fn(*values: torch.Tensor) -> torch.Tensor:
        new = list(flat)
        for i, value in zip(slots, values, strict=True):
            new[i] = value
        a, k = tree_unflatten(new, spec)
        return func(*a, **k)

    return R.bilinear(fn, [Pair(flat[i], ref_of[id(flat[i])]) for i in slots]).x


def _max_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    short = name.rsplit(".", 1)[-1]
    if "pool" in short:
        return _max_pool(short, args, kwargs, ref_of)
    x = args[0]
    other = args[1] if len(args) > 1 else kwargs.get("other")
    if isinstance(other, torch.Tensor):  # torch.max(a, b) is the element-wise maximum
        fn = torch.maximum if short == "max" else torch.minimum
        return R.shapley_pair(fn, _pair_of(x, ref_of), _pair_of(other, ref_of)).x
    sign = 1.0 if short in ("max", "amax") else -1.0
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    keepdim = bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))
    dims = (
        list(range(x.dim())) if dim is None or dim == () else ([dim] if isinstance(dim, int) else list(dim))
    )
    dims = sorted(d % max(x.dim(), 1) for d in dims)
    values, indices = _reduce_max(sign * x, sign * ref_of[id(x)], dims)
    values = sign * values
    if keepdim:
        for d in dims:
            values, indices = values.unsqueeze(d), indices.unsqueeze(d)
    setattr(indices, _TAG, True)  # the sample's argmax: an index computed from the input
    if short in ("amax", "amin") or dim is None:
        return values
    return (
        torch.return_types.max((values, indices))
        if short == "max"
        else torch.return_types.min((values, indices))
    )


def _reduce_max(x: torch.Tensor, r: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over ``dims`` with the max rule; returns values and the sample's flat argmax (reduced shape)."""
    keep = [d for d in range(x.dim()) if d not in dims]
    order = keep + dims
    kept_shape = [x.shape[d] for d in keep]

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.permute(order).reshape(*kept_shape, -1)

    xf, rf = flat(x), flat(r)
    with torch.no_grad():
        y, idx_x = xf.detach().max(-1, keepdim=True)
        y_ref, idx_r = rf.max(-1, keepdim=True)
    out = R.route_max(xf, rf, y, y_ref, idx_x, idx_r)
    return out.squeeze(-1), idx_x.squeeze(-1)


def _max_pool(short: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    """max_pool / adaptive_max_pool (any dimension): the max rule over each window."""
    base = short.replace("_with_indices", "")
    kwargs = dict(kwargs)
    requested = bool(kwargs.pop("return_indices", False))  # popped always: it is passed below
    want_indices = short.endswith("_with_indices") or requested
    keep = 2 if base.startswith("adaptive") else 6
    want_indices = want_indices or (len(args) > keep and bool(args[keep]))
    args = args[:keep]
    x = args[0]
    with torch.no_grad():
        y, idx_x = getattr(F, base)(x.detach(), *args[1:], return_indices=True, **kwargs)
        y_ref, idx_r = getattr(F, base)(ref_of.raw(x), *args[1:], return_indices=True, **kwargs)
    spatial = int(base[-2])
    to_split, ref_split, merge = ref_of.split(x)

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(-spatial) if spatial > 1 else t

    out = R.route_max(
        flat(to_split(x)),
        flat(ref_split(ref_of.raw(x))),
        flat(to_split(y)),
        flat(ref_split(y_ref)),
        flat(to_split(idx_x)),
        flat(ref_split(idx_r)),
    )
    out = merge(out.reshape(to_split(y).shape))
    setattr(idx_x, _TAG, True)  # the sample's argmax per window: an index computed from the input
    return (out, idx_x) if want_indices else out


def _softmax_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    short = name.rsplit(".", 1)[-1]
    x = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    dtype = kwargs.get("dtype")
    if dim is None:
        dim = 0 if x.dim() in (0, 1, 3) else 1
    pair = _pair_of(x, ref_of)
    if dtype is not None:
        pair = pair.map(lambda t: t.to(dtype))
    if short == "softmin":
        pair = pair.map(lambda t: -t)
        short = "softmax"
    if short == "logsumexp":
        keepdim = bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))
        rank = pair.x.dim()
        dims = sorted({d % rank for d in ([dim] if isinstance(dim, int) else dim)})
        if len(dims) != 1:  # the reduced axes moved last, in order, and merged into one
            last = list(range(rank - len(dims), rank))
            flat_pair = pair.map(lambda t: t.movedim(dims, last).flatten(last[0]))
            out = R.softmax_family("logsumexp", flat_pair, -1, keepdim=False)
            for d in dims if keepdim else []:
                out = out.map(lambda t, d=d: t.unsqueeze(d))
            return out.x
        return R.softmax_family("logsumexp", pair, dims[0], keepdim=keepdim).x
    return R.softmax_family(short, pair, dim).x


def _norm_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    short = name.rsplit(".", 1)[-1]
    names = {
        "layer_norm": ("input", "normalized_shape", "weight", "bias", "eps"),
        "group_norm": ("input", "num_groups", "weight", "bias", "eps"),
        "rms_norm": ("input", "normalized_shape", "weight", "eps"),
    }[short]
    bound = dict(zip(names, args, strict=False)) | kwargs
    for key in ("weight", "bias"):
        if _depends(bound.get(key)):
            raise UnsupportedOperationError(f"{name} with an input-dependent {key} has no rule.")
    pair = _pair_of(bound["input"], ref_of)
    if short == "layer_norm":
        shape = bound["normalized_shape"]
        shape = [shape] if isinstance(shape, int) else list(shape)
        return R.layer_norm(pair, shape, bound.get("weight"), bound.get("bias"), bound.get("eps", 1e-5)).x
    if short == "group_norm":
        return R.group_norm(
            pair, bound["num_groups"], bound.get("weight"), bound.get("bias"), bound.get("eps", 1e-5)
        ).x
    shape = bound["normalized_shape"]
    shape = [shape] if isinstance(shape, int) else list(shape)
    return R.rms_norm(pair, shape, bound.get("weight"), bound.get("eps")).x


def _attention_rule(func: Any, name: str, args: list, kwargs: dict, ref_of: dict) -> Any:
    if name.endswith("scaled_dot_product_attention"):
        return _sdpa(args, kwargs, ref_of)
    return _multi_head_attention(args, kwargs, ref_of)


def _sdpa(args: list, kwargs: dict, ref_of: dict) -> torch.Tensor:
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    b = dict(zip(names, args, strict=False)) | kwargs
    if b.get("dropout_p", 0.0):
        raise UnsupportedOperationError(
            "scaled_dot_product_attention with dropout_p > 0 is random; use dropout_p=0."
        )
    _check_constant_masks("scaled_dot_product_attention", b, ("attn_mask",))
    q, k, v = (_pair_of(b[key], ref_of) for key in ("query", "key", "value"))
    if b.get("enable_gqa") and k.x.shape[-3] != q.x.shape[-3]:
        rep = q.x.shape[-3] // k.x.shape[-3]
        k, v = (p.map(lambda t: t.repeat_interleave(rep, dim=-3)) for p in (k, v))
    scale = b.get("scale") or 1.0 / math.sqrt(q.x.shape[-1])
    mask = R.additive_mask(b.get("attn_mask"), bool(b.get("is_causal")), (q.x.shape[-2], k.x.shape[-2]), q.x)
    return R.attention(q, k, v, mask, scale)[0].x


_MHA_ARGS = (
    "query key value embed_dim_to_check num_heads in_proj_weight in_proj_bias bias_k bias_v add_zero_attn "
    "dropout_p out_proj_weight out_proj_bias training key_padding_mask need_weights attn_mask "
    "use_separate_proj_weight q_proj_weight k_proj_weight v_proj_weight static_k static_v "
    "average_attn_weights is_causal"
).split()


def _multi_head_attention(args: list, kwargs: dict, ref_of: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """F.multi_head_attention_forward as projections, attention per head and the output projection."""
    b = dict(zip(_MHA_ARGS, args, strict=False)) | kwargs
    if b.get("bias_k") is not None or b.get("add_zero_attn") or b.get("static_k") is not None:
        raise UnsupportedOperationError(
            "multi-head attention with bias_k/add_zero_attn/static_k has no rule."
        )
    if b.get("training", True) and b.get("dropout_p", 0.0):
        raise UnsupportedOperationError(
            "multi-head attention with dropout in training mode; call model.eval()."
        )
    query, key, value = (_pair_of(b[k], ref_of) for k in ("query", "key", "value"))
    unbatched = query.x.dim() == 2
    if unbatched:
        query, key, value = (p.map(lambda t: t.unsqueeze(1)) for p in (query, key, value))
    tgt_len, bsz, embed = query.x.shape
    heads = int(b["num_heads"])
    head_dim = embed // heads
    if b.get("use_separate_proj_weight"):
        weights = (b["q_proj_weight"], b["k_proj_weight"], b["v_proj_weight"])
    else:
        weights = b["in_proj_weight"].chunk(3)
    biases = (None,) * 3 if b.get("in_proj_bias") is None else b["in_proj_bias"].chunk(3)

    def project(p: Pair, w: torch.Tensor, bias: Any) -> Pair:
        return p.map(lambda t: F.linear(t, w, bias)).map(
            lambda t: t.reshape(t.shape[0], bsz * heads, head_dim).transpose(0, 1)
        )

    q, k, v = (project(p, w, bias) for p, w, bias in zip((query, key, value), weights, biases, strict=True))
    src_len = k.x.shape[1]
    mask = _mha_mask(b, bsz, heads, tgt_len, src_len, q.x)
    out, weights_pair = R.attention(q, k, v, mask, 1.0 / math.sqrt(head_dim))
    out = out.map(lambda t: t.transpose(0, 1).reshape(tgt_len, bsz, embed))
    out = out.map(lambda t: F.linear(t, b["out_proj_weight"], b.get("out_proj_bias")))
    attn = None
    if b.get("need_weights", True):
        attn = weights_pair.x.reshape(bsz, heads, tgt_len, src_len)
        if b.get("average_attn_weights", True):
            attn = attn.mean(dim=1)
        if unbatched:
            attn = attn.squeeze(0)
    result = out.x.squeeze(1) if unbatched else out.x
    return result, attn


def _check_constant_masks(name: str, bound: dict, keys: tuple[str, ...]) -> None:
    """Attention masks are added to the scores as constants: one computed from the input is an error."""
    for key in keys:
        if _depends(bound.get(key)):
            raise UnsupportedOperationError(
                f"The {key} of {name} is computed from the model's input (a position bias, say), but "
                "its rule here takes it for a constant. Add it to the scores yourself, "
                "softmax(q @ k.transpose(-2, -1) * scale + mask) @ v, which is supported."
            )


def _mha_mask(b: dict, bsz: int, heads: int, tgt: int, src: int, like: torch.Tensor) -> torch.Tensor | None:
    _check_constant_masks("multi-head attention", b, ("attn_mask", "key_padding_mask"))
    attn_mask = b.get("attn_mask")
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = ~attn_mask  # multi-head attention masks True = may not attend; additive_mask keeps True
    attn_mask = R.additive_mask(attn_mask, False, (tgt, src), like)
    if b.get("is_causal") and attn_mask is None:
        attn_mask = R.additive_mask(None, True, (tgt, src), like)
    padding = b.get("key_padding_mask")
    if padding is None:
        return attn_mask
    if padding.dtype == torch.bool:
        pad = torch.zeros(padding.shape, dtype=like.dtype, device=like.device).masked_fill(padding, -math.inf)
    else:
        pad = padding.to(like.dtype)
    pad = pad.reshape(bsz, 1, 1, src).expand(bsz, heads, 1, src).reshape(bsz * heads, 1, src)
    pad = pad.clamp(min=torch.finfo(like.dtype).min / 4)
    return pad if attn_mask is None else (attn_mask + pad).clamp(min=torch.finfo(like.dtype).min / 4)


_RULE_IMPLS = {
    Rule.RESCALE: _rescale_rule,
    Rule.SHAPLEY_PAIR: _shapley_pair_rule,
    Rule.BILINEAR: _bilinear_rule,
    Rule.MAX: _max_rule,
    Rule.SOFTMAX: _softmax_rule,
    Rule.NORM: _norm_rule,
    Rule.ATTENTION: _attention_rule,
    Rule.SELECT: _select_rule,
}


# decompositions into primitives that have rules ---------------------------------------------------
def _dims(x: torch.Tensor, dim: Any) -> list[int]:
    if dim is None:
        return list(range(x.dim()))
    return [dim] if isinstance(dim, int) else list(dim)


def _var(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """var(x, dim, unbiased/correction, keepdim) as mean-centring, square and sum."""
    rest = list(args)
    dim, unbiased = kwargs.get("dim"), kwargs.get("unbiased")
    if rest and isinstance(rest[0], bool):
        unbiased = rest.pop(0)
    elif rest:
        dim = rest.pop(0)
    if rest and isinstance(rest[0], bool) and unbiased is None:
        unbiased = rest.pop(0)
    keepdim = bool(rest.pop(0)) if rest else bool(kwargs.get("keepdim", False))
    correction = kwargs.get("correction")
    correction = (1 if unbiased in (None, True) else 0) if correction is None else correction
    dims = _dims(x, dim)
    count = math.prod(x.shape[d] for d in dims)
    centred = x - x.mean(dims, keepdim=True)
    return torch.square(centred).sum(dims, keepdim=keepdim) / max(count - correction, 0)


def _std(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return torch.sqrt(_var(x, *args, **kwargs))


def _vector_norm(x: torch.Tensor, p: Any, dim: Any, keepdim: bool) -> torch.Tensor:
    dims = _dims(x, dim)
    if p in (2, 2.0, "fro", None):
        return torch.sqrt(torch.square(x).sum(dims, keepdim=keepdim))
    if p in (1, 1.0):
        return torch.abs(x).sum(dims, keepdim=keepdim)
    if p in (math.inf, float("inf")):
        return torch.abs(x).amax(dims, keepdim=keepdim)
    raise UnsupportedOperationError(f"a norm of order {p!r} has no rule; use p=1, 2 or inf.")


def _norm(
    x: torch.Tensor,
    p: Any = "fro",
    dim: Any = None,
    keepdim: bool = False,
    out: Any = None,
    dtype: Any = None,
) -> torch.Tensor:
    return _vector_norm(x if dtype is None else x.to(dtype), p, dim, keepdim)


def _linalg_vector_norm(
    x: torch.Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> torch.Tensor:
    return _vector_norm(x if dtype is None else x.to(dtype), ord, dim, keepdim)


def _normalize(
    x: torch.Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None
) -> torch.Tensor:
    return x / _vector_norm(x, p, dim, True).clamp_min(eps)


def _glu(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    a, b = x.chunk(2, dim)
    return a * torch.sigmoid(b)


def _instance_norm(
    x: torch.Tensor,
    running_mean: Any = None,
    running_var: Any = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Per-sample, per-channel normalisation over the spatial axes (or by running statistics)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if use_input_stats:
        dims = list(range(2, x.dim()))
        centred = x - x.mean(dims, keepdim=True)
        out = centred * torch.rsqrt(torch.square(centred).mean(dims, keepdim=True) + eps)
    else:
        out = (x - running_mean.reshape(shape)) / torch.sqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


_DECOMPOSITIONS = {
    "var": _var,
    "std": _std,
    "norm": _norm,
    "vector_norm": _linalg_vector_norm,
    "normalize": _normalize,
    "glu": _glu,
    "instance_norm": _instance_norm,
}

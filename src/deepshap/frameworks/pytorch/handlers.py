"""The rule handlers: each reads one kind of PyTorch call's arguments and applies its rule.

A handler is called as ``handler(func, name, args, kwargs, ref_of)`` for a call whose arguments depend on
the input, in the pair pass, out of place (the interception mode copies an in-place call's result back);
``ref_of`` (:class:`~deepshap.frameworks.pytorch.pairing.Refs`) gives the references of the
input-dependent arguments. Variants of one handler (which operand divides, which way a reduction picks)
are bound in the registry (:mod:`deepshap.frameworks.pytorch.registry`), so nothing here tests names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from deepshap._typing import CallArgs, CallKwargs, CallValue, NativeFunction
from deepshap.errors import UnsupportedOperationError
from deepshap.frameworks.pytorch import deep_rules as R
from deepshap.frameworks.pytorch.deep_rules import Pair
from deepshap.frameworks.pytorch.pairing import TAG, Refs, TensorMap, depends, pair_of, same
from deepshap.rules import maths

__all__ = [
    "bilinear",
    "binary_closed_form",
    "check_batch_norm",
    "check_dropout",
    "check_rounding",
    "divide",
    "max_pool",
    "max_reduction",
    "norm",
    "one_factor",
    "constant_denominator",
    "rescale",
    "select",
    "shapley_pair",
    "softmax",
    "unary_closed_form",
]


def _substitute(
    args: CallArgs, kwargs: CallKwargs, mapping: dict[int, torch.Tensor]
) -> tuple[CallArgs, CallKwargs]:
    flat, spec = tree_flatten((args, kwargs))
    flat = [mapping.get(id(t), t) if isinstance(t, torch.Tensor) else t for t in flat]
    new_args, new_kwargs = tree_unflatten(flat, spec)
    return list(new_args), dict(new_kwargs)


# --- element-wise ----------------------------------------------------------------------------------


def rescale(func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs) -> CallValue:
    """An element-wise function of one input-dependent argument: the rescale rule."""
    tensors = [t for t in tree_flatten((args, kwargs))[0] if id(t) in ref_of]
    if len(tensors) != 1:
        raise UnsupportedOperationError(f"{name} with several input-dependent arguments has no rule.")
    x = tensors[0]

    def fn(t: torch.Tensor) -> torch.Tensor:
        a, k = _substitute(args, kwargs, {id(x): t})
        return func(*a, **k)

    others = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t is not x]
    if others:  # other tensor arguments broadcast against x's own shape
        return R.rescale(fn, x, ref_of[id(x)])
    to_split, ref_split, merge = ref_of.split(x)
    return merge(R.rescale(fn, to_split(x), ref_split(ref_of.raw(x))))


def unary_closed_form(
    func: NativeFunction,
    name: str,
    args: CallArgs,
    kwargs: CallKwargs,
    ref_of: Refs,
    secant: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> CallValue:
    """An element-wise function of one argument whose exact ``secant(x, r)`` is known in closed form
    (:mod:`deepshap.rules.maths`): that multiplier, no threshold."""
    x = args[0]
    with torch.no_grad():
        y, slope = func(x.detach(), *args[1:], **kwargs), secant(x.detach(), ref_of[id(x)])
    return R.with_multipliers(y, [x], [slope])


def shapley_pair(
    func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs
) -> CallValue:
    """An element-wise function of two operands: the exact two-player Shapley split (the rescale rule
    where only one operand depends on the input)."""
    if len(args) < 2:  # operands by name: torch.pow(x, exponent=2), torch.maximum(input=x, other=y)
        args, kwargs = _operands_by_name(name, args, kwargs)
    a, b, rest = args[0], args[1], args[2:]
    if not (depends(a) and depends(b)):  # a function of one operand: the rescale rule, cheaper
        x = a if depends(a) else b
        to_split: TensorMap
        ref_split: TensorMap
        merge: TensorMap
        if isinstance(b if x is a else a, torch.Tensor):  # a constant tensor broadcasts against x's shape
            to_split, ref_split, merge, raw = same, same, same, ref_of[id(x)]
        else:
            (to_split, ref_split, merge), raw = ref_of.split(x), ref_of.raw(x)

        def unary(t: torch.Tensor) -> torch.Tensor:
            return func(t, b, *rest, **kwargs) if x is a else func(a, t, *rest, **kwargs)

        return merge(R.rescale(unary, to_split(x), ref_split(raw)))
    return R.shapley_pair(lambda u, v: func(u, v, *rest, **kwargs), pair_of(a, ref_of), pair_of(b, ref_of)).x


def _operands_by_name(name: str, args: CallArgs, kwargs: CallKwargs) -> tuple[CallArgs, CallKwargs]:
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


# --- where and masked_fill -------------------------------------------------------------------------

#: ``(args, kwargs) -> (condition, chosen, other)`` of a select call, or None where it is no select.
Operands = Callable[[Sequence[CallValue], CallKwargs], "tuple[CallValue, CallValue, CallValue] | None"]


def where_operands(method: bool) -> Operands:
    """``(condition, chosen, other)`` of ``torch.where(c, t, e)`` (``t.where(c, e)`` with ``method``);
    None for ``torch.where(condition)``, which returns indices."""
    keys = ("input", "condition", "other") if method else ("condition", "input", "other")

    def operands(
        args: Sequence[CallValue], kwargs: CallKwargs
    ) -> tuple[CallValue, CallValue, CallValue] | None:
        bound = dict(zip(keys, args, strict=False)) | kwargs
        if "input" not in bound or "other" not in bound:
            return None
        return bound["condition"], bound["input"], bound["other"]

    return operands


def masked_fill_operands(
    args: Sequence[CallValue], kwargs: CallKwargs
) -> tuple[CallValue, CallValue, CallValue]:
    """``(mask, value, input)`` of ``masked_fill``: the fill value is chosen where the mask is True."""
    bound = dict(zip(("input", "mask", "value"), args, strict=False)) | kwargs
    return bound.get("mask"), bound.get("value"), bound.get("input")


def select(
    func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs, operands: Operands
) -> CallValue:
    """``where`` / ``masked_fill`` with a condition computed from the input (:func:`R.select`)."""
    condition, chosen, other = operands(args, kwargs)  # type: ignore[misc]
    out, step = R.select(condition, ref_of[id(condition)], pair_of(chosen, ref_of), pair_of(other, ref_of))
    if step:
        raise UnsupportedOperationError(
            f"the condition of {name} differs between an input and a reference where neither of the values "
            "it chooses between changes (a step function), or where the output's change is too large to "
            "split (a fill of -inf or of the dtype's minimum); DeepLIFT has no rule for that."
        )
    return out.x


# --- products --------------------------------------------------------------------------------------


def one_factor(args: Sequence[CallValue], kwargs: CallKwargs, additive_first: bool = False) -> bool:
    """Whether a product is linear in the input: at most one input-dependent factor (with
    ``additive_first``, the first argument is a summand: ``addmm(c, a, b)``)."""
    flat = tree_flatten((list(args), kwargs))[0]
    return sum(1 for i, t in enumerate(flat) if depends(t) and not (additive_first and i == 0)) <= 1


def constant_denominator(args: Sequence[CallValue], kwargs: CallKwargs, reverse: bool = False) -> bool:
    """Whether a quotient is linear in the input: its denominator does not depend on it (``reverse``:
    ``__rtruediv__``, whose first argument is the denominator)."""
    return not depends(args[0] if reverse else (args[1] if len(args) > 1 else kwargs.get("other")))


def check_rounding(name: str, args: Sequence[CallValue], kwargs: CallKwargs) -> None:
    if kwargs.get("rounding_mode") is not None:
        raise UnsupportedOperationError(
            f"{name} with rounding_mode has no DeepLIFT rule (it is piecewise constant)."
        )


def binary_closed_form(
    func: NativeFunction,
    name: str,
    args: CallArgs,
    kwargs: CallKwargs,
    ref_of: Refs,
    multipliers: R.ClosedForm,
    reverse: bool = False,
) -> CallValue:
    """An element-wise function of two operands (``func(b, a)`` with ``reverse``: ``__rtruediv__``) whose
    exact Shapley ``multipliers`` are known in closed form (:mod:`deepshap.rules.maths`)."""
    first, second = args[0], args[1] if len(args) > 1 else kwargs["other"]
    a, b = (second, first) if reverse else (first, second)

    def fn(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return func(v, u) if reverse else func(u, v)

    return R.closed_form_pair(fn, multipliers, pair_of(a, ref_of), pair_of(b, ref_of)).x


def divide(
    func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs, reverse: bool = False
) -> CallValue:
    """``a / b`` (``b / a`` with ``reverse``): the Shapley multipliers in closed form."""
    check_rounding(name, args, kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k != "rounding_mode"}
    return binary_closed_form(func, name, args, kwargs, ref_of, maths.quotient_multipliers, reverse)


def bilinear(
    func: NativeFunction,
    name: str,
    args: CallArgs,
    kwargs: CallKwargs,
    ref_of: Refs,
    additive_first: bool = False,
) -> CallValue:
    """A map bilinear in two input-dependent arguments (matmul, einsum, linear with an input-dependent
    weight): its gradient at the midpoint (:func:`R.bilinear`)."""
    flat, spec = tree_flatten((args, kwargs))
    slots = [i for i, t in enumerate(flat) if isinstance(t, torch.Tensor) and id(t) in ref_of]
    if len([i for i in slots if not (additive_first and i == 0)]) > 2:
        raise UnsupportedOperationError(f"{name} multiplies more than two input-dependent tensors; no rule.")

    def fn(*values: torch.Tensor) -> torch.Tensor:
        new = list(flat)
        for i, value in zip(slots, values, strict=True):
            new[i] = value
        a, k = tree_unflatten(new, spec)
        return func(*a, **k)

    return R.bilinear(fn, [Pair(flat[i], ref_of[id(flat[i])]) for i in slots]).x


# --- max -------------------------------------------------------------------------------------------


def max_reduction(
    func: NativeFunction,
    name: str,
    args: CallArgs,
    kwargs: CallKwargs,
    ref_of: Refs,
    largest: bool,
    values_only: bool,
) -> CallValue:
    """``max``/``min`` (``largest`` or not; ``amax``/``amin`` with ``values_only``) over some axes, with
    the max rule; ``max(a, b)`` of two tensors is the element-wise maximum (a two-player split)."""
    x = args[0]
    other = args[1] if len(args) > 1 else kwargs.get("other")
    if isinstance(other, torch.Tensor):  # torch.max(a, b) is the element-wise maximum
        fn = torch.maximum if largest else torch.minimum
        return R.shapley_pair(fn, pair_of(x, ref_of), pair_of(other, ref_of)).x
    sign = 1.0 if largest else -1.0
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
    setattr(indices, TAG, True)  # the sample's argmax: an index computed from the input
    if values_only or dim is None:
        return values
    result = torch.return_types.max if largest else torch.return_types.min
    return result((values, indices))


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


def max_pool(
    func: NativeFunction,
    name: str,
    args: CallArgs,
    kwargs: CallKwargs,
    ref_of: Refs,
    pool: NativeFunction,
    spatial: int,
    adaptive: bool,
    with_indices: bool,
) -> CallValue:
    """max_pool / adaptive_max_pool over ``spatial`` axes (``pool`` the function that returns indices
    when asked): the max rule over each window."""
    kwargs = dict(kwargs)
    requested = bool(kwargs.pop("return_indices", False))  # popped always: it is passed below
    keep = 2 if adaptive else 6
    want_indices = with_indices or requested or (len(args) > keep and bool(args[keep]))
    args = args[:keep]
    x = args[0]
    with torch.no_grad():
        y, idx_x = pool(x.detach(), *args[1:], return_indices=True, **kwargs)
        y_ref, idx_r = pool(ref_of.raw(x), *args[1:], return_indices=True, **kwargs)
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
    setattr(idx_x, TAG, True)  # the sample's argmax per window: an index computed from the input
    return (out, idx_x) if want_indices else out


# --- softmax and normalisations --------------------------------------------------------------------


def softmax(
    func: NativeFunction,
    name: str,
    args: CallArgs,
    kwargs: CallKwargs,
    ref_of: Refs,
    kind: str,
    negate: bool = False,
) -> CallValue:
    """softmax, log_softmax or logsumexp (``kind``; softmin is softmax with ``negate``)."""
    x = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    dtype = kwargs.get("dtype")
    if dim is None:
        dim = 0 if x.dim() in (0, 1, 3) else 1
    pair = pair_of(x, ref_of)
    if dtype is not None:
        pair = pair.map(lambda t: t.to(dtype))
    if negate:
        pair = pair.map(lambda t: -t)
    if kind != "logsumexp":
        return R.softmax_family(kind, pair, dim).x
    keepdim = bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))
    rank = pair.x.dim()
    dims = sorted({d % rank for d in ([dim] if isinstance(dim, int) else dim)})
    if len(dims) == 1:
        return R.softmax_family("logsumexp", pair, dims[0], keepdim=keepdim).x
    last = list(range(rank - len(dims), rank))  # the reduced axes moved last, in order, and merged into one
    out = R.softmax_family("logsumexp", pair.map(lambda t: t.movedim(dims, last).flatten(last[0])), -1)
    for d in dims if keepdim else []:
        out = out.map(_unsqueezing(d))
    return out.x


def _unsqueezing(dim: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A size-1 axis inserted at ``dim``."""
    return lambda t: t.unsqueeze(dim)


_NORM_ARGS = {
    "layer_norm": ("input", "normalized_shape", "weight", "bias", "eps"),
    "group_norm": ("input", "num_groups", "weight", "bias", "eps"),
    "rms_norm": ("input", "normalized_shape", "weight", "eps"),
}


def norm(
    func: NativeFunction, name: str, args: CallArgs, kwargs: CallKwargs, ref_of: Refs, kind: str
) -> CallValue:
    """layer, group or RMS normalisation (``kind``), with constant weight and bias."""
    bound = dict(zip(_NORM_ARGS[kind], args, strict=False)) | kwargs
    for key in ("weight", "bias"):
        if depends(bound.get(key)):
            raise UnsupportedOperationError(f"{name} with an input-dependent {key} has no rule.")
    pair = pair_of(bound["input"], ref_of)
    if kind == "group_norm":
        return R.group_norm(
            pair, bound["num_groups"], bound.get("weight"), bound.get("bias"), bound.get("eps", 1e-5)
        ).x
    shape = bound["normalized_shape"]
    shape = [shape] if isinstance(shape, int) else list(shape)
    if kind == "layer_norm":
        return R.layer_norm(pair, shape, bound.get("weight"), bound.get("bias"), bound.get("eps", 1e-5)).x
    return R.rms_norm(pair, shape, bound.get("weight"), bound.get("eps")).x


# --- operations linear only in evaluation mode -----------------------------------------------------


def check_dropout(name: str, args: Sequence[CallValue], kwargs: CallKwargs) -> None:
    training = kwargs.get("training", args[2] if len(args) > 2 else True)
    p = kwargs["p"] if "p" in kwargs else (args[1] if len(args) > 1 else 0.5)
    if training and p > 0:
        raise UnsupportedOperationError(
            f"{name} is called with training=True (random); put the model in eval mode (model.eval())."
        )


def check_batch_norm(name: str, args: Sequence[CallValue], kwargs: CallKwargs) -> None:
    if kwargs.get("training", args[5] if len(args) > 5 else False):
        raise UnsupportedOperationError(
            f"{name} uses batch statistics (training=True), which couple the rows of a batch; "
            "put the model in eval mode (model.eval())."
        )

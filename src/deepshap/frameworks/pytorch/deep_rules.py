"""DeepLIFT/Shapley rules for PyTorch, on (sample, reference) pairs of tensors.

Every function here takes the sample side ``x`` (a tensor in the autograd graph, one row per
(sample, background) pair) and the reference side ``r`` (the same shape, no graph) and returns the output
on the sample side whose backward pass applies the rule's multipliers. Composite operations (softmax,
normalisations, attention) are written with :class:`Pair` arithmetic from the primitive rules, so they are
exact decompositions and each primitive keeps summation-to-delta. The multipliers themselves are
:mod:`deepshap.rules.maths`, shared with the TensorFlow backend; this module binds them to autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

import torch

from deepshap._typing import FunctionContext
from deepshap.rules import maths
from deepshap.rules.maths import RuleOps


class TorchRuleOps:
    """The rules' operations (:class:`~deepshap.rules.maths.RuleOps`) on torch tensors."""

    def where(self, condition: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(condition, a, b)

    def abs(self, t: torch.Tensor) -> torch.Tensor:
        return torch.abs(t)

    def exp(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(t)

    def sqrt(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(t)

    def maximum(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b)

    def zeros_like(self, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(t)

    def ones_like(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)

    def equal(self, a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
        return torch.eq(a, b)

    def isfinite(self, t: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(t)

    def isnan(self, t: torch.Tensor) -> torch.Tensor:
        return torch.isnan(t)

    def sum(self, t: torch.Tensor, axis: int) -> torch.Tensor:
        return t.sum(axis, keepdim=True)

    def logsumexp(self, t: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.logsumexp(t, axis, keepdim=True)

    def cast(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.to(like.dtype)

    def widen(self, t: torch.Tensor) -> torch.Tensor:
        return t.double()

    def smallest_normal(self, t: torch.Tensor) -> float:
        return torch.finfo(t.dtype).tiny


#: The rules' operations on torch tensors.
OPS: RuleOps = TorchRuleOps()


class _Multipliers(torch.autograd.Function):
    """Returns a precomputed value; its backward multiplies the incoming gradient by fixed multipliers."""

    @staticmethod
    def forward(
        ctx: FunctionContext, box: tuple[torch.Tensor, list[torch.Tensor]], *inputs: torch.Tensor
    ) -> torch.Tensor:
        value, multipliers = box
        ctx.multipliers = multipliers
        ctx.shapes = [inp.shape for inp in inputs]
        return value

    @staticmethod
    def backward(ctx: FunctionContext, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grads = []
        for k, (m, shape) in enumerate(zip(ctx.multipliers, ctx.shapes, strict=True)):
            if grad.shape == shape and m.shape == shape:
                grads.append(torch.mul(grad, m, out=_buffer(ctx, k, grad)))
            else:
                grads.append((grad * m).sum_to_size(shape))
        return (None, *grads)


def _buffer(
    ctx: FunctionContext, key: int, like: torch.Tensor, shape: torch.Size | None = None
) -> torch.Tensor:
    """An output tensor for a backward pass, reused by the next backward pass over the retained graph.

    The explainer runs one backward pass per explained output over the same graph. On the CPU a fresh
    activation-sized tensor is memory the kernel must map and zero page by page, which costs about as
    much as the arithmetic; reusing one per node avoids it. Each gradient is consumed before the next
    backward pass, and autograd never accumulates in place into a tensor that something else holds.
    """
    shape = like.shape if shape is None else shape
    if like.device.type != "cpu":  # device allocators cache memory already
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    buffers = ctx.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype:
        buf = buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return buf


def with_multipliers(
    value: torch.Tensor, inputs: Sequence[torch.Tensor], multipliers: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``value`` whose gradient with respect to ``inputs[k]`` is ``grad * multipliers[k]``."""
    live = [(i, m) for i, m in zip(inputs, multipliers, strict=True) if i.requires_grad]
    if not live:
        return value
    return _Multipliers.apply((value.detach(), [m.detach() for _, m in live]), *[i for i, _ in live])


def derivative(fn: Callable[[torch.Tensor], torch.Tensor], at: torch.Tensor) -> torch.Tensor:
    """Element-wise derivative of an element-wise ``fn`` at ``at``."""
    with torch.enable_grad():
        t = at.detach().requires_grad_(True)
        out = fn(t)
        (grad,) = torch.autograd.grad(out.sum(), t, allow_unused=True)  # no activation-sized ones
    return torch.zeros_like(at) if grad is None else grad


def rescale(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Unary rescale rule: multiplier ``(f(x) - f(r)) / (x - r)``, the derivative where x == r (or the
    difference is denormal). ``r`` may be a broadcasting view of the references.

    A quotient over a difference of a few ulps is inexact but bounded by the function's slope plus a few
    units, and its contribution (quotient times difference) is exact to rounding, so additivity holds.
    The temporaries are reused in place: these tensors are as large as the layer's activations.
    """
    xd = x.detach()
    with torch.no_grad():
        y = fn(xd)
        d = xd - r
        slope = torch.sub(y, fn(r)).div_(d)
        # maths.vanishing, in place: zero, denormal or NaN (equal infinities) fails the comparison
        undefined = ~torch.ge(d.abs_(), OPS.smallest_normal(d))
        del d
        if bool(undefined.any()):
            grad = maths.finite(OPS, derivative(fn, xd)).expand_as(slope)
            slope = torch.where(undefined, grad, slope, out=slope)
    return with_multipliers(y, [x], [slope])


#: ``(a_x, a_r, b_x, b_r) -> (m_a, m_b)``: the exact Shapley multipliers of an element-wise function of
#: two operands, in closed form (:func:`deepshap.rules.maths.product_multipliers`, ...).
ClosedForm = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]


@dataclass
class Pair:
    """A tensor on the sample side (in the graph) and its reference (same shape, no graph)."""

    x: torch.Tensor
    r: torch.Tensor

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Pair:
        """A linear function applied to both sides (its gradient is the exact multiplier)."""
        with torch.no_grad():
            r = fn(self.r)
        return Pair(fn(self.x), r)


def constant(t: torch.Tensor | float) -> Pair:
    """A value that does not depend on the input (the same on both sides)."""
    return Pair(t, t)  # type: ignore[arg-type]


def rescale_pair(fn: Callable[[torch.Tensor], torch.Tensor], p: Pair) -> Pair:
    with torch.no_grad():
        r = fn(p.r)
    return Pair(rescale(fn, p.x, p.r), r)


@overload
def _value(t: torch.Tensor) -> torch.Tensor: ...


@overload
def _value(t: float) -> float: ...


def _value(t: torch.Tensor | float) -> torch.Tensor | float:
    """A side's value out of the graph (a number constant as it is)."""
    return t.detach() if isinstance(t, torch.Tensor) else t


def _tracked(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def _product_rule(
    value: torch.Tensor, ref: torch.Tensor, factors: list[tuple[torch.Tensor, torch.Tensor | float]]
) -> Pair:
    """``value`` with the given multiplier for each factor that depends on the input."""
    tracked = [(t, m) for t, m in factors if _tracked(t)]
    mults = [torch.as_tensor(m, dtype=value.dtype, device=value.device).expand_as(value) for _, m in tracked]
    return Pair(with_multipliers(value, [t for t, _ in tracked], mults), ref)


def closed_form_pair(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    multipliers: ClosedForm,
    a: Pair,
    b: Pair,
) -> Pair:
    """An element-wise ``fn(a, b)`` whose exact two-player Shapley ``multipliers(a_x, a_r, b_x, b_r)`` are
    known in closed form (:func:`deepshap.rules.maths.product_multipliers`, ...): no threshold."""
    ax, ar, bx, br = _value(a.x), a.r, _value(b.x), b.r
    with torch.no_grad():
        value, ref = fn(ax, bx), fn(ar, br)
        m_a, m_b = multipliers(ax, ar, bx, br)
    return _product_rule(value, ref, [(a.x, m_a), (b.x, m_b)])


def select(
    condition: torch.Tensor, condition_ref: torch.Tensor, chosen: Pair, other: Pair
) -> tuple[Pair, bool]:
    """``where(condition, chosen, other)`` with a condition computed from the input
    (:func:`deepshap.rules.maths.select_multipliers`); also returns whether a flip has no split (a step,
    or a change too large to split)."""
    tx, tr, ex, er = _value(chosen.x), chosen.r, _value(other.x), other.r
    with torch.no_grad():
        value, ref = torch.where(condition, tx, ex), torch.where(condition_ref, tr, er)  # torch's promotion
        branches = (tx, tr, ex, er)
        tx, tr, ex, er = (torch.as_tensor(t, dtype=value.dtype, device=value.device) for t in branches)
        d_chosen = maths.change(OPS, tx, tr).expand_as(value)
        d_other = maths.change(OPS, ex, er).expand_as(value)
        agree = torch.eq(condition, condition_ref)
        m_chosen, m_other, step = maths.select_multipliers(
            OPS, condition, agree, d_chosen, d_other, value - ref
        )
    return _product_rule(value, ref, [(chosen.x, m_chosen), (other.x, m_other)]), bool(step.any())


def shapley_pair(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: Pair, b: Pair) -> Pair:
    """Any element-wise binary ``fn``: the exact two-player Shapley split of its output difference."""
    ax, ar, bx, br = _value(a.x), a.r, _value(b.x), b.r
    with torch.no_grad():
        f_xx, f_rr = fn(ax, bx), fn(ar, br)
        phi_a, phi_b = maths.shapley_shares(f_xx, f_rr, fn(ax, br), fn(ar, bx))
    inputs, mults = [], []
    if _tracked(a.x):
        mid_b = (bx + br) / 2 if isinstance(bx, torch.Tensor) else bx
        inputs.append(a.x)
        mults.append(_split(phi_a, ax, ar, lambda t: fn(t, mid_b)))
    if _tracked(b.x):
        mid_a = (ax + ar) / 2 if isinstance(ax, torch.Tensor) else ax
        inputs.append(b.x)
        mults.append(_split(phi_b, bx, br, lambda t: fn(mid_a, t)))
    return Pair(with_multipliers(f_xx, inputs, mults), f_rr)


def _split(
    phi: torch.Tensor, x: torch.Tensor, r: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """A player's multiplier ``phi / (x - r)``, or the derivative at the midpoint where that is tiny."""
    with torch.no_grad():
        x, r = x.expand_as(phi), r.expand_as(phi)
        mid = (x + r) / 2
    return maths.secant(OPS, phi, x, r, derivative(fn, mid), relative=True)


def bilinear(fn: Callable[..., torch.Tensor], pairs: Sequence[Pair]) -> Pair:
    """A map that is bilinear in two operands (plus affine terms): its gradient at the midpoint.

    For f bilinear, ``f(a_x, b_x) - f(a_r, b_r) = J_a(mid) (a_x - a_r) + J_b(mid) (b_x - b_r)`` is exactly the
    two-player Shapley split; the value stays ``f`` at the sample, the backward uses the midpoint.
    """
    with torch.no_grad():
        value = fn(*[_value(p.x) for p in pairs])
        ref = fn(*[p.r for p in pairs])
    if not any(_tracked(p.x) for p in pairs):
        return Pair(value, ref)
    through = []
    for p in pairs:
        if _tracked(p.x):
            mid = (p.x.detach() + p.r) / 2
            through.append(mid + (p.x - p.x.detach()))
        else:
            through.append(p.x)
    at_mid = fn(*through)
    return Pair(at_mid + (value - at_mid).detach(), ref)


class _RoutedMax(torch.autograd.Function):
    """Backward of the max rule: each output's gradient times its multiplier, scattered to one position."""

    @staticmethod
    def forward(
        ctx: FunctionContext, box: tuple[torch.Tensor, torch.Tensor, torch.Tensor], xf: torch.Tensor
    ) -> torch.Tensor:
        value, weights, index = box
        ctx.save_for_backward(weights, index)
        ctx.in_shape = xf.shape
        return value.clone() if value._base is not None else value  # a view could not be changed in place

    @staticmethod
    def backward(ctx: FunctionContext, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        weights, index = ctx.saved_tensors
        out = _buffer(ctx, 0, grad, ctx.in_shape).zero_()
        return None, out.scatter_add_(-1, index, torch.mul(grad, weights, out=_buffer(ctx, 1, grad)))


def route_max(
    xf: torch.Tensor,
    rf: torch.Tensor,
    y: torch.Tensor,
    y_ref: torch.Tensor,
    idx_x: torch.Tensor,
    idx_r: torch.Tensor,
) -> torch.Tensor:
    """Max rule on flat windows: ``xf``, ``rf`` are ``(*lead, L)``; outputs, argmaxes ``(*lead, K)``.

    Where the sample's maximum is the larger, the output difference goes to the sample's argmax p, else
    to the reference's argmax q, divided by the input difference there (same sign, at least as large, so
    the multiplier lies in [0, 1]). Summation-to-delta holds with overlapping windows too.
    """
    with torch.no_grad():
        index = torch.where(y >= y_ref, idx_x, idx_r)
        x_at = xf.detach().gather(-1, index)
        r_at = rf.expand(*index.shape[:-1], rf.shape[-1]).gather(-1, index)
        weights = maths.max_weights(OPS, y, y_ref, x_at, r_at)
    if not xf.requires_grad:
        return y
    return _RoutedMax.apply((y, weights, index), xf)


# composite rules ---------------------------------------------------------------------------------
def softmax_family(kind: str, p: Pair, dim: int, keepdim: bool = False) -> Pair:
    """softmax / log_softmax / logsumexp along ``dim``, all from one logsumexp rule:
    ``log_softmax = x - logsumexp(x)`` (linear) and ``softmax = exp(log_softmax)`` (rescale rule), with
    the multipliers of :func:`deepshap.rules.maths.softmax_multipliers` (float64, cast back).

    Every value is computed on its own side with a stable formula, so sample and reference logits any
    distance apart give finite multipliers whose contributions add up to the output's change (a quotient
    ``exp(x) / sum(exp(x))`` loses the change to cancellation once the two sides' sums differ by e^20).
    """
    x, dtype = p.x.detach(), p.x.dtype
    with torch.no_grad():
        m_lse, m_exp, lse_x, lse_r = maths.softmax_multipliers(OPS, x, p.r, dim)
    lse = Pair(with_multipliers(lse_x.to(dtype), [p.x], [m_lse.to(dtype)]), lse_r.to(dtype))
    if kind == "logsumexp":
        return lse if keepdim else lse.map(lambda t: t.squeeze(dim))
    log_softmax = Pair(p.x - lse.x, p.r - lse.r)
    if kind == "log_softmax":
        return log_softmax
    with torch.no_grad():
        y, y_ref = torch.exp(x.double() - lse_x).to(dtype), torch.exp(p.r.double() - lse_r).to(dtype)
    return Pair(with_multipliers(y, [log_softmax.x], [m_exp.to(dtype)]), y_ref)


def normalize(p: Pair, dims: Sequence[int], eps: float, center: bool = True) -> Pair:
    """``(x - mean) * rsqrt(mean((x - mean)^2) + eps)`` over ``dims`` (no centring for RMS norm)."""
    dims = list(dims)
    centred = p.map(lambda t: t - t.mean(dims, keepdim=True)) if center else p
    sq = rescale_pair(torch.square, centred)
    var = sq.map(lambda t: t.mean(dims, keepdim=True) + eps)
    inv = rescale_pair(torch.rsqrt, var)
    return closed_form_pair(torch.mul, maths.product_multipliers, centred, inv)


def affine(p: Pair, weight: torch.Tensor | None, bias: torch.Tensor | None) -> Pair:
    """Element-wise scale and shift by constants (linear)."""
    if weight is not None:
        p = p.map(lambda t: t * weight)
    if bias is not None:
        p = p.map(lambda t: t + bias)
    return p


def layer_norm(
    p: Pair,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> Pair:
    dims = list(range(-len(normalized_shape), 0))
    return affine(normalize(p, dims, eps), weight, bias)


def rms_norm(
    p: Pair, normalized_shape: Sequence[int], weight: torch.Tensor | None, eps: float | None
) -> Pair:
    dims = list(range(-len(normalized_shape), 0))
    eps = torch.finfo(p.x.dtype).eps if eps is None else eps
    return affine(normalize(p, dims, eps, center=False), weight, None)


def group_norm(
    p: Pair, num_groups: int, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> Pair:
    shape = p.x.shape
    grouped = p.map(lambda t: t.reshape(shape[0], num_groups, -1))
    normed = normalize(grouped, [-1], eps).map(lambda t: t.reshape(shape))
    extra = (1,) * (len(shape) - 2)
    w = None if weight is None else weight.reshape(1, -1, *extra)
    b = None if bias is None else bias.reshape(1, -1, *extra)
    return affine(normed, w, b)


def attention(q: Pair, k: Pair, v: Pair, mask: torch.Tensor | None, scale: float) -> tuple[Pair, Pair]:
    """``softmax(q k^T * scale + mask) v``: bilinear, softmax, bilinear. Returns (output, weights)."""
    scores = bilinear(lambda a, b: torch.matmul(a, b.transpose(-2, -1)) * scale, [q, k])
    if mask is not None:
        scores = scores.map(lambda t: t + mask)
    weights = softmax_family("softmax", scores, -1)
    return bilinear(torch.matmul, [weights, v]), weights


def additive_mask(
    mask: torch.Tensor | None, is_causal: bool, shape: tuple[int, int], like: torch.Tensor
) -> torch.Tensor | None:
    """A boolean (True = keep) or float mask, and/or a causal mask, as one additive float mask."""
    out = None
    if is_causal:
        keep = torch.ones(shape, dtype=torch.bool, device=like.device).tril()
        out = torch.zeros(shape, dtype=like.dtype, device=like.device).masked_fill(~keep, -math.inf)
    if mask is not None:
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=like.dtype, device=like.device).masked_fill(~mask, -math.inf)
        out = mask.to(like.dtype) if out is None else out + mask
    # A large finite negative instead of -inf: exp gives 0 and differences stay finite.
    return None if out is None else out.clamp(min=torch.finfo(like.dtype).min / 4)

"""The DeepLIFT/Shapley multipliers, written once for every framework.

Each function takes a sample side ``x`` and a reference side ``r`` (and, where the rule needs them, their
outputs) as native tensors of one framework, with a :class:`RuleOps` that supplies the few operations
Python's arithmetic operators do not. The backends only bind the results to their automatic
differentiation: an autograd ``Function`` in PyTorch, a gradient override in TensorFlow.

Every multiplier here satisfies summation-to-delta: the multipliers times the input differences add up
to the output difference, so DeepSHAP attributions add up to ``f(x) - E f(background)``.
"""

from __future__ import annotations

from typing import Protocol

from deepshap._typing import NativeTensor

__all__ = [
    "REL_TINY",
    "RuleOps",
    "change",
    "finite",
    "logsumexp_multipliers",
    "max_weights",
    "plan_chunks",
    "product_multipliers",
    "quotient",
    "quotient_multipliers",
    "secant",
    "select_multipliers",
    "square_secant",
    "squared_difference_secants",
    "shapley_shares",
    "softmax_multipliers",
    "vanishing",
]

#: Differences at most this fraction of their operands' magnitude are too small to divide by in a
#: two-player split, whose numerator carries the rounding of its operands' size.
REL_TINY = 1e-6

#: A tensor of one framework (the rules are written once for all of them).
Tensor = NativeTensor


class RuleOps(Protocol):
    """The operations the rules need beyond ``+ - * /``, comparisons and ``& | ~`` on booleans.

    Each backend implements them on its own tensors (``TorchRuleOps`` in
    :mod:`deepshap.frameworks.pytorch.deep_rules`, ``TFRuleOps`` in
    :mod:`deepshap.frameworks.keras.handlers`). Element-wise operations broadcast as their framework does.
    """

    def where(self, condition: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """``a`` where ``condition`` holds, else ``b``."""
        ...

    def abs(self, t: Tensor) -> Tensor: ...

    def exp(self, t: Tensor) -> Tensor: ...

    def sqrt(self, t: Tensor) -> Tensor: ...

    def maximum(self, a: Tensor, b: Tensor) -> Tensor: ...

    def zeros_like(self, t: Tensor) -> Tensor: ...

    def ones_like(self, t: Tensor) -> Tensor: ...

    def equal(self, a: Tensor, b: Tensor | float) -> Tensor:
        """Element-wise ``a == b`` (booleans)."""
        ...

    def isfinite(self, t: Tensor) -> Tensor: ...

    def isnan(self, t: Tensor) -> Tensor: ...

    def sum(self, t: Tensor, axis: int) -> Tensor:
        """The sum over ``axis``, kept as size 1."""
        ...

    def logsumexp(self, t: Tensor, axis: int) -> Tensor:
        """``log(sum(exp(t)))`` over ``axis``, kept as size 1."""
        ...

    def cast(self, t: Tensor, like: Tensor) -> Tensor:
        """``t`` in ``like``'s dtype."""
        ...

    def widen(self, t: Tensor) -> Tensor:
        """``t`` in float64, for the parts of a rule whose rounding the attributions would amplify."""
        ...

    def smallest_normal(self, t: Tensor) -> float:
        """The smallest positive normal number of ``t``'s dtype."""
        ...


# --- division by a difference that may vanish -----------------------------------------------------


def vanishing(ops: RuleOps, delta: Tensor) -> Tensor:
    """Where a difference is zero, denormal or NaN (equal infinities): too small to divide by."""
    return ops.isnan(delta) | (ops.abs(delta) < ops.smallest_normal(delta))


def quotient(
    ops: RuleOps, numerator: Tensor, delta: Tensor, fallback: Tensor, small: Tensor | None = None
) -> Tensor:
    """``numerator / delta``, or ``fallback`` where ``delta`` is ``small`` (by default where it vanishes);
    nothing is divided by those differences."""
    small = vanishing(ops, delta) if small is None else small
    return ops.where(small, fallback, numerator / ops.where(small, ops.ones_like(delta), delta))


def finite(ops: RuleOps, t: Tensor) -> Tensor:
    """``t`` with its infinities and NaN set to 0. A derivative taken where the difference is (nearly)
    zero may be infinite (sqrt at 0): any finite multiplier times a zero difference keeps the sum, an
    infinite one makes it NaN."""
    return ops.where(ops.isfinite(t), t, ops.zeros_like(t))


def secant(
    ops: RuleOps, delta_out: Tensor, x: Tensor, r: Tensor, derivative: Tensor, relative: bool = False
) -> Tensor:
    """The rescale multiplier ``delta_out / (x - r)``, or the (finite) ``derivative`` where the difference
    vanishes, or, with ``relative`` (a two-player split), lies within :data:`REL_TINY` of the operands'
    size. A quotient over a difference of a few ulps is inexact but bounded by the function's slope plus a
    few units, and its contribution (quotient times difference) is exact to rounding."""
    delta = x - r
    small = vanishing(ops, delta)
    if relative:
        small = small | (ops.abs(delta) <= REL_TINY * (ops.abs(x) + ops.abs(r)))
    return quotient(ops, delta_out, delta, finite(ops, derivative), small)


def change(ops: RuleOps, a: Tensor, b: Tensor) -> Tensor:
    """``a - b``, with equal values (equal infinities too) no change."""
    return ops.where(ops.equal(a, b), ops.zeros_like(a), a - b)


# --- two players -----------------------------------------------------------------------------------


def shapley_shares(f_xx: Tensor, f_rr: Tensor, f_xr: Tensor, f_rx: Tensor) -> tuple[Tensor, Tensor]:
    """The exact two-player Shapley split of ``f(a, b)``'s change, from its values at the four corners
    (``f_xr = f(a_x, b_r)``): each player's average marginal contribution over the two orders."""
    return ((f_xr - f_rr) + (f_xx - f_rx)) / 2, ((f_rx - f_rr) + (f_xx - f_xr)) / 2


def product_multipliers(ax: Tensor, ar: Tensor, bx: Tensor, br: Tensor) -> tuple[Tensor, Tensor]:
    """Shapley multipliers of ``a * b``: each factor's at the other's midpoint."""
    return (bx + br) / 2, (ax + ar) / 2


def quotient_multipliers(ax: Tensor, ar: Tensor, bx: Tensor, br: Tensor) -> tuple[Tensor, Tensor]:
    """Shapley multipliers of ``a / b``, in closed form (no division by the differences):
    ``(1/b_x + 1/b_r) / 2`` for the numerator, ``-(a_x + a_r) / (2 b_x b_r)`` for the denominator."""
    return (1 / bx + 1 / br) / 2, -(ax + ar) / (2 * bx * br)


def square_secant(x: Tensor, r: Tensor) -> Tensor:
    """``x^2``: its secant ``(x^2 - r^2) / (x - r)`` is ``x + r`` exactly, with no threshold."""
    return x + r


def squared_difference_secants(ax: Tensor, ar: Tensor, bx: Tensor, br: Tensor) -> tuple[Tensor, Tensor]:
    """``(a - b)^2``, the linear ``a - b`` then :func:`square_secant`: ``(a_x + a_r) - (b_x + b_r)`` for
    ``a`` and its negative for ``b``."""
    m = (ax + ar) - (bx + br)
    return m, -m


def select_multipliers(
    ops: RuleOps, chosen: Tensor, agree: Tensor, d_chosen: Tensor, d_other: Tensor, delta: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``where(c, t, e)`` with a condition computed from the input: multipliers of ``t`` and ``e``.

    Where the sample and its reference take the same branch (``agree``) the output is linear in that
    branch. Where they take different ones, the output's change ``dy`` (``delta``) goes through both
    branches in proportion to their own changes ``dt``, ``de`` (from :func:`change`): multipliers
    ``dy * dt / (dt^2 + de^2)`` and ``dy * de / (dt^2 + de^2)``, so ``dt * m_t + de * m_e = dy``. For a
    one-variable activation written with ``where`` (ELU, LeakyReLU, a thresholded ReLU) that is the
    rescale rule of the whole activation. Also returns where a flip has no such split: neither branch
    changes while the output does (a step), or the change is too large to split (a fill of -inf).
    """
    largest = ops.maximum(ops.abs(d_chosen), ops.abs(d_other))
    scale = ops.where(largest > 0, largest, ops.ones_like(largest))
    # |(dt, de)| scaled by the larger one, so that dt^2 + de^2 neither overflows nor underflows
    length = largest * ops.sqrt(
        (d_chosen / scale) * (d_chosen / scale) + (d_other / scale) * (d_other / scale)
    )
    unit = ops.where(length > 0, length, ops.ones_like(length))
    share = delta / unit
    no_split = ops.equal(length, 0) | ~ops.isfinite(share) | ~ops.isfinite(length)
    step = ~agree & ~ops.equal(delta, 0) & no_split
    m_chosen = ops.where(agree, ops.cast(chosen, delta), share * (d_chosen / unit))
    m_other = ops.where(agree, ops.cast(~chosen, delta), share * (d_other / unit))
    return m_chosen, m_other, step


# --- max -------------------------------------------------------------------------------------------


def max_weights(ops: RuleOps, y: Tensor, y_ref: Tensor, x_at: Tensor, r_at: Tensor) -> Tensor:
    """The max rule's multiplier at the position that receives a window's change.

    Where the sample's maximum is the larger, the change ``y - y_ref`` goes to the sample's argmax, else to
    the reference's; ``x_at``, ``r_at`` are the input and reference there. Their difference has the change's
    sign and is at least as large, so the multiplier lies in [0, 1]; summation-to-delta holds with
    overlapping windows too.
    """
    d_at = x_at - r_at
    return quotient(ops, y - y_ref, d_at, ops.zeros_like(d_at))


# --- softmax family --------------------------------------------------------------------------------


def logsumexp_multipliers(ops: RuleOps, x: Tensor, r: Tensor, axis: int) -> tuple[Tensor, Tensor, Tensor]:
    """Multipliers of ``logsumexp`` over ``axis`` (the rules of exp, sum and log chained), and each side's
    logsumexp (kept as size 1), all in float64.

    Chained, the multiplier of ``x_i`` is ``(lse_x - lse_r) / (A - B) * (a_i - b_i) / (x_i - r_i)`` with
    ``a = exp(x - c)``, ``A = sum(a)`` (``b``, ``B`` for the reference) for any shift ``c``, which cancels.
    With ``c`` the larger of the two logsumexps every ``a_i``, ``b_i`` lies in [0, 1] and the larger of
    ``A``, ``B`` is 1, and ``lse_x - lse_r`` comes from each side's own logsumexp, so logits any distance
    apart give finite multipliers. Where ``A`` and ``B`` nearly agree, ``2 / (A + B)`` (log's slope at
    their midpoint) stands in for the quotient. Computed in float64: behind a softmax the attributions of
    the logits often nearly cancel, and float32 multipliers would leave their sum short by more than the
    additivity tolerance.
    """
    x, r = ops.widen(x), ops.widen(r)
    lse_x, lse_r = ops.logsumexp(x, axis), ops.logsumexp(r, axis)
    c = ops.maximum(lse_x, lse_r)
    c = ops.where(ops.isfinite(c), c, ops.zeros_like(c))
    a, b = ops.exp(x - c), ops.exp(r - c)
    m_exp = quotient(ops, a - b, x - r, a)
    moved, total = ops.sum(a - b, axis), ops.sum(a + b, axis)
    close = ~(ops.abs(moved) > REL_TINY * total)
    m_log = quotient(ops, lse_x - lse_r, moved, 2 / total, close)
    return m_log * m_exp, lse_x, lse_r


def softmax_multipliers(
    ops: RuleOps, x: Tensor, r: Tensor, axis: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The rules of softmax over ``axis`` as ``exp(x - logsumexp(x))``, in float64.

    Returns ``m_lse`` (the logsumexp's multipliers, :func:`logsumexp_multipliers`), ``m_exp`` (the rescale
    multiplier of exp on the log-softmax) and the two sides' logsumexp (kept as size 1). The multiplier
    of ``x_j`` for output ``i`` is ``m_exp_i * ([i == j] - m_lse_j)``: a backward pass computes
    ``g * m_exp - m_lse * sum(g * m_exp)``.
    """
    m_lse, lse_x, lse_r = logsumexp_multipliers(ops, x, r, axis)
    log_x, log_r = ops.widen(x) - lse_x, ops.widen(r) - lse_r
    p_x = ops.exp(log_x)
    return m_lse, quotient(ops, p_x - ops.exp(log_r), log_x - log_r, p_x), lse_x, lse_r


# --- work planning ---------------------------------------------------------------------------------


def plan_chunks(n_samples: int, n_background: int, batch_size: int) -> tuple[int, int]:
    """``(samples, background rows)`` per chunk of at most ``batch_size`` (sample, background) pairs: as
    many background rows as fit (the references are shared by a chunk's samples), then samples."""
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(
            f"batch_size must be a positive number of (sample, background) pairs; got {batch_size}."
        )
    per_background = min(n_background, int(batch_size))
    return max(1, min(n_samples, int(batch_size) // per_background)), per_background

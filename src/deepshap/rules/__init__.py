"""DeepLIFT/Shapley multiplier rules, named framework-neutrally.

A rule says how the multiplier of an operation's output is carried back to its inputs for one
(sample, reference) pair. Every rule below satisfies summation-to-delta: the multipliers times the input
differences add up to the output difference, so DeepSHAP attributions add up to ``f(x) - E f(background)``.
Which framework function gets which rule is data, in ``pytorch_ops.py`` and ``tensorflow_ops.py``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Rule"]


class Rule(StrEnum):
    """The rule kinds a backend implements."""

    #: Linear in the input (convolutions, linear layers, pooling by averages, eval batch norm, reshapes,
    #: concatenation, padding, indexing, sums): the ordinary gradient is the exact multiplier.
    LINEAR = "linear"
    #: Element-wise unary nonlinearity y = f(x): the multiplier (y - y_ref) / (x - x_ref), falling back to
    #: the derivative at the midpoint where the difference is tiny.
    RESCALE = "rescale"
    #: Element-wise binary operation where both operands may depend on the input (maximum, minimum, pow):
    #: the exact two-player Shapley split of the output difference between the operands.
    SHAPLEY_PAIR = "shapley_pair"
    #: Products (mul, div) and bilinear maps (matmul, bmm, einsum, linear/conv with an input-dependent
    #: weight): the exact two-player Shapley split, which for a bilinear map is its gradient at the
    #: midpoint between sample and reference (a closed form for mul and div).
    BILINEAR = "bilinear"
    #: Max pooling and max/min reductions: the output difference is split into the part reached by the
    #: sample's maximum (credited at the sample's argmax) and the rest (credited at the reference's argmax),
    #: each divided by the input difference there; additive for overlapping windows too.
    MAX = "max"
    #: softmax, log_softmax, logsumexp: exp (rescale), sum (linear), division (bilinear) and log (rescale),
    #: evaluated with one shift shared by sample and reference so nothing overflows.
    SOFTMAX = "softmax"
    #: layer, group and RMS normalisation: centring (linear), square (rescale), mean (linear), rsqrt of
    #: the variance plus eps (rescale) and the product (bilinear).
    NORM = "norm"
    #: scaled dot-product and multi-head attention: projections (linear), q k^T (bilinear), softmax
    #: (as above), weights times values (bilinear).
    ATTENTION = "attention"
    #: ``where(c, t, e)`` (and ``masked_fill``): linear in ``t`` and ``e`` where the condition is the same for
    #: the sample and the reference; where a condition computed from the input differs, the output's
    #: change goes through both branches in proportion to their own changes (``dt * m_t + de * m_e = dy``),
    #: which for a one-variable activation written with ``where`` is the rescale rule of the activation.
    SELECT = "select"
    #: Other composites (glu, var/std, vector norms, normalize, instance norm): rewritten into the
    #: primitives above while the interception runs, so each primitive gets its own rule.
    DECOMPOSE = "decompose"
    #: Random or batch-coupled operations (dropout in training mode, batch norm with batch statistics):
    #: no DeepLIFT rule exists; the backend raises and names the operation.
    UNSUPPORTED = "unsupported"

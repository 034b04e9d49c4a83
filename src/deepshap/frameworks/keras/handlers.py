"""The DeepLIFT/Shapley gradient of each kind of TensorFlow op, on an op of the traced graph.

Every handler takes the active :class:`~deepshap.frameworks.keras.deep_rules.RuleSession`, the op, its
*partner* op in the reference call (holding the reference values), the positions of its operands that
carry data, and the upstream gradient; it returns one gradient per operand (``None`` where no data). The
multipliers are :mod:`deepshap.rules.maths`, shared with the PyTorch backend; this module evaluates them
on graph tensors and binds them to ``tf.gradients``. Which op type gets which handler is
:mod:`deepshap.frameworks.keras.registry`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import tensorflow as tf

from deepshap._typing import CallKwargs
from deepshap.rules import maths
from deepshap.rules.maths import RuleOps

if TYPE_CHECKING:
    from deepshap.frameworks.keras.deep_rules import RuleSession

Gradients = list[tf.Tensor | None]
#: ``(xs, refs, positions, delta_out) -> multipliers``: an exact multiplier formula of an element-wise op
#: with no tiny-difference threshold (operands already broadcast to the output's shape).
ClosedForm = Callable[[list[tf.Tensor], list[tf.Tensor], list[int], tf.Tensor], list[tf.Tensor]]

_SMALLEST_NORMAL = {tf.float64: 2.2250738585072014e-308, tf.float16: 6.103515625e-05}


class TFRuleOps:
    """The rules' operations (:class:`~deepshap.rules.maths.RuleOps`) on TensorFlow graph tensors."""

    def where(self, condition: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return tf.where(condition, a, b)

    def abs(self, t: tf.Tensor) -> tf.Tensor:
        return tf.abs(t)

    def exp(self, t: tf.Tensor) -> tf.Tensor:
        return tf.exp(t)

    def sqrt(self, t: tf.Tensor) -> tf.Tensor:
        return tf.sqrt(t)

    def maximum(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return tf.maximum(a, b)

    def zeros_like(self, t: tf.Tensor) -> tf.Tensor:
        return tf.zeros_like(t)

    def ones_like(self, t: tf.Tensor) -> tf.Tensor:
        return tf.ones_like(t)

    def equal(self, a: tf.Tensor, b: tf.Tensor | float) -> tf.Tensor:
        return tf.equal(a, b)

    def isfinite(self, t: tf.Tensor) -> tf.Tensor:
        return tf.math.is_finite(t)

    def isnan(self, t: tf.Tensor) -> tf.Tensor:
        return tf.math.is_nan(t)

    def sum(self, t: tf.Tensor, axis: int) -> tf.Tensor:
        return tf.reduce_sum(t, axis=axis, keepdims=True)

    def logsumexp(self, t: tf.Tensor, axis: int) -> tf.Tensor:
        return tf.reduce_logsumexp(t, axis=axis, keepdims=True)

    def cast(self, t: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
        return tf.cast(t, like.dtype)

    def widen(self, t: tf.Tensor) -> tf.Tensor:
        return tf.cast(t, tf.float64)

    def smallest_normal(self, t: tf.Tensor) -> float:
        return _SMALLEST_NORMAL.get(t.dtype, 1.1754943508222875e-38)  # float32, bfloat16


#: The rules' operations on TensorFlow graph tensors.
OPS: RuleOps = TFRuleOps()


# --- helpers on tensors ----------------------------------------------------------------------------


def clone(op: tf.Operation, inputs: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """A new op of ``op``'s type and attributes on other ``inputs`` (ordinary gradient, no rule)."""
    fn = getattr(tf.raw_ops, op.type)
    names = [p for p in inspect.signature(fn).parameters if p != "name"]
    input_args = op.op_def.input_arg
    kwargs: CallKwargs = {}
    position = 0
    for name, arg in zip(names, input_args, strict=False):  # raw_ops list the inputs first, in order
        if arg.number_attr:
            count = op.get_attr(arg.number_attr)
        elif arg.type_list_attr:
            count = len(op.get_attr(arg.type_list_attr))
        else:
            kwargs[name] = inputs[position]
            position += 1
            continue
        kwargs[name] = list(inputs[position : position + count])
        position += count
    for name in names[len(input_args) :]:
        kwargs[name] = op.get_attr(name)
    result = fn(**kwargs)
    if isinstance(result, tf.Tensor):
        return [result]
    return list(result)


def _vjp(fn: Callable[[tf.Tensor], tf.Tensor], at: tf.Tensor, grad: tf.Tensor) -> tf.Tensor:
    """The ordinary VJP of ``fn`` at ``at`` (isolated from the traced graph by a fresh identity)."""
    start = tf.identity(at)
    result = tf.gradients(fn(start), start, grad_ys=grad)[0]
    return tf.zeros_like(at) if result is None else result


def _unbroadcast(tensor: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Sum ``tensor`` (broadcast shape) back to the shape of ``like``."""
    if _same_shape(tensor, like):
        return tensor
    shape = tf.shape(like)
    _, axes = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(tensor), s1=shape)
    return tf.reshape(tf.reduce_sum(tensor, axis=axes), shape)


def _same_shape(a: tf.Tensor, b: tf.Tensor) -> bool:
    """Statically the same shape (an unknown batch axis counts as the same: data tensors share it)."""
    dims = a.shape.as_list() if a.shape.rank is not None else None
    return dims is not None and dims == b.shape.as_list() and None not in dims[1:]


def _like(tensor: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """``tensor`` broadcast to the shape of ``target`` (unchanged when the shapes already agree)."""
    if _same_shape(tensor, target):
        return tensor
    return tensor + tf.zeros_like(target)


def _replace(items: list[tf.Tensor], index: int, value: tf.Tensor) -> list[tf.Tensor]:
    items = list(items)
    items[index] = value
    return items


def _in_operand(op: tf.Operation, inputs: list[tf.Tensor], k: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """``op`` (ordinary gradient) as a function of its operand ``k``, the others fixed at ``inputs``."""
    return lambda t: clone(op, _replace(inputs, k, t))[0]


def _derivative(op: tf.Operation, inputs: list[tf.Tensor], k: int) -> tf.Tensor:
    """Elementwise derivative of ``op`` in operand ``k`` at ``inputs`` (operand k has the output shape)."""
    start = tf.identity(inputs[k])
    out = clone(op, _replace(inputs, k, start))[0]
    result = tf.gradients(out, start, grad_ys=tf.ones_like(out))[0]
    return tf.zeros_like(start) if result is None else result


# --- element-wise ops ------------------------------------------------------------------------------


def elementwise(
    session: RuleSession,
    op: tf.Operation,
    partner: tf.Operation,
    positions: list[int],
    grad: tf.Tensor,
    closed_form: ClosedForm | None = None,
) -> Gradients:
    """Rescale (one data operand) or exact two-player Shapley split (two), as multipliers; with a
    ``closed_form``, that formula."""
    multipliers = session.cached(
        op, "m", lambda: _elementwise_multipliers(op, partner, positions, closed_form)
    )
    result: Gradients = [None] * len(op.inputs)
    for position, multiplier in zip(positions, multipliers, strict=True):
        result[position] = _unbroadcast(grad * multiplier, op.inputs[position])
    return result


def _elementwise_multipliers(
    op: tf.Operation, partner: tf.Operation, positions: list[int], closed_form: ClosedForm | None
) -> list[tf.Tensor]:
    y, y_ref = op.outputs[0], partner.outputs[0]
    xs = [_like(t, y) if i in positions else t for i, t in enumerate(op.inputs)]
    refs = [_like(partner.inputs[i], y) if i in positions else t for i, t in enumerate(op.inputs)]
    if closed_form is not None:
        return closed_form(xs, refs, positions, y - y_ref)
    if len(positions) == 1:
        (k,) = positions
        mid = [(x + r) / 2 if i == k else x for i, (x, r) in enumerate(zip(xs, refs, strict=True))]
        return [maths.secant(OPS, y - y_ref, xs[k], refs[k], _derivative(op, mid, k))]
    a, b = positions
    y_a = clone(op, _replace(xs, b, refs[b]))[0]  # f(a, b_ref)
    y_b = clone(op, _replace(xs, a, refs[a]))[0]  # f(a_ref, b)
    phi_a, phi_b = maths.shapley_shares(y, y_ref, y_a, y_b)
    out = []
    for k, other, phi in ((a, b, phi_a), (b, a, phi_b)):
        mid = (xs[k] + refs[k]) / 2
        d1 = _derivative(op, _replace(_replace(xs, other, refs[other]), k, mid), k)
        d2 = _derivative(op, _replace(xs, k, mid), k)
        out.append(maths.secant(OPS, phi, xs[k], refs[k], (d1 + d2) / 2, relative=True))
    return out


def relu_multipliers(upper: float | None) -> ClosedForm:
    """ReLU (``upper=None``) or ReLU6: slopes 0 and 1 make the secant exact in floating point (bounded by
    1 even for the smallest differences), so only an exact tie needs the derivative."""

    def multipliers(
        xs: list[tf.Tensor], refs: list[tf.Tensor], positions: list[int], delta_out: tf.Tensor
    ) -> list[tf.Tensor]:
        x, delta = xs[0], xs[0] - refs[0]
        active = x > 0 if upper is None else tf.logical_and(x > 0, x < upper)
        return [tf.where(tf.equal(delta, 0), tf.cast(active, x.dtype), delta_out / delta)]

    return multipliers


def unary_closed_form(secant: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> ClosedForm:
    """The closed form of a one-operand op from its exact ``secant(x, r)`` (:mod:`deepshap.rules.maths`)."""

    def multipliers(
        xs: list[tf.Tensor], refs: list[tf.Tensor], positions: list[int], delta_out: tf.Tensor
    ) -> list[tf.Tensor]:
        return [secant(xs[0], refs[0])]

    return multipliers


def binary_closed_form(secants: Callable[..., tuple[tf.Tensor, tf.Tensor]]) -> ClosedForm:
    """The closed form of a two-operand op from its exact ``secants(a_x, a_r, b_x, b_r)``."""

    def multipliers(
        xs: list[tf.Tensor], refs: list[tf.Tensor], positions: list[int], delta_out: tf.Tensor
    ) -> list[tf.Tensor]:
        both = secants(xs[0], refs[0], xs[1], refs[1])
        return [both[k] for k in positions]

    return multipliers


# --- products, max, softmax, select ----------------------------------------------------------------


def bilinear(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> Gradients:
    """Shapley split of a bilinear op: the ordinary VJP with the other operand at its midpoint."""
    inputs = list(op.inputs)
    mids = session.cached(
        op,
        "mid",
        lambda: {
            k: (inputs[k] + partner.inputs[k]) / 2 if len(positions) == 2 else inputs[k] for k in positions
        },
    )
    result: Gradients = [None] * len(inputs)
    for k in positions:
        fixed = [tf.stop_gradient(mids[i]) if i in positions and i != k else t for i, t in enumerate(inputs)]
        result[k] = _vjp(_in_operand(op, fixed, k), inputs[k], grad)
    return result


def max_reduce(
    session: RuleSession,
    op: tf.Operation,
    partner: tf.Operation,
    positions: list[int],
    grad: tf.Tensor,
    pick: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = tf.maximum,
) -> Gradients:
    """Max/min pooling or reduction: route each half's share of the change to its winner, then rescale.

    The change ``y - y_ref`` splits into ``cross - y_ref`` (sent to the input's winning position) and
    ``y - cross`` (sent to the reference's), ``cross`` being ``pick`` (max or min) of the two; at a winning
    position the routed share never exceeds that input's own change, so dividing by it keeps
    summation-to-delta.
    """
    x, x_ref = op.inputs[0], partner.inputs[0]
    y, y_ref = op.outputs[0], partner.outputs[0]
    cross = pick(y, y_ref)
    rest = list(op.inputs[1:])
    to_x = _vjp(lambda t: clone(op, [t, *rest])[0], x, grad * (cross - y_ref))
    to_ref = _vjp(lambda t: clone(op, [t, *rest])[0], x_ref, grad * (y - cross))
    delta = x - x_ref
    share = maths.quotient(OPS, to_x + to_ref, delta, tf.zeros_like(delta))
    return [share] + [None] * len(rest)


def min_reduce(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> Gradients:
    """:func:`max_reduce` for ``Min``."""
    return max_reduce(session, op, partner, positions, grad, tf.minimum)


def max_pool(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> Gradients:
    """The max rule for NHWC ``MaxPool`` as one scatter per output (the winners and scales are cached).

    In each window only one half wins, so the whole change ``y - y_ref`` goes to one input position
    (:func:`deepshap.rules.maths.max_weights`): the input's argmax where the input wins, else the
    reference's. Other layouts and paddings take :func:`max_reduce`.
    """
    if op.type != "MaxPool" or op.get_attr("data_format") != b"NHWC" or op.get_attr("padding") == b"EXPLICIT":
        return max_reduce(session, op, partner, positions, grad)
    padding = op.get_attr("padding")
    pool = {"ksize": op.get_attr("ksize"), "strides": op.get_attr("strides"), "padding": padding.decode()}
    x = op.inputs[0]

    def winners() -> tuple[tf.Tensor, tf.Tensor]:
        x_ref, y, y_ref = partner.inputs[0], op.outputs[0], partner.outputs[0]
        _, at_x = tf.nn.max_pool_with_argmax(x, include_batch_in_index=True, **pool)
        _, at_ref = tf.nn.max_pool_with_argmax(x_ref, include_batch_in_index=True, **pool)
        where = tf.where(y >= y_ref, at_x, at_ref)
        x_at = tf.gather(tf.reshape(x, [-1]), where)
        r_at = tf.gather(tf.reshape(x_ref, [-1]), where)
        return where, maths.max_weights(OPS, y, y_ref, x_at, r_at)

    where, scale = session.cached(op, "winners", winners)
    routed = tf.raw_ops.MaxPoolGradWithArgmax(
        input=x,
        grad=grad * scale,
        argmax=where,
        ksize=pool["ksize"],
        strides=pool["strides"],
        padding=pool["padding"],
        include_batch_in_index=True,
    )
    return [routed]


def softmax(
    session: RuleSession,
    op: tf.Operation,
    partner: tf.Operation,
    positions: list[int],
    grad: tf.Tensor,
    log: bool = False,
) -> Gradients:
    """Softmax (or, with ``log``, log-softmax) over the last axis as ``exp(x - logsumexp(x))``, with the
    multipliers of :func:`deepshap.rules.maths.softmax_multipliers`, computed once per op and shared by
    every output's pass. The backward is ``g * m_exp - m_lse * sum(g * m_exp)``, in float64."""

    def multipliers() -> tuple[tf.Tensor, tf.Tensor]:
        m_lse, m_exp, _, _ = maths.softmax_multipliers(OPS, op.inputs[0], partner.inputs[0], -1)
        return m_lse, m_exp

    m_lse, m_exp = session.cached(op, "softmax", multipliers)
    through = OPS.widen(grad) if log else OPS.widen(grad) * m_exp
    return [tf.cast(through - m_lse * tf.reduce_sum(through, axis=-1, keepdims=True), grad.dtype)]


def log_softmax(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> Gradients:
    """:func:`softmax` for ``LogSoftmax``."""
    return softmax(session, op, partner, positions, grad, log=True)


def select(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> Gradients:
    """``where(c, t, e)``: linear in t and e where the condition is a constant; with a condition computed
    from the input, :func:`deepshap.rules.maths.select_multipliers`. A flip with neither branch changing
    (a step), or with an output change too large to split, has no rule: an error at run time."""
    branches = [k for k in positions if k > 0]
    result: Gradients = [None, None, None]
    if op.inputs[0].ref() not in session.discrete:
        for k in branches:
            result[k] = _vjp(_in_operand(op, list(op.inputs), k), op.inputs[k], grad)
        return result
    multipliers = session.cached(op, "m", lambda: _select_multipliers(op, partner, branches))
    for k, multiplier in zip(branches, multipliers, strict=True):
        result[k] = _unbroadcast(grad * multiplier, op.inputs[k])
    return result


def _select_multipliers(op: tf.Operation, partner: tf.Operation, branches: list[int]) -> list[tf.Tensor]:
    y, y_ref = op.outputs[0], partner.outputs[0]
    chosen = _like(op.inputs[0], y)
    agree = tf.equal(chosen, _like(partner.inputs[0], y))
    d_t, d_e = (maths.change(OPS, _like(op.inputs[k], y), _like(partner.inputs[k], y)) for k in (1, 2))
    m_t, m_e, step = maths.select_multipliers(OPS, chosen, agree, d_t, d_e, y - y_ref)
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(step)),
        [
            f"DeepExplainer: the condition of {op.name} ({op.type}) differs between an input and a "
            "reference while neither of the values it chooses between does (a step function), or the "
            "output's change is too large to split (a fill of -inf); DeepLIFT has no rule for that."
        ],
    )
    with tf.control_dependencies([check]):
        return [tf.identity(m_t if k == 1 else m_e) for k in branches]

"""DeepLIFT/Shapley rules as TensorFlow gradient functions, bound to ops of one traced graph.

How it works. Inside a ``tf.function`` the model is called twice on the same number of rows: first on the
references (background rows, tiled to pair each input row), then on the inputs (repeated, one copy per
reference), the second call with :data:`OVERRIDES` in ``graph.gradient_override_map``. Both calls create
the same sequence of data-dependent ops, so each op of the input call has a *partner* op in the
reference call, holding the reference values of its inputs and outputs. ``tf.gradients`` then runs over
the input call only; the ops with a rule get their gradient from :func:`_rule_gradient`, registered once
under the deepshap-specific name :data:`RULE_GRADIENT`, which asks the active :class:`RuleSession` for
the DeepLIFT/Shapley multiplier of that op. Ops without an override keep their ordinary gradient, which
is the exact multiplier of a linear op.

Nothing global is patched: the override map is a context manager on the traced graph, the session is a
context variable reset in ``finally``, and the registered gradient name is used by no other op.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from deepshap.rules import Rule
from deepshap.rules.tensorflow_ops import (
    DISCRETE,
    IDENTITY,
    OP_RULES,
    OVERRIDDEN_KINDS,
    SELECT,
    SHAPE,
    OpRule,
)

__all__ = ["OVERRIDES", "RULE_GRADIENT", "RuleSession", "UnsupportedOperationError"]

RULE_GRADIENT = "DeepshapRule"
OVERRIDES = {name: RULE_GRADIENT for name, rule in OP_RULES.items() if rule.kind in OVERRIDDEN_KINDS}

_ACTIVE: contextvars.ContextVar[RuleSession | None] = contextvars.ContextVar("deepshap_rules", default=None)


class UnsupportedOperationError(NotImplementedError):
    """The model uses a TensorFlow op that has no DeepLIFT/Shapley rule in deepshap."""


def _rule_gradient(op: tf.Operation, *grads: tf.Tensor) -> list[tf.Tensor | None]:
    session = _ACTIVE.get()
    if session is None:
        raise RuntimeError(
            f"The op {op.name} ({op.type}) carries a deepshap rule gradient but no DeepExplainer trace is "
            "active; these gradients exist only inside deepshap's own traced functions."
        )
    return session.gradient(op, list(grads))


def _register() -> None:
    try:
        tf.RegisterGradient(RULE_GRADIENT)(_rule_gradient)
    except KeyError:  # already registered (module reloaded)
        pass


_register()


def _is_float(tensor: tf.Tensor) -> bool:
    return tensor.dtype.is_floating


class RuleSession:
    """The rule state of one traced graph: partner ops, data dependence and cached multipliers."""

    def __init__(self, graph: tf.Graph) -> None:
        self.graph = graph
        self.partner: dict[str, tf.Operation] = {}
        self.data: set[Any] = set()  # refs of float tensors computed from the explained inputs
        self.discrete: set[Any] = set()  # refs of integer/boolean tensors computed from them
        self._cache: dict[tuple[str, str], Any] = {}

    @contextlib.contextmanager
    def active(self) -> Iterator[RuleSession]:
        """Make this session the one the rule gradients consult (reset on exit, also on errors)."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    # --- tracing -----------------------------------------------------------------------------------

    def trace_pair(
        self, fn: Callable[[list[tf.Tensor]], tf.Tensor], inputs: list[tf.Tensor], refs: list[tf.Tensor]
    ) -> tf.Tensor:
        """Call ``fn`` on the references, then on the inputs with rule overrides; pair their ops.

        Returns the input call's output. Raises :class:`UnsupportedOperationError` if an op between the
        inputs and the output has no rule, and RuntimeError if the two calls built different graphs.
        """
        start = len(self.graph.get_operations())
        fn(refs)  # only its ops matter: they hold the reference values
        middle = len(self.graph.get_operations())
        with self.graph.gradient_override_map(OVERRIDES):
            out = fn(inputs)
        ops = self.graph.get_operations()
        ref_ops = _dependent_ops(ops[start:middle], refs, set(), set())
        x_ops = _dependent_ops(ops[middle:], inputs, self.data, self.discrete)
        if [op.type for op in ref_ops] != [op.type for op in x_ops]:
            raise RuntimeError(
                "The model built different graphs for the inputs and the references (data-dependent "
                "Python control flow?); DeepExplainer needs the same operations for both."
            )
        self.partner.update({op.name: ref for op, ref in zip(x_ops, ref_ops, strict=True)})
        self._check_rules(x_ops, out)
        self._redirect_custom_gradients(x_ops)
        return out

    def _check_rules(self, ops: list[tf.Operation], out: tf.Tensor) -> None:
        """Every op on a path from the inputs to ``out`` must have a rule that fits its operands."""
        on_path = _ops_reaching(out, {op.name for op in ops})
        for op in ops:
            if op.name not in on_path:
                continue
            if op.type in _NESTED_CALLS:
                self._check_nested_call(op)
                continue
            rule = _rule_of(op)
            if rule is None:
                raise UnsupportedOperationError(
                    f"DeepExplainer has no DeepLIFT/Shapley rule for the TensorFlow op type {op.type!r} "
                    f"(op {op.name!r}) that the model computes from its input. Explain a model without "
                    "it, or use GradientExplainer, which needs only gradients."
                )
            self._check_operands(op, rule)

    def _check_nested_call(self, op: tf.Operation) -> None:
        """A nested tf.function call keeps its ordinary gradient, which is exact only if it is linear.

        Keras runs grouped convolutions and channels-first Conv3D through a nested, XLA-compiled
        ``tf.function``: one call op whose body the rule overrides cannot reach. Such a body is linear in
        its data inputs, so its ordinary gradient is already the DeepLIFT multiplier; any other body
        raises, naming the first op inside it that would need a rule.
        """
        inner = _first_nonlinear_op(op, self._data_positions(op))
        if inner is not None:
            raise UnsupportedOperationError(
                f"The op {op.name!r} ({op.type}) is a nested tf.function call (Keras runs grouped "
                "convolutions, channels-first Conv3D and XLA-compiled layers this way, as does a layer "
                f"whose call is a tf.function) whose body computes {inner.type!r} (op {inner.name!r}) from "
                "the input; DeepExplainer applies its rules only outside nested calls, and passes through "
                "calls that are linear in the input. Use GradientExplainer, or explain a model without "
                "that layer."
            )

    def _check_operands(self, op: tf.Operation, rule: OpRule) -> None:
        for position, tensor in enumerate(op.inputs):
            ref = tensor.ref()
            if rule.kind == SELECT and position == 0 and ref in self.discrete:
                if not any(branch.ref() in self.data for branch in op.inputs[1:]):
                    raise UnsupportedOperationError(
                        f"The op {op.name!r} ({op.type}) chooses between values that do not depend on the "
                        "input by a condition that does (a step function); DeepLIFT has no rule for it."
                    )
                continue
            if ref in self.discrete and rule.kind not in (DISCRETE, SHAPE):
                raise UnsupportedOperationError(
                    f"The op {op.name!r} ({op.type}) uses an integer or boolean value computed from the "
                    "input (an index or a mask); DeepLIFT has no rule for data-dependent selection. For "
                    "token ids going into an Embedding, explain the embedding's output with the tuple form "
                    "(embedding_layer.output, model.output)."
                )
            if ref in self.data and rule.data_inputs is not None and position not in rule.data_inputs:
                raise UnsupportedOperationError(
                    f"The op {op.name!r} ({op.type}) takes a value computed from the input as its operand "
                    f"{position} (a weight or an index); DeepExplainer has no rule for that."
                )
        if rule.kind == Rule.BILINEAR and len(self._data_positions(op)) > 2:
            raise UnsupportedOperationError(
                f"The op {op.name!r} ({op.type}) multiplies more than two values computed from the input; "
                "DeepExplainer's Shapley rule covers products of two."
            )
        if op.type.startswith("FusedBatchNorm") and op.get_attr("is_training"):
            raise UnsupportedOperationError(
                f"The op {op.name!r} is a batch normalisation in training mode; explain the model in "
                "inference mode (training=False)."
            )

    def _redirect_custom_gradients(self, ops: list[tf.Operation]) -> None:
        """``tf.custom_gradient`` blocks: pass the gradient through so their inner ops get rules."""
        for op in ops:
            if op.type == "IdentityN":
                op._set_attr("_gradient_op_type", tf.compat.v1.AttrValue(s=RULE_GRADIENT.encode()))

    # --- gradients ---------------------------------------------------------------------------------

    def gradient(self, op: tf.Operation, grads: list[tf.Tensor | None]) -> list[tf.Tensor | None]:
        """The DeepLIFT/Shapley gradient of ``op`` for the upstream ``grads``."""
        rule = _rule_of(op)
        if rule is None or rule.kind not in OVERRIDDEN_KINDS:
            raise UnsupportedOperationError(f"No DeepLIFT rule for {op.type!r} (op {op.name!r}).")
        if rule.kind == IDENTITY:
            return list(grads)
        positions = self._data_positions(op)
        grad = grads[0]
        if grad is None or not positions:
            return [None] * len(op.inputs)
        partner = self.partner.get(op.name)
        if partner is None:
            raise RuntimeError(f"deepshap found no reference partner for op {op.name!r}; please report this.")
        handler = _HANDLERS[rule.kind]
        return handler(self, op, partner, positions, grad)

    def _data_positions(self, op: tf.Operation) -> list[int]:
        return [i for i, t in enumerate(op.inputs) if t.ref() in self.data]

    def cached(self, op: tf.Operation, what: str, build: Callable[[], Any]) -> Any:
        """A value derived from ``op``'s forward values, built once and shared by every output's VJP."""
        key = (op.name, what)
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


# --- graph analysis --------------------------------------------------------------------------------


_NESTED_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def _rule_of(op: tf.Operation) -> OpRule | None:
    if op.type == "Cast" and not op.outputs[0].dtype.is_floating:
        return OpRule(DISCRETE)
    return OP_RULES.get(op.type)


def _first_nonlinear_op(call: tf.Operation, data_positions: list[int]) -> tf.Operation | None:
    """The first op inside the nested call ``call`` that is not linear in the call's data operands
    (those at ``data_positions``), looking into calls nested deeper too; None if the body is linear."""
    body = _called_graph(call)
    data: set[Any] = set()
    discrete: set[Any] = set()
    for op in _dependent_ops(body.get_operations(), [body.inputs[i] for i in data_positions], data, discrete):
        positions = [i for i, t in enumerate(op.inputs) if t.ref() in data]
        if op.type in _NESTED_CALLS:
            inner = _first_nonlinear_op(op, positions)
            if inner is not None:
                return inner
            continue
        rule = _rule_of(op)
        if rule is None:
            return op
        if rule.kind in (SHAPE, DISCRETE):
            continue
        if any(t.ref() in discrete for t in op.inputs):
            return op
        linear_operands = rule.data_inputs is None or set(positions) <= set(rule.data_inputs)
        if not (rule.kind == Rule.LINEAR and linear_operands) and not (
            rule.kind == Rule.BILINEAR and len(positions) == 1
        ):
            return op
    return None


def _called_graph(call: tf.Operation) -> tf.Graph:
    """The graph of the function that the call op ``call`` runs (its inputs in the call's operand order)."""
    function = call.graph._get_function(call.get_attr("f").name)
    body = getattr(function, "graph", None)
    if body is None:
        from tensorflow.python.framework.function_def_to_graph import function_def_to_graph

        body = function_def_to_graph(function.definition)
    return body


def _dependent_ops(
    ops: Sequence[tf.Operation], inputs: list[tf.Tensor], data: set[Any], discrete: set[Any]
) -> list[tf.Operation]:
    """The ops of ``ops`` (in creation order) whose value depends on ``inputs``; fills data/discrete."""
    marked = {t.ref() for t in inputs}
    data.update(t.ref() for t in inputs)
    found = []
    for op in ops:
        if not any(t.ref() in marked for t in op.inputs):
            continue
        found.append(op)
        rule = OP_RULES.get(op.type)
        if rule is not None and rule.kind == SHAPE:
            continue
        for out in op.outputs:
            marked.add(out.ref())
            (data if _is_float(out) else discrete).add(out.ref())
    return found


def _ops_reaching(out: tf.Tensor, candidates: set[str]) -> set[str]:
    """Names of the ops among ``candidates`` from which ``out`` can be reached."""
    seen: set[str] = set()
    stack = [out.op]
    while stack:
        op = stack.pop()
        if op.name in seen or op.name not in candidates:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
    return seen


# --- helpers on tensors ----------------------------------------------------------------------------


def clone(op: tf.Operation, inputs: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """A new op of ``op``'s type and attributes on other ``inputs`` (ordinary gradient, no rule)."""
    fn = getattr(tf.raw_ops, op.type)
    names = [p for p in inspect.signature(fn).parameters if p != "name"]
    input_args = op.op_def.input_arg
    kwargs: dict[str, Any] = {}
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


_REL_TINY = 1e-6  # sums this close (relative to their size) use log's slope at their midpoint
_SMALLEST_NORMAL = {  # torch.finfo(dtype).tiny, as the PyTorch rules use
    tf.float64: 2.2250738585072014e-308,
    tf.float32: 1.1754943508222875e-38,
    tf.bfloat16: 1.1754943508222875e-38,
    tf.float16: 6.103515625e-05,
}


def _vanishing(delta: tf.Tensor) -> tf.Tensor:
    """Where a difference is zero, denormal or NaN (equal infinities), too small to divide by (as the
    PyTorch rules judge it). NaN is tested on its own: in a graph, TensorFlow rewrites ``not (a >= b)``
    into ``a < b``, which is False for NaN."""
    return tf.logical_or(tf.math.is_nan(delta), tf.abs(delta) < _SMALLEST_NORMAL[delta.dtype])


def _secant(
    delta_out: tf.Tensor, x: tf.Tensor, r: tf.Tensor, derivative: tf.Tensor, relative: bool = False
) -> tf.Tensor:
    """The multiplier ``delta_out / (x - r)``, or ``derivative`` where the difference vanishes: zero or
    denormal, or with ``relative`` (a two-player split, whose numerator carries the rounding of its
    operands' size) within ``_REL_TINY`` of their size. An infinite derivative there (sqrt at 0) counts
    as 0: any finite multiplier keeps the sum of a zero difference, an infinite one makes it NaN."""
    delta = x - r
    small = _vanishing(delta)
    if relative:
        small = tf.logical_or(small, tf.abs(delta) <= _REL_TINY * (tf.abs(x) + tf.abs(r)))
    finite = tf.where(tf.math.is_finite(derivative), derivative, tf.zeros_like(derivative))
    return _quotient(delta_out, delta, finite, small)


def _quotient(
    numerator: tf.Tensor, delta: tf.Tensor, fallback: tf.Tensor, small: tf.Tensor | None = None
) -> tf.Tensor:
    """``numerator / delta``, or ``fallback`` where the difference ``delta`` is ``small`` (by default where
    it vanishes, :func:`_vanishing`); nothing is divided by those differences."""
    small = _vanishing(delta) if small is None else small
    return tf.where(small, fallback, numerator / tf.where(small, tf.ones_like(delta), delta))


# --- rules -----------------------------------------------------------------------------------------


def _elementwise(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> list[tf.Tensor | None]:
    """Rescale (one data operand) or exact two-player Shapley split (two), as multipliers."""
    multipliers = session.cached(op, "m", lambda: _elementwise_multipliers(op, partner, positions))
    result: list[tf.Tensor | None] = [None] * len(op.inputs)
    for position, multiplier in zip(positions, multipliers, strict=True):
        result[position] = _unbroadcast(grad * multiplier, op.inputs[position])
    return result


def _elementwise_multipliers(
    op: tf.Operation, partner: tf.Operation, positions: list[int]
) -> list[tf.Tensor]:
    y, y_ref = op.outputs[0], partner.outputs[0]
    xs = [_like(t, y) if i in positions else t for i, t in enumerate(op.inputs)]
    refs = [_like(partner.inputs[i], y) if i in positions else t for i, t in enumerate(op.inputs)]
    closed = OP_RULES[op.type].closed_form
    if closed is not None:
        return _closed_form(closed, xs, refs, positions, y - y_ref)
    if len(positions) == 1:
        (k,) = positions
        mid = [(x + r) / 2 if i == k else x for i, (x, r) in enumerate(zip(xs, refs, strict=True))]
        derivative = _derivative(op, mid, k)
        return [_secant(y - y_ref, xs[k], refs[k], derivative)]
    a, b = positions
    y_a = clone(op, _replace(xs, b, refs[b]))[0]  # f(a, b_ref)
    y_b = clone(op, _replace(xs, a, refs[a]))[0]  # f(a_ref, b)
    phi_a = ((y_a - y_ref) + (y - y_b)) / 2
    phi_b = ((y_b - y_ref) + (y - y_a)) / 2
    out = []
    for k, other, phi in ((a, b, phi_a), (b, a, phi_b)):
        mid = (xs[k] + refs[k]) / 2
        d1 = _derivative(op, _replace(_replace(xs, other, refs[other]), k, mid), k)
        d2 = _derivative(op, _replace(xs, k, mid), k)
        out.append(_secant(phi, xs[k], refs[k], (d1 + d2) / 2, relative=True))
    return out


def _replace(items: list[tf.Tensor], index: int, value: tf.Tensor) -> list[tf.Tensor]:
    items = list(items)
    items[index] = value
    return items


def _derivative(op: tf.Operation, inputs: list[tf.Tensor], k: int) -> tf.Tensor:
    """Elementwise derivative of ``op`` in operand ``k`` at ``inputs`` (operand k has the output shape)."""
    start = tf.identity(inputs[k])
    out = clone(op, _replace(inputs, k, start))[0]
    result = tf.gradients(out, start, grad_ys=tf.ones_like(out))[0]
    return tf.zeros_like(start) if result is None else result


def _closed_form(
    name: str, xs: list[tf.Tensor], refs: list[tf.Tensor], positions: list[int], delta_out: tf.Tensor
) -> list[tf.Tensor]:
    """Exact multipliers without the tiny-difference threshold.

    ``relu``/``relu6``: slopes 0 and 1 make the secant exact in floating point (bounded by 1 even for the
    smallest differences), so only an exact tie needs the derivative. The others are exact formulas for
    the Shapley split that do not divide by the difference to the reference.
    """
    if name in ("relu", "relu6"):
        x, delta = xs[0], xs[0] - refs[0]
        active = x > 0 if name == "relu" else tf.logical_and(x > 0, x < 6)
        return [tf.where(tf.equal(delta, 0), tf.cast(active, x.dtype), delta_out / delta)]
    if name == "square":
        return [xs[0] + refs[0]]
    if name == "squared_difference":
        m = (xs[0] + refs[0]) - (xs[1] + refs[1])
        return [m if k == 0 else -m for k in positions]
    # div: a / b, Shapley split of the two operands
    a, b, a_ref, b_ref = xs[0], xs[1], refs[0], refs[1]
    table = {0: (1 / b + 1 / b_ref) / 2, 1: -(a + a_ref) / (2 * b * b_ref)}
    return [table[k] for k in positions]


def _bilinear(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> list[tf.Tensor | None]:
    """Shapley split of a bilinear op: the ordinary VJP with the other operand at its midpoint."""
    inputs = list(op.inputs)
    mids = session.cached(
        op,
        "mid",
        lambda: {
            k: (inputs[k] + partner.inputs[k]) / 2 if len(positions) == 2 else inputs[k] for k in positions
        },
    )
    result: list[tf.Tensor | None] = [None] * len(inputs)
    for k in positions:
        fixed = [tf.stop_gradient(mids[i]) if i in positions and i != k else t for i, t in enumerate(inputs)]
        result[k] = _vjp(lambda t, k=k, fixed=fixed: clone(op, _replace(fixed, k, t))[0], inputs[k], grad)
    return result


def _max(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> list[tf.Tensor | None]:
    """Max/min pooling or reduction: route each half's share of the change to its winner, then rescale.

    The change ``y - y_ref`` splits into ``cross - y_ref`` (sent to the input's winning position) and
    ``y - cross`` (sent to the reference's), ``cross`` being the op applied to both; at a winning position
    the routed share never exceeds that input's own change, so dividing by it keeps summation-to-delta.
    """
    x, x_ref = op.inputs[0], partner.inputs[0]
    y, y_ref = op.outputs[0], partner.outputs[0]
    pick = tf.minimum if op.type == "Min" else tf.maximum
    cross = pick(y, y_ref)
    rest = list(op.inputs[1:])
    to_x = _vjp(lambda t: clone(op, [t, *rest])[0], x, grad * (cross - y_ref))
    to_ref = _vjp(lambda t: clone(op, [t, *rest])[0], x_ref, grad * (y - cross))
    delta = x - x_ref
    share = _quotient(to_x + to_ref, delta, tf.zeros_like(delta))
    return [share] + [None] * len(rest)


def _max_pool(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> list[tf.Tensor | None]:
    """The max rule for NHWC ``MaxPool`` as one scatter per output (the winners and scales are cached).

    In each window only one half wins (``cross`` equals ``y`` or ``y_ref``), so the whole change
    ``y - y_ref`` goes to one input position: the input's argmax where the input wins, else the
    reference's. Dividing by that position's change gives a per-window scale shared by every output.
    """
    if op.type != "MaxPool" or op.get_attr("data_format") != b"NHWC" or op.get_attr("padding") == b"EXPLICIT":
        return _max(session, op, partner, positions, grad)
    padding = op.get_attr("padding")
    pool = {"ksize": op.get_attr("ksize"), "strides": op.get_attr("strides"), "padding": padding.decode()}
    x = op.inputs[0]

    def winners() -> tuple[tf.Tensor, tf.Tensor]:
        x_ref, y, y_ref = partner.inputs[0], op.outputs[0], partner.outputs[0]
        _, at_x = tf.nn.max_pool_with_argmax(x, include_batch_in_index=True, **pool)
        _, at_ref = tf.nn.max_pool_with_argmax(x_ref, include_batch_in_index=True, **pool)
        where = tf.where(y >= y_ref, at_x, at_ref)
        delta = tf.gather(tf.reshape(x - x_ref, [-1]), where)
        return where, _quotient(y - y_ref, delta, tf.zeros_like(delta))

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


def _softmax(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> list[tf.Tensor | None]:
    """Softmax / log-softmax over the last axis as ``exp(x - logsumexp(x))``, the PyTorch path's rule.

    The logsumexp's multipliers are those of exp, sum and log chained, ``(lse_x - lse_r) / (A - B) *
    (a_i - b_i) / (x_i - r_i)`` with ``a = exp(x - c)``, ``A = sum(a)`` and ``c`` the larger logsumexp, so
    every term lies in [0, 1] and each side's logsumexp is its own stable one: logits any distance apart
    give finite multipliers that add up to the output's change. Softmax adds the rescale rule of exp on
    the log-softmax. The multipliers are computed once per op and shared by every output's pass.
    """

    def multipliers() -> tuple[tf.Tensor, tf.Tensor | None]:
        x, x_ref = op.inputs[0], partner.inputs[0]
        lse_x = tf.reduce_logsumexp(x, axis=-1, keepdims=True)
        lse_r = tf.reduce_logsumexp(x_ref, axis=-1, keepdims=True)
        c = tf.maximum(lse_x, lse_r)
        c = tf.where(tf.math.is_finite(c), c, tf.zeros_like(c))
        a, b = tf.exp(x - c), tf.exp(x_ref - c)
        change = tf.reduce_sum(a - b, axis=-1, keepdims=True)
        total = tf.reduce_sum(a + b, axis=-1, keepdims=True)
        close = tf.logical_not(tf.abs(change) > _REL_TINY * total)
        m_log = tf.where(close, 2 / total, (lse_x - lse_r) / tf.where(close, tf.ones_like(c), change))
        m_lse = m_log * _exp_secant(a, b, x - x_ref)
        if op.type == "LogSoftmax":
            return m_lse, None
        log_x, log_r = x - lse_x, x_ref - lse_r
        p_x = tf.exp(log_x)
        return m_lse, _exp_secant(p_x, tf.exp(log_r), log_x - log_r)

    m_lse, m_out = session.cached(op, "softmax", multipliers)
    through = grad if m_out is None else grad * m_out
    return [through - m_lse * tf.reduce_sum(through, axis=-1, keepdims=True)]


def _exp_secant(y: tf.Tensor, y_ref: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
    """The rescale multiplier of exp, ``(y - y_ref) / delta``; ``y`` (exp's own slope) where ``delta`` is 0,
    subnormal, or NaN from equal infinities."""
    return _quotient(y - y_ref, delta, y)


def _select(
    session: RuleSession, op: tf.Operation, partner: tf.Operation, positions: list[int], grad: tf.Tensor
) -> list[tf.Tensor | None]:
    """``where(c, t, e)``: linear in t and e where the condition is the same for the input and the
    reference. Where a data-dependent condition differs, the output's whole change goes through the two
    branches in proportion to their own changes, multipliers ``dy * dt / (dt^2 + de^2)`` and
    ``dy * de / (dt^2 + de^2)``, so that ``dt * m_t + de * m_e = dy``; for a one-variable activation
    built on ``where`` (ELU, a thresholded ReLU, LeakyReLU written out) that is exactly the rescale rule
    of the whole activation. A flip with neither branch changing (a step), or with an output change too
    large to split, has no rule: an error."""
    branches = [k for k in positions if k > 0]
    result: list[tf.Tensor | None] = [None, None, None]
    if op.inputs[0].ref() not in session.discrete:
        for k in branches:
            result[k] = _vjp(lambda t, k=k: clone(op, _replace(list(op.inputs), k, t))[0], op.inputs[k], grad)
        return result
    multipliers = session.cached(op, "m", lambda: _select_multipliers(op, partner, branches))
    for k, multiplier in zip(branches, multipliers, strict=True):
        result[k] = _unbroadcast(grad * multiplier, op.inputs[k])
    return result


def _select_multipliers(op: tf.Operation, partner: tf.Operation, branches: list[int]) -> list[tf.Tensor]:
    y, y_ref = op.outputs[0], partner.outputs[0]
    chosen = _like(op.inputs[0], y)
    agree = tf.equal(chosen, _like(partner.inputs[0], y))
    change = {k: _change(_like(op.inputs[k], y), _like(partner.inputs[k], y)) for k in (1, 2)}
    # |(dt, de)| scaled by the larger one, so that dt^2 + de^2 neither overflows nor underflows
    largest = tf.maximum(tf.abs(change[1]), tf.abs(change[2]))
    scale = tf.where(largest > 0, largest, tf.ones_like(largest))
    length = largest * tf.sqrt(tf.square(change[1] / scale) + tf.square(change[2] / scale))
    unit = tf.where(length > 0, length, tf.ones_like(length))
    delta = y - y_ref
    share = delta / unit
    no_split = tf.equal(length, 0) | tf.logical_not(tf.math.is_finite(share))
    step = tf.logical_not(agree) & tf.not_equal(delta, 0) & no_split
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(step)),
        [
            f"DeepExplainer: the condition of {op.name} ({op.type}) differs between an input and a "
            "reference while neither of the values it chooses between does (a step function), or the "
            "output's change is too large to split (a fill of -inf); DeepLIFT has no rule for that."
        ],
    )
    with tf.control_dependencies([check]):
        multipliers = []
        for k in branches:
            linear = tf.cast(chosen if k == 1 else tf.logical_not(chosen), y.dtype)
            multipliers.append(tf.where(agree, linear, share * (change[k] / unit)))
    return multipliers


def _change(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``a - b``, with equal values (equal infinities too) no change."""
    return tf.where(tf.equal(a, b), tf.zeros_like(a), a - b)


_HANDLERS: dict[str, Callable[..., list[tf.Tensor | None]]] = {
    Rule.RESCALE: _elementwise,
    Rule.SHAPLEY_PAIR: _elementwise,
    Rule.BILINEAR: _bilinear,
    Rule.MAX: _max_pool,
    Rule.SOFTMAX: _softmax,
    SELECT: _select,
}

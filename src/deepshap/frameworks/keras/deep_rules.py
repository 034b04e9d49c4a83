"""DeepLIFT/Shapley rules as TensorFlow gradient functions, bound to ops of one traced graph.

How it works. Inside a ``tf.function`` the model is called twice on the same number of rows: first on the
references (background rows, tiled to pair each input row), then on the inputs (repeated, one copy per
reference), the second call with :func:`overrides` in ``graph.gradient_override_map``. Both calls create
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
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TypeVar, cast

import tensorflow as tf

from deepshap.errors import UnsupportedOperationError
from deepshap.frameworks.keras.registry import DISCRETE, IDENTITY, OP_RULES, SHAPE, OpRule
from deepshap.rules import Rule

__all__ = ["RULE_GRADIENT", "RuleSession", "UnsupportedOperationError", "overrides"]

_Value = TypeVar("_Value")

RULE_GRADIENT = "DeepshapRule"

_ACTIVE: contextvars.ContextVar[RuleSession | None] = contextvars.ContextVar("deepshap_rules", default=None)


def overrides() -> dict[str, str]:
    """The gradient override map of a traced call: every op type whose rule replaces its gradient."""
    return {
        name: RULE_GRADIENT
        for name, rule in OP_RULES.items()
        if rule.gradient is not None or rule.kind == IDENTITY
    }


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
        self.data: set[Hashable] = set()  # refs of float tensors computed from the explained inputs
        self.discrete: set[Hashable] = set()  # refs of integer/boolean tensors computed from them
        self._cache: dict[tuple[str, str], object] = {}

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
        with self.graph.gradient_override_map(overrides()):
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
                    "it, give it a rule with deepshap.rules.register, or use GradientExplainer, which "
                    "needs only gradients."
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
            if rule.kind == Rule.SELECT and position == 0 and ref in self.discrete:
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
        if rule is not None and rule.kind == IDENTITY:
            return list(grads)
        if rule is None or rule.gradient is None:
            raise UnsupportedOperationError(f"No DeepLIFT rule for {op.type!r} (op {op.name!r}).")
        positions = self._data_positions(op)
        grad = grads[0]
        if grad is None or not positions:
            return [None] * len(op.inputs)
        partner = self.partner.get(op.name)
        if partner is None:
            raise RuntimeError(f"deepshap found no reference partner for op {op.name!r}; please report this.")
        return rule.gradient(self, op, partner, positions, grad)

    def _data_positions(self, op: tf.Operation) -> list[int]:
        return [i for i, t in enumerate(op.inputs) if t.ref() in self.data]

    def cached(self, op: tf.Operation, what: str, build: Callable[[], _Value]) -> _Value:
        """A value derived from ``op``'s forward values, built once and shared by every output's VJP
        (``what`` names the value, so one key always holds the same kind of value)."""
        key = (op.name, what)
        if key not in self._cache:
            self._cache[key] = build()
        return cast(_Value, self._cache[key])


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
    data: set[Hashable] = set()
    discrete: set[Hashable] = set()
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
    ops: Sequence[tf.Operation], inputs: list[tf.Tensor], data: set[Hashable], discrete: set[Hashable]
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

"""Which TensorFlow op type gets which DeepLIFT/Shapley gradient: one table, op type -> :class:`OpRule`.

The Keras backend (:mod:`deepshap.frameworks.keras.deep_rules`) traces the model, finds every op that
lies between the explained inputs and the output, and looks its type up in :data:`OP_RULES`. An op type
that is not listed raises an error naming it: there is no silent fallback to plain gradients. Users add
op types with :func:`deepshap.rules.register`.

Kinds (the framework-neutral :class:`deepshap.rules.Rule` plus three that only a graph of ops needs):

``identity``
    A value identity whose TensorFlow gradient is zero or custom (``StopGradient``, the ``IdentityN`` of
    ``tf.custom_gradient``): the gradient passes through, so the ops that computed the value get their
    own rules (``tf.nn.silu`` is explained through its ``Mul`` and ``Sigmoid``, which compose exactly to
    the rescale rule of silu).
``shape``
    The output depends only on the shape of the data (``Shape``, ``ZerosLike``): it is not data.
``discrete``
    Integer or boolean output with no gradient (comparisons, ``ArgMax``): allowed only where such a value
    is the condition of a ``select`` or feeds other discrete ops.

Normalisations and attention have no op of their own in TensorFlow graphs: Keras builds them from
``Mean``, ``SquaredDifference``, ``Rsqrt``, ``Mul``, ``Einsum`` and ``Softmax``, each with its rule here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from deepshap.frameworks.keras import handlers as H
from deepshap.rules import Rule, maths, pending_tensorflow

__all__ = ["DISCRETE", "IDENTITY", "OP_RULES", "SHAPE", "OpRule", "add", "current", "remove", "restore"]

IDENTITY = "identity"
SHAPE = "shape"
DISCRETE = "discrete"


@dataclass(frozen=True)
class OpRule:
    """The rule of one op type.

    ``kind``: a :class:`~deepshap.rules.Rule` or one of the structural kinds above. ``data_inputs``: the
    input positions that may carry data (``None``: any); a data-dependent tensor in another position (a
    convolution filter computed from the input, say) has no rule and raises. ``gradient``: the handler
    of :mod:`~deepshap.frameworks.keras.handlers` that replaces the op's gradient, ``None`` where the
    op's own gradient is exact (linear ops), where it has none (shape and discrete ops) or for an
    identity, whose gradients the session passes through.
    """

    kind: str
    data_inputs: tuple[int, ...] | None = None
    gradient: Callable[..., H.Gradients] | None = None


_GRADIENTS: dict[str, Callable[..., H.Gradients] | None] = {
    Rule.LINEAR: None,
    Rule.RESCALE: H.elementwise,
    Rule.SHAPLEY_PAIR: H.elementwise,
    Rule.BILINEAR: H.bilinear,
    IDENTITY: None,  # the session passes an identity's gradients through
}


def _rules(
    kind: str,
    names: str,
    data_inputs: tuple[int, ...] | None = None,
    gradient: Callable[..., H.Gradients] | None = None,
) -> dict[str, OpRule]:
    gradient = gradient if gradient is not None else _GRADIENTS.get(kind)
    return {name: OpRule(kind, data_inputs, gradient) for name in names.split()}


def _closed(kind: str, closed_form: H.ClosedForm, data_inputs: tuple[int, ...] | None = None) -> OpRule:
    return OpRule(kind, data_inputs, functools.partial(H.elementwise, closed_form=closed_form))


OP_RULES: dict[str, OpRule] = {
    # Linear and affine ops: their ordinary gradient is the DeepLIFT multiplier.
    **_rules(
        Rule.LINEAR,
        "Identity Snapshot EnsureShape CheckNumerics AddV2 Add AddN Sub Neg BiasAdd Sum Mean Squeeze "
        "ConcatV2 Concat Pack Unpack Cumsum Cast SpaceToDepth DepthToSpace",
    ),
    **_rules(
        Rule.LINEAR,
        "Reshape ExpandDims Transpose Slice StridedSlice Tile BroadcastTo Pad PadV2 MirrorPad GatherV2 "
        "ReverseV2 ResizeBilinear ResizeNearestNeighbor ResizeBicubic ResizeArea AvgPool AvgPool3D "
        "Conv2D Conv3D DepthwiseConv2dNative SpaceToBatchND BatchToSpaceND ExtractImagePatches "
        "FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3",
        (0,),
    ),
    "SplitV": OpRule(Rule.LINEAR, (0,)),
    "Split": OpRule(Rule.LINEAR, (1,)),
    "Conv2DBackpropInput": OpRule(Rule.LINEAR, (2,)),
    "Conv3DBackpropInputV2": OpRule(Rule.LINEAR, (2,)),
    # Elementwise nonlinearities of one data operand (the other inputs, if any, constant).
    **_rules(
        Rule.RESCALE,
        "LeakyRelu Elu Selu Softplus Softsign Sigmoid Tanh Exp Expm1 Log Log1p Sqrt Rsqrt "
        "Reciprocal Inv Abs Erf Erfc Sin Cos Sinh Cosh Atan Asin Acos Asinh ClipByValue",
        (0,),
    ),
    "Relu": _closed(Rule.RESCALE, H.relu_multipliers(None), (0,)),
    "Relu6": _closed(Rule.RESCALE, H.relu_multipliers(6.0), (0,)),
    "Square": _closed(Rule.RESCALE, H.unary_closed_form(maths.square_secant), (0,)),
    # Elementwise functions of two operands: exact two-player Shapley split when both carry data.
    **_rules(Rule.SHAPLEY_PAIR, "Maximum Minimum Pow DivNoNan Atan2 Xlogy"),
    "RealDiv": _closed(Rule.SHAPLEY_PAIR, H.binary_closed_form(maths.quotient_multipliers)),
    "Div": _closed(Rule.SHAPLEY_PAIR, H.binary_closed_form(maths.quotient_multipliers)),
    "SquaredDifference": _closed(Rule.SHAPLEY_PAIR, H.binary_closed_form(maths.squared_difference_secants)),
    # Products of two data operands.
    **_rules(Rule.BILINEAR, "Mul MatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum"),
    # Max pooling and max/min reductions.
    **_rules(Rule.MAX, "MaxPool MaxPoolV2 MaxPool3D Max", (0,), H.max_pool),
    "Min": OpRule(Rule.MAX, (0,), H.min_reduce),
    "Softmax": OpRule(Rule.SOFTMAX, (0,), H.softmax),
    "LogSoftmax": OpRule(Rule.SOFTMAX, (0,), H.log_softmax),
    **_rules(Rule.SELECT, "SelectV2 Select", None, H.select),
    **_rules(IDENTITY, "StopGradient PreventGradient IdentityN"),
    **_rules(SHAPE, "Shape ShapeN Size Rank ZerosLike OnesLike BroadcastArgs BroadcastGradientArgs"),
    **_rules(
        DISCRETE,
        "Equal NotEqual Greater GreaterEqual Less LessEqual IsFinite IsNan IsInf LogicalAnd LogicalOr "
        "LogicalNot ArgMax ArgMin",
    ),
}

#: The kinds a user may give an op type with :func:`deepshap.rules.register`.
REGISTRABLE = (Rule.LINEAR, Rule.RESCALE, Rule.SHAPLEY_PAIR, Rule.BILINEAR, IDENTITY)


def add(op_type: str, kind: str, data_inputs: tuple[int, ...] | None = None) -> None:
    """Give ``op_type`` the rule ``kind`` (one of :data:`REGISTRABLE`), replacing any it had."""
    if kind not in REGISTRABLE:
        raise ValueError(
            f"A TensorFlow op type can be registered as one of {[str(k) for k in REGISTRABLE]}; got {kind!r}."
        )
    OP_RULES[op_type] = OpRule(str(kind) if kind == IDENTITY else Rule(kind), data_inputs, _GRADIENTS[kind])


#: deepshap's own rules, which :func:`remove` puts back.
_BUILTIN: dict[str, OpRule] = dict(OP_RULES)


def current(op_type: str) -> OpRule | None:
    """The rule ``op_type`` has now (for :func:`restore`)."""
    return OP_RULES.get(op_type)


def restore(op_type: str, rule: OpRule) -> None:
    """Give ``op_type`` back a rule taken with :func:`current`."""
    OP_RULES[op_type] = rule


def remove(op_type: str) -> None:
    """Undo registrations for ``op_type``: deepshap's own rule, or none."""
    if op_type in _BUILTIN:
        OP_RULES[op_type] = _BUILTIN[op_type]
    else:
        OP_RULES.pop(op_type, None)


for _op, _kind, _data_inputs in pending_tensorflow():
    add(_op, _kind, data_inputs=_data_inputs)

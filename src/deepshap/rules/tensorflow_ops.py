"""Which TensorFlow op type gets which DeepLIFT/Shapley rule, as data (no TensorFlow import here).

The Keras backend (``deepshap.frameworks.keras.deep``) traces the model, finds every op that lies between
the explained inputs and the output, and looks its type up in :data:`OP_RULES`. An op type that is not
listed raises an error naming it: there is no silent fallback to plain gradients.

Rule kinds
----------
The framework-neutral kinds of :class:`deepshap.rules.Rule` (``LINEAR``, ``RESCALE``, ``SHAPLEY_PAIR``,
``BILINEAR``, ``MAX``, ``SOFTMAX``, ``SELECT`` for ``where``), and three structural kinds that only a graph of
TensorFlow ops needs:

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
``RESCALE`` and ``SHAPLEY_PAIR`` ops share one implementation: with a single data operand the two-player
split is the rescale rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepshap.rules import Rule

__all__ = ["DISCRETE", "IDENTITY", "OP_RULES", "OVERRIDDEN_KINDS", "SELECT", "SHAPE", "OpRule", "rule_for"]

SELECT = Rule.SELECT
IDENTITY = "identity"
SHAPE = "shape"
DISCRETE = "discrete"

LINEAR, RESCALE, SHAPLEY_PAIR, BILINEAR = Rule.LINEAR, Rule.RESCALE, Rule.SHAPLEY_PAIR, Rule.BILINEAR
MAX, SOFTMAX = Rule.MAX, Rule.SOFTMAX

#: Kinds whose gradient is replaced by a deepshap rule while tracing (the others keep their gradient).
OVERRIDDEN_KINDS = frozenset({RESCALE, SHAPLEY_PAIR, BILINEAR, MAX, SOFTMAX, SELECT, IDENTITY})


@dataclass(frozen=True)
class OpRule:
    """The rule of one op type.

    ``data_inputs``: the input positions that may carry data (``None``: any). A data-dependent tensor in
    another position (a convolution filter computed from the input, say) has no rule and raises.
    ``closed_form``: for ``RESCALE`` and ``SHAPLEY_PAIR`` ops, the name of an exact multiplier formula
    that needs no tiny-difference threshold (``"relu"``, ``"relu6"``, ``"div"``, ``"square"``,
    ``"squared_difference"``).
    """

    kind: str
    data_inputs: tuple[int, ...] | None = None
    closed_form: str | None = None


def _rules(kind: str, names: str, data_inputs: tuple[int, ...] | None = None) -> dict[str, OpRule]:
    return {name: OpRule(kind, data_inputs) for name in names.split()}


OP_RULES: dict[str, OpRule] = {
    # Linear and affine ops: their ordinary gradient is the DeepLIFT multiplier.
    **_rules(
        LINEAR,
        "Identity Snapshot EnsureShape CheckNumerics AddV2 Add AddN Sub Neg BiasAdd Sum Mean Squeeze "
        "ConcatV2 Concat Pack Unpack Cumsum Cast SpaceToDepth DepthToSpace",
    ),
    **_rules(
        LINEAR,
        "Reshape ExpandDims Transpose Slice StridedSlice Tile BroadcastTo Pad PadV2 MirrorPad GatherV2 "
        "ReverseV2 ResizeBilinear ResizeNearestNeighbor ResizeBicubic ResizeArea AvgPool AvgPool3D "
        "Conv2D Conv3D DepthwiseConv2dNative SpaceToBatchND BatchToSpaceND ExtractImagePatches "
        "FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3",
        (0,),
    ),
    "SplitV": OpRule(LINEAR, (0,)),
    "Split": OpRule(LINEAR, (1,)),
    "Conv2DBackpropInput": OpRule(LINEAR, (2,)),
    "Conv3DBackpropInputV2": OpRule(LINEAR, (2,)),
    # Elementwise nonlinearities of one data operand (the other inputs, if any, constant).
    **_rules(
        RESCALE,
        "LeakyRelu Elu Selu Softplus Softsign Sigmoid Tanh Exp Expm1 Log Log1p Sqrt Rsqrt "
        "Reciprocal Inv Abs Erf Erfc Sin Cos Atan Asinh ClipByValue",
        (0,),
    ),
    "Relu": OpRule(RESCALE, (0,), "relu"),
    "Relu6": OpRule(RESCALE, (0,), "relu6"),
    "Square": OpRule(RESCALE, (0,), "square"),
    # Elementwise functions of two operands: exact two-player Shapley split when both carry data.
    **_rules(SHAPLEY_PAIR, "Maximum Minimum Pow DivNoNan Atan2"),
    "RealDiv": OpRule(SHAPLEY_PAIR, None, "div"),
    "Div": OpRule(SHAPLEY_PAIR, None, "div"),
    "SquaredDifference": OpRule(SHAPLEY_PAIR, None, "squared_difference"),
    # Products of two data operands.
    **_rules(BILINEAR, "Mul MatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum"),
    # Max pooling and max/min reductions.
    **_rules(MAX, "MaxPool MaxPoolV2 MaxPool3D Max Min", (0,)),
    "Softmax": OpRule(SOFTMAX, (0,)),
    "LogSoftmax": OpRule(SOFTMAX, (0,)),
    "SelectV2": OpRule(SELECT),
    "Select": OpRule(SELECT),
    **_rules(IDENTITY, "StopGradient PreventGradient IdentityN"),
    **_rules(SHAPE, "Shape ShapeN Size Rank ZerosLike OnesLike BroadcastArgs BroadcastGradientArgs"),
    **_rules(
        DISCRETE,
        "Equal NotEqual Greater GreaterEqual Less LessEqual IsFinite IsNan IsInf LogicalAnd LogicalOr "
        "LogicalNot ArgMax ArgMin",
    ),
}


def rule_for(op_type: str) -> OpRule | None:
    """The rule of an op type, or ``None`` when deepshap has no rule for it."""
    return OP_RULES.get(op_type)

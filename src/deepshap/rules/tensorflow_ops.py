"""Which TensorFlow op type gets which DeepLIFT/Shapley rule, as data (no TensorFlow import here).

The Keras backend (``deepshap.frameworks.keras.deep``) traces the model, finds every op that lies between
the explained inputs and the output, and looks its type up in :data:`OP_RULES`. An op type that is not
listed raises an error naming it: there is no silent fallback to plain gradients.

Rule kinds
----------
``linear``
    The op is linear (or affine) in its data operands: its ordinary gradient is the exact multiplier.
``elementwise``
    An elementwise nonlinearity of one or two data operands (the other operands constant). One data
    operand: the rescale multiplier ``(y - y_ref) / (x - x_ref)``, the derivative at the midpoint where the
    difference is tiny. Two data operands: the exact two-player Shapley split of the change in output.
``bilinear``
    A product of two data operands (``Mul``, ``MatMul``, ``Einsum``...): the exact two-player Shapley split,
    which for a bilinear map is the ordinary gradient with the other operand at its midpoint
    ``(b + b_ref) / 2``. With one data operand this is the ordinary gradient.
``max``
    Max/min pooling and reductions: the change in output is routed to the winning input of each half and
    divided by that input's change, which keeps summation-to-delta.
``softmax`` / ``log_softmax``
    Rewritten into ``exp``, ``sum``, ``div`` (and ``log``) with a shift shared by input and reference,
    then explained by the rules above: an exact decomposition.
``select``
    ``where(c, t, e)``: linear in ``t`` and ``e``. A condition computed from the data must be the same for
    the input and the reference (checked when the attributions are computed).
``identity``
    A value identity whose TensorFlow gradient is zero or custom (``StopGradient``, the ``IdentityN`` of
    ``tf.custom_gradient``): the gradient passes through, so the ops that computed the value get their
    own rules (for example ``tf.nn.silu`` is explained through its ``Mul`` and ``Sigmoid``).
``shape``
    The output depends only on the shape of the data (``Shape``, ``ZerosLike``): it is not data.
``discrete``
    Integer or boolean output with no gradient (comparisons, ``ArgMax``): allowed only where such a value
    is used as the condition of a ``select`` rule or by other discrete ops.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BILINEAR",
    "DISCRETE",
    "ELEMENTWISE",
    "IDENTITY",
    "LINEAR",
    "LOG_SOFTMAX",
    "MAX",
    "OP_RULES",
    "OVERRIDDEN_KINDS",
    "SELECT",
    "SHAPE",
    "SOFTMAX",
    "OpRule",
    "rule_for",
]

LINEAR = "linear"
ELEMENTWISE = "elementwise"
BILINEAR = "bilinear"
MAX = "max"
SOFTMAX = "softmax"
LOG_SOFTMAX = "log_softmax"
SELECT = "select"
IDENTITY = "identity"
SHAPE = "shape"
DISCRETE = "discrete"

#: Kinds whose gradient is replaced by a deepshap rule while tracing (the others keep their gradient).
OVERRIDDEN_KINDS = frozenset({ELEMENTWISE, BILINEAR, MAX, SOFTMAX, LOG_SOFTMAX, SELECT, IDENTITY})


@dataclass(frozen=True)
class OpRule:
    """The rule of one op type.

    ``data_inputs``: the input positions that may carry data (``None``: any). A data-dependent tensor in
    another position (a convolution filter computed from the input, say) has no rule and raises.
    ``closed_form``: for ``elementwise`` ops, the name of an exact multiplier formula that avoids dividing
    by the difference to the reference (``"relu"``, ``"relu6"``, ``"div"``, ``"square"``,
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
        ELEMENTWISE,
        "LeakyRelu Elu Selu Softplus Softsign Sigmoid Tanh Exp Expm1 Log Log1p Sqrt Rsqrt "
        "Reciprocal Inv Abs Erf Erfc Sin Cos Atan Asinh ClipByValue",
        (0,),
    ),
    "Relu": OpRule(ELEMENTWISE, (0,), "relu"),
    "Relu6": OpRule(ELEMENTWISE, (0,), "relu6"),
    "Square": OpRule(ELEMENTWISE, (0,), "square"),
    # Elementwise functions of two operands: exact two-player Shapley split when both carry data.
    **_rules(ELEMENTWISE, "Maximum Minimum Pow DivNoNan Atan2"),
    "RealDiv": OpRule(ELEMENTWISE, None, "div"),
    "Div": OpRule(ELEMENTWISE, None, "div"),
    "SquaredDifference": OpRule(ELEMENTWISE, None, "squared_difference"),
    # Products of two data operands.
    **_rules(BILINEAR, "Mul MatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum"),
    # Max pooling and max/min reductions.
    **_rules(MAX, "MaxPool MaxPoolV2 MaxPool3D Max Min", (0,)),
    "Softmax": OpRule(SOFTMAX, (0,)),
    "LogSoftmax": OpRule(LOG_SOFTMAX, (0,)),
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

"""The TensorFlow registry's DeepLIFT/Shapley rules called directly, against their definitions.

Each test traces one op with the rule session on a (sample, reference) pair of small arrays and reads
the multipliers from ``tf.gradients``; they are compared with the rule's definition computed in float64
(:mod:`tests.helpers.rules`). Every op type of the registry must have a definition here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

tf = pytest.importorskip("tensorflow")

from deepshap.frameworks.keras.registry import OP_RULES  # noqa: E402
from deepshap.rules import Rule  # noqa: E402
from tests.helpers.rules import DTYPES, POSITIVE, UNIT, close, pair, secant, shapley, tf_rule, unit_pair  # noqa: E402

_TF_RESCALE: dict[str, Callable[[Any], Any]] = {
    "Relu": tf.nn.relu,
    "Relu6": tf.nn.relu6,
    "LeakyRelu": tf.nn.leaky_relu,
    "Elu": tf.nn.elu,
    "Selu": tf.nn.selu,
    "Softplus": tf.nn.softplus,
    "Softsign": tf.nn.softsign,
    "Sigmoid": tf.sigmoid,
    "Tanh": tf.tanh,
    "Exp": tf.exp,
    "Expm1": tf.math.expm1,
    "Log": tf.math.log,
    "Log1p": tf.math.log1p,
    "Sqrt": tf.sqrt,
    "Rsqrt": tf.math.rsqrt,
    "Reciprocal": tf.math.reciprocal,
    "Inv": lambda t: tf.raw_ops.Inv(x=t),
    "Abs": tf.abs,
    "Erf": tf.math.erf,
    "Erfc": tf.math.erfc,
    "Sin": tf.sin,
    "Cos": tf.cos,
    "Atan": tf.atan,
    "Sinh": tf.sinh,
    "Cosh": tf.cosh,
    "Asin": tf.asin,
    "Acos": tf.acos,
    "Asinh": tf.asinh,
    "ClipByValue": lambda t: tf.clip_by_value(t, -0.5, 0.5),
    "Square": tf.square,
}


def test_every_tensorflow_rescale_op_has_a_definition_here() -> None:
    assert {k for k, v in OP_RULES.items() if v.kind is Rule.RESCALE} == set(_TF_RESCALE)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("op_type", sorted(_TF_RESCALE))
def test_tensorflow_rescale_is_the_secant(op_type: str, dtype: Any) -> None:
    fn = _TF_RESCALE[op_type]
    x, r = unit_pair((3, 5)) if op_type in UNIT else pair((3, 5), positive=op_type in POSITIVE)
    _, (m,) = tf_rule(fn, [x], [r], dtype)
    close(m, secant(lambda a: fn(tf.constant(a, tf.float64)).numpy(), x, r), dtype)


_TF_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Maximum": tf.maximum,
    "Minimum": tf.minimum,
    "Pow": tf.pow,
    "DivNoNan": tf.math.divide_no_nan,
    "Atan2": tf.atan2,
    "Xlogy": tf.math.xlogy,
    "RealDiv": tf.math.truediv,
    "Div": lambda a, b: tf.raw_ops.Div(x=a, y=b),
    "SquaredDifference": tf.math.squared_difference,
    "Mul": tf.multiply,
}


def test_every_tensorflow_binary_op_has_a_definition_here() -> None:
    pairs = {k for k, v in OP_RULES.items() if v.kind is Rule.SHAPLEY_PAIR}
    assert pairs | {"Mul"} == set(_TF_BINARY)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("op_type", sorted(_TF_BINARY))
def test_tensorflow_binary_rules_are_two_player_shapley_values(op_type: str, dtype: Any) -> None:
    fn = _TF_BINARY[op_type]
    a, b = pair((2, 4), positive=True), pair((2, 4), positive=True)
    _, (m_a, m_b) = tf_rule(fn, [a[0], b[0]], [a[1], b[1]], dtype)
    phi_a, phi_b = shapley(lambda u, v: fn(tf.constant(u), tf.constant(v)).numpy(), a, b)
    close(m_a * (a[0] - a[1]), phi_a, dtype)
    close(m_b * (b[0] - b[1]), phi_b, dtype)

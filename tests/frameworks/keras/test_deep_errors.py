"""What the Keras backend refuses, by name, leaving nothing behind: unsupported ops, recurrent layers,
nonlinear nested tf.functions and bad arguments; no overridden gradient outlives a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.keras_deep import (  # noqa: E402
    attribute,
    graph_gradients,
    leaky_relu_model,
    relu6_model,
    sequential_model,
)


def _model_gradients(model: Any, X: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(model(x, training=False))
    return np.asarray(tape.gradient(out, x))


@pytest.mark.parametrize(
    ("op", "expression"),
    [
        ("Floor", lambda z: __import__("keras").ops.floor(z)),
        ("boolean", lambda z: z * __import__("keras").ops.cast(z > 0, "float32")),
    ],
)
def test_unsupported_op_raises_by_name_and_leaves_nothing_patched(op: str, expression: Callable) -> None:
    from keras import layers as L

    from deepshap.frameworks.keras import deep_rules

    bad = sequential_model((6,), L.Dense(8, activation="relu"), L.Lambda(expression), L.Dense(3))
    good = relu6_model()
    X, background = rng_data((2, 6), seed=21), rng_data((4, 6), seed=22)
    before = (_model_gradients(good, X), graph_gradients(good, X), graph_gradients(bad, X))
    with pytest.raises(deep_rules.UnsupportedOperationError, match=op):
        attribute(bad, background, X)
    assert deep_rules._ACTIVE.get() is None
    after = (_model_gradients(good, X), graph_gradients(good, X), graph_gradients(bad, X))
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    attribute(good, background, X)  # a successful call afterwards, then the same check
    assert deep_rules._ACTIVE.get() is None
    np.testing.assert_array_equal(graph_gradients(good, X), before[1])


def test_recurrent_layer_raises_naming_its_op() -> None:
    from keras import layers as L

    from deepshap.frameworks.keras.deep import UnsupportedOperationError

    model = sequential_model((4, 3), L.LSTM(3), L.Dense(2))
    named = "op type '(TensorList|While).*deepshap.rules.register"
    with pytest.raises(UnsupportedOperationError, match=named):
        attribute(model, rng_data((3, 4, 3)), rng_data((1, 4, 3)))


def test_rule_gradient_outside_a_trace_raises() -> None:
    import tensorflow as tf

    from deepshap.frameworks.keras import deep_rules

    @tf.function
    def stray(x: Any) -> Any:
        graph = tf.compat.v1.get_default_graph()
        with graph.gradient_override_map({"Relu": deep_rules.RULE_GRADIENT}):
            y = tf.nn.relu(x)
        return tf.gradients(y, x)[0]

    with pytest.raises(RuntimeError, match="no DeepExplainer trace is active"):
        stray(tf.constant([1.0, -1.0]))


def test_bad_arguments_raise_clear_errors() -> None:
    from deepshap.frameworks import load_adapter
    from deepshap.frameworks.keras.deep import deep_attributions

    adapter = load_adapter(leaky_relu_model(), rng_data((4, 6)))
    inputs = adapter.to_inputs(rng_data((2, 6)))
    with pytest.raises(ValueError, match="batch_size"):
        deep_attributions(adapter, inputs, np.zeros((2, 1), dtype=np.int64), 0)
    with pytest.raises(ValueError, match="output_index"):
        deep_attributions(adapter, inputs, np.zeros((3, 1), dtype=np.int64), 8)


def test_a_nonlinear_nested_tf_function_call_names_the_op_inside() -> None:
    """A layer whose call is a tf.function computing a nonlinearity cannot pass through with its plain
    gradient: the error names the call and the op inside it."""
    import keras
    import tensorflow as tf
    from keras import layers as L

    from deepshap.frameworks.keras import deep_rules

    class CompiledTanh(L.Layer):
        def call(self, x: Any) -> Any:
            return tf.function(tf.math.tanh)(x)

    model = sequential_model((6,), L.Dense(4), CompiledTanh(), L.Dense(2))
    assert isinstance(model, keras.Model)
    with pytest.raises(deep_rules.UnsupportedOperationError, match="nested tf.function call.*'Tanh'"):
        attribute(model, rng_data((3, 6), seed=36), rng_data((2, 6), seed=37))

"""DeepExplainer's Keras 3 / TensorFlow backend on architectures: summation-to-delta (the attributions
sum to f(x) - mean f(background)) on modern layers, several inputs, nested models and grouped convolutions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.keras_deep import (  # noqa: E402
    RTOL,
    activation_model,
    additivity_error,
    attention_model,
    attribute,
    batchnorm_model,
    conv_transpose_model,
    depthwise_model,
    functional_model,
    groupnorm_model,
    layernorm_model,
    leaky_relu_model,
    maxpool_cnn,
    multiply_model,
    overlapping_pool_model,
    relu6_model,
    residual_concat_model,
    sequential_model,
    softmax_model,
    upsampling_model,
)

ARCHITECTURES = {
    "batchnorm": batchnorm_model,
    "leaky_relu": leaky_relu_model,
    "relu_max_value_6": relu6_model,
    "depthwise_conv": depthwise_model,
    "gelu": activation_model("gelu"),
    "gelu_tanh": activation_model("gelu_tanh"),
    "swish": activation_model("swish"),
    "multiply_branches": multiply_model,
    "upsampling": upsampling_model,
    "conv_transpose": conv_transpose_model,
    "multi_head_attention": attention_model,
    "layer_norm": layernorm_model,
    "group_norm": groupnorm_model,
    "add_residual_concat": residual_concat_model,
    "softmax": softmax_model,
    "maxpool_cnn": maxpool_cnn,
    "maxpool_overlapping_same": overlapping_pool_model,
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_additivity_on_modern_architectures(name: str) -> None:
    model = ARCHITECTURES[name]()
    shape = tuple(model.inputs[0].shape[1:])
    phi, fx, fb, index = attribute(model, rng_data((6, *shape), seed=1), rng_data((3, *shape), seed=2))
    assert phi[0].shape == (3, *shape, index.shape[1])
    assert additivity_error(phi, fx, fb, index) <= RTOL


def test_two_input_model_is_additive() -> None:
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    a, b = keras.Input((5,)), keras.Input((3, 2))
    h = L.Multiply()([L.Dense(4, activation="swish")(a), L.Dense(4)(L.Flatten()(b))])
    model = keras.Model([a, b], L.Dense(2, activation="softmax")(h))
    background = [rng_data((4, 5), seed=17), rng_data((4, 3, 2), seed=18)]
    X = [rng_data((2, 5), seed=19), rng_data((2, 3, 2), seed=20)]
    phi, fx, fb, index = attribute(model, background, X)
    assert [p.shape for p in phi] == [(2, 5, 2), (2, 3, 2, 2)]
    assert additivity_error(phi, fx, fb, index) <= RTOL


def _more_layers(name: str) -> Any:
    import keras
    from keras import layers as L

    def branches(x: Any) -> Any:
        pairs = [(L.Dense(3)(x), L.Dense(3)(x)) for _ in range(4)]
        merged = [L.Maximum()(list(pairs[0])), L.Minimum()(list(pairs[1])), L.Dot(axes=1)(list(pairs[2]))]
        return L.Dense(2)(L.Concatenate()([*merged, L.Subtract()(list(pairs[3]))]))

    inner = sequential_model((6,), L.Dense(5, activation="relu"), L.Dense(4, activation="elu"), seed=1)
    bodies = {
        "min_max_dot_subtract": ((6,), branches),
        "logsumexp": ((6,), lambda x: L.Lambda(lambda z: keras.ops.logsumexp(z, axis=-1))(L.Dense(4)(x))),
        "causal_attention": (
            (5, 4),
            lambda x: L.Dense(2)(L.Flatten()(L.MultiHeadAttention(2, 2)(x, x, use_causal_mask=True))),
        ),
        "nested_model": ((6,), lambda x: L.Dense(2)(inner(x))),
        "mish_hard_silu": ((6,), lambda x: L.Dense(2)(L.Activation("hard_silu")(L.Activation("mish")(x)))),
        "dilated_separable": (
            (9, 9, 1),
            lambda x: L.Dense(2)(
                L.Flatten()(L.SeparableConv2D(2, 3, dilation_rate=2, activation="hard_sigmoid")(x))
            ),
        ),
    }
    shape, body = bodies[name]
    return functional_model(shape, body)


@pytest.mark.parametrize(
    "name",
    [
        "min_max_dot_subtract",
        "logsumexp",
        "causal_attention",
        "nested_model",
        "mish_hard_silu",
        "dilated_separable",
    ],
)
def test_additivity_on_more_layers(name: str) -> None:
    model = _more_layers(name)
    shape = tuple(model.inputs[0].shape[1:])
    phi, fx, fb, index = attribute(model, rng_data((5, *shape), seed=27), rng_data((2, *shape), seed=28))
    assert additivity_error(phi, fx, fb, index) <= RTOL


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_convolutions_are_exactly_additive(groups: int) -> None:
    """Keras runs a grouped Conv2D (ConvNeXt's depthwise 7x7) as a nested XLA-compiled tf.function: one
    call op the rule overrides cannot reach. Its body is linear, so its ordinary gradient is the exact
    multiplier, and the ReLU after it still gets its rule (a plain gradient would break additivity)."""
    from keras import layers as L

    model = sequential_model((8, 8, 4), L.Conv2D(4, 3, groups=groups), L.ReLU(), L.Flatten(), L.Dense(2))
    phi, fx, fb, index = attribute(model, rng_data((5, 8, 8, 4), seed=36), rng_data((3, 8, 8, 4), seed=37))
    assert np.abs(fx - fb).max() > 1e-2
    assert additivity_error(phi, fx, fb, index) < RTOL

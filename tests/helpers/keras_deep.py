"""What the Keras DeepExplainer tests share: the backend called directly with its additivity measured,
gradients of a fresh trace, and small seeded models.

keras and TensorFlow are imported inside the functions, so importing this module needs neither."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

RTOL = 1e-4


def attribute(model: Any, background: Any, X: Any, batch_size: int = 64, index: Any = None) -> tuple:
    """(phi per input, f(x), mean f(background), output_index) through the backend."""
    from deepshap.frameworks import load_adapter
    from deepshap.frameworks.keras.deep import deep_attributions

    adapter = load_adapter(model, background)
    inputs = adapter.explained_inputs(adapter.to_inputs(X))
    n = int(inputs[0].shape[0])
    if index is None:
        index = np.tile(np.arange(adapter.n_outputs, dtype=np.int64), (n, 1))
    phi = deep_attributions(adapter, inputs, index, batch_size)
    fx = np.asarray(adapter.forward(inputs), dtype=np.float64)
    fb = np.asarray(adapter.forward(adapter.background), dtype=np.float64).mean(0)
    return phi, fx, fb, index


def additivity_error(phi: list[np.ndarray], fx: np.ndarray, fb: np.ndarray, index: np.ndarray) -> float:
    """Largest |sum phi - (f(x) - E f(bg))| relative to the largest |f(x) - E f(bg)|."""
    n, r = index.shape
    total = sum(p.reshape(n, -1, r).astype(np.float64).sum(1) for p in phi)
    target = np.take_along_axis(fx - fb, index, axis=1)
    return float(np.abs(total - target).max() / max(np.abs(target).max(), 1e-12))


def sequential_model(shape: tuple[int, ...], *layer_list: Any, seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), *layer_list])


def functional_model(shape: tuple[int, ...], body: Callable[[Any], Any], seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    return keras.Model(inputs, body(inputs))


def batchnorm_model() -> Any:
    from keras import layers as L

    model = sequential_model(
        (6, 6, 2), L.Conv2D(4, 3), L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(3)
    )
    bn = model.layers[1]  # non-trivial moving statistics, as after training
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.2, mean + 0.3, var * 2.0])
    return model


def leaky_relu_model() -> Any:
    from keras import layers as L

    return sequential_model((6,), L.Dense(8), L.LeakyReLU(negative_slope=0.1), L.Dense(3))


def relu6_model() -> Any:
    from keras import layers as L

    return sequential_model((6,), L.Dense(8), L.ReLU(max_value=6.0), L.Dense(3))


def depthwise_model() -> Any:
    from keras import layers as L

    return sequential_model(
        (6, 6, 2), L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"), L.Flatten(), L.Dense(3)
    )


def activation_model(name: str) -> Callable[[], Any]:
    def build() -> Any:
        import keras
        from keras import layers as L

        act = {"gelu_tanh": lambda x: keras.activations.gelu(x, approximate=True)}.get(name, name)
        return sequential_model((6,), L.Dense(8), L.Activation(act), L.Dense(3))

    return build


def multiply_model() -> Any:
    from keras import layers as L

    return functional_model(
        (6,), lambda x: L.Dense(3)(L.Multiply()([L.Dense(5)(x), L.Dense(5, activation="tanh")(x)]))
    )


def upsampling_model() -> Any:
    from keras import layers as L

    return sequential_model(
        (3, 3, 2),
        L.UpSampling2D(),
        L.Conv2D(2, 2, activation="relu"),
        L.UpSampling2D(interpolation="bilinear"),
        L.Flatten(),
        L.Dense(3),
    )


def conv_transpose_model() -> Any:
    from keras import layers as L

    return sequential_model(
        (4, 4, 2), L.Conv2DTranspose(3, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(3)
    )


def attention_model() -> Any:
    from keras import layers as L

    def body(x: Any) -> Any:
        h = L.Dense(8)(x)
        h = L.LayerNormalization()(h + L.MultiHeadAttention(num_heads=2, key_dim=4)(h, h))
        h = L.Dense(8, activation="gelu")(h)
        return L.Dense(3)(L.Flatten()(h))

    return functional_model((5, 4), body)


def layernorm_model() -> Any:
    from keras import layers as L

    return sequential_model((6,), L.Dense(8), L.LayerNormalization(), L.Dense(3))


def groupnorm_model() -> Any:
    from keras import layers as L

    return sequential_model((4, 4, 4), L.GroupNormalization(groups=2), L.Flatten(), L.Dense(3))


def residual_concat_model() -> Any:
    from keras import layers as L

    def body(x: Any) -> Any:
        h = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        h = L.Add()([h, L.Conv2D(4, 3, padding="same")(h)])
        h = L.ReLU()(h)
        h = L.Concatenate()([h, L.Conv2D(2, 1, activation="relu")(x)])
        return L.Dense(3)(L.Flatten()(h))

    return functional_model((5, 5, 2), body)


def softmax_model() -> Any:
    from keras import layers as L

    return sequential_model((6,), L.Dense(8, activation="relu"), L.Dense(4, activation="softmax"))


def maxpool_cnn(output_activation: str | None = None) -> Any:
    from keras import layers as L

    return sequential_model(
        (10, 10, 1),
        L.Conv2D(4, 3, activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(6, 3, activation="relu"),
        L.Flatten(),
        L.Dense(8, activation="relu"),
        L.Dense(3, activation=output_activation),
    )


def overlapping_pool_model() -> Any:
    from keras import layers as L

    return sequential_model(
        (7, 7, 2),
        L.Conv2D(3, 2, padding="same", activation="relu"),
        L.MaxPooling2D(3, strides=2, padding="same"),
        L.MaxPooling2D(2, strides=1),
        L.Flatten(),
        L.Dense(3),
    )


def graph_gradients(model: Any, X: np.ndarray) -> np.ndarray:
    """Gradients from a fresh traced function (where a leaked override map or registry entry would show)."""
    import tensorflow as tf

    @tf.function
    def grads(x: Any) -> Any:
        return tf.gradients(tf.reduce_sum(model(x, training=False)), x)[0]

    return np.asarray(grads(tf.constant(X)))

"""Small seeded Keras 3 models shared by the tests, the counterparts of :mod:`tests.helpers.torch_models`.

Every builder takes a ``seed`` so results are reproducible. keras is imported inside each builder with
``pytest.importorskip``: importing this module needs no TensorFlow, and a test that builds a model skips
where keras is not installed.
"""

from __future__ import annotations

from typing import Any

import pytest


def keras_linear(n_features: int = 6, n_outputs: int = 3, seed: int = 0) -> Any:
    """A Sequential ``Dense`` layer (no activation)."""
    keras = pytest.importorskip("keras")

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_outputs)])


def keras_mlp(n_features: int = 6, n_outputs: int = 3, hidden: int = 16, seed: int = 0) -> Any:
    """A small nonlinear Sequential MLP."""
    keras = pytest.importorskip("keras")
    from keras import layers

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            layers.Dense(hidden, activation="tanh"),
            layers.Dense(hidden, activation="softplus"),
            layers.Dropout(0.5),
            layers.Dense(n_outputs),
        ]
    )


def keras_two_input(n_a: int = 5, n_b: int = 4, n_outputs: int = 3, seed: int = 0) -> Any:
    """A functional model with two flat inputs mixed nonlinearly."""
    keras = pytest.importorskip("keras")
    from keras import layers

    keras.utils.set_random_seed(seed)
    a, b = keras.Input((n_a,)), keras.Input((n_b,))
    mixed = layers.Multiply()(
        [layers.Dense(8, activation="tanh")(a), layers.Dense(8, activation="sigmoid")(b)]
    )
    return keras.Model([a, b], layers.Dense(n_outputs)(mixed))


def keras_cnn(n_outputs: int = 4, seed: int = 0) -> Any:
    """A tiny functional CNN on (8, 8, 1) images; ``layers[2]`` is the second conv."""
    keras = pytest.importorskip("keras")
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    h = layers.Conv2D(4, 3, padding="same", activation="softplus")(h)
    out = layers.Dense(n_outputs)(layers.Flatten()(h))
    return keras.Model(inputs, out)

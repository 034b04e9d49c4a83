"""DeepExplainer (Keras 3 / TensorFlow) against its floor and shap.DeepExplainer.

Case: the seed-002 MNIST CNN (conv-relu-maxpool twice, dropout, dense softmax) in Keras, 100 background
rows, 5 images, all 10 outputs. The floor is the bare work any DeepSHAP needs: one forward pass over the
500 (sample, background) pairs and one vector-Jacobian product per output, in one compiled
``tf.function``. deepshap is timed as users call it (``shap_values`` with the additivity check on).

Run with ``python benchmarks/run.py -k deep_keras``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Case, mnist_digits  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

N_BACKGROUND, N_SAMPLES, N_OUTPUTS = 100, 5, 10


def seed_cnn() -> Any:
    """The Keras model of seed 002 (untrained: the timings do not depend on the weights)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(N_OUTPUTS, activation="softmax"),
        ]
    )


def _setup() -> tuple[Any, np.ndarray, np.ndarray]:
    return seed_cnn(), mnist_digits(N_BACKGROUND, 0)[..., None], mnist_digits(N_SAMPLES, 1)[..., None]


def run_deepshap() -> Callable[[], Any]:
    import deepshap

    model, bg, X = _setup()
    explainer = deepshap.DeepExplainer(model, bg, batch_size=N_BACKGROUND * N_SAMPLES)
    return lambda: explainer.shap_values(X)


def run_floor() -> Callable[[], Any]:
    """One forward over the pairs and one VJP per output, compiled, results fetched to the host."""
    import tensorflow as tf

    model, bg, X = _setup()
    pairs = tf.constant(np.repeat(X, N_BACKGROUND, axis=0))

    @tf.function
    def vjps(x: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            out = model(x, training=False)
            columns = [tf.reduce_sum(out[:, k]) for k in range(N_OUTPUTS)]
        return [tape.gradient(c, x) for c in columns]

    return lambda: [g.numpy() for g in vjps(pairs)]


def run_shap() -> Callable[[], Any]:
    import shap

    model, bg, X = _setup()
    explainer = shap.DeepExplainer(model, bg)
    return lambda: explainer.shap_values(X, check_additivity=False)


def cases() -> list[Any]:
    """The benchmark cases for the shared harness."""
    return [
        Case(
            name="deep_keras_seed002_cnn",
            deepshap=run_deepshap(),
            floor=run_floor(),
            shap=run_shap(),
            repeats=3,
            note=f"seed-002 Keras CNN, {N_BACKGROUND} background, {N_SAMPLES} images, {N_OUTPUTS} outputs; "
            "floor = 1 forward + 1 VJP per output over the pairs (tf.function); target <= 1.3x floor",
        )
    ]

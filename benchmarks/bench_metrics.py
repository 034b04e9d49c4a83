"""deepshap.metrics' permutation estimate of region Shapley values against its floor.

Case: the seed-002 MNIST CNN (PyTorch, and the same network in Keras), one digit, 8 background rows,
49 blocks of 4x4 pixels, 20 antithetic permutations, batches of 256 images. The floor is the bare work
the estimate cannot avoid: forward passes over as many images as it evaluates (8 rows x (2 + 20 x 48)
coalitions = 7696), built beforehand, in batches of 256. ds/floor near 1 means the sampling, the
composition of images on the framework's tensors and the bookkeeping cost next to nothing.

Run with ``python benchmarks/run.py -k metrics``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deep_torch import seed_cnn  # noqa: E402
from harness import Case, mnist_digits  # noqa: E402

N_BACKGROUND, PERMUTATIONS, BATCH, BLOCK = 8, 20, 256, 4


def _evaluations() -> int:
    blocks = (28 // BLOCK) ** 2
    return N_BACKGROUND * (2 + PERMUTATIONS * (blocks - 1))


def _digits(channels_last: bool) -> tuple[np.ndarray, np.ndarray]:
    axis = -1 if channels_last else 1
    return (
        np.expand_dims(mnist_digits(1, 1), axis),
        np.expand_dims(mnist_digits(N_BACKGROUND, 0), axis),
    )


def keras_cnn() -> Any:
    """Seed 002's Keras CNN (untrained weights: speed does not depend on them)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def run_estimate(model: Any, channels_last: bool) -> Callable[[], Any]:
    from deepshap import metrics

    x, background = _digits(channels_last)
    regions = metrics.grid(x.shape[1:], BLOCK)
    return lambda: metrics.shapley_values(
        model, x, background, regions, max_permutations=PERMUTATIONS, batch_size=BATCH, progress=False
    )


def torch_floor(model: Any) -> Callable[[], Any]:
    import torch

    images = torch.rand(_evaluations(), 1, 28, 28)

    def work() -> None:
        with torch.no_grad():
            for batch in images.split(BATCH):
                model(batch).numpy()

    return work


def keras_floor(model: Any) -> Callable[[], Any]:
    import tensorflow as tf

    images = tf.random.uniform((_evaluations(), 28, 28, 1))

    def work() -> None:
        for start in range(0, _evaluations(), BATCH):
            np.asarray(model(images[start : start + BATCH], training=False))

    return work


def cases() -> list[Case]:
    torch_model, keras_model = seed_cnn(), keras_cnn()
    note = f"{_evaluations()} images, batches of {BATCH}"
    torch_case = Case("metrics_permutation_torch", run_estimate(torch_model, False), torch_floor(torch_model))
    keras_case = Case("metrics_permutation_keras", run_estimate(keras_model, True), keras_floor(keras_model))
    torch_case.note = keras_case.note = note
    return [torch_case, keras_case]

"""Small seeded models for the job tests, each also an entry point ``tests.helpers.jobs_models:NAME``
that the ``deepshap explain`` CLI, a job or a Ray worker loads by name (see :func:`entry_point`)."""

from __future__ import annotations

from typing import Any

import numpy as np


def entry_point(name: str) -> str:
    """``MODULE:FUNCTION`` of the builder ``name`` here, as ``--model`` and ``explain_dataset`` take it.

    A child process finds the module when the repository root is on its ``PYTHONPATH``
    (:func:`tests.helpers.paths.child_environment`).
    """
    return f"{__name__}:{name}"


def tiny_cnn() -> Any:
    """A torch CNN of 1x8x8 images (NCHW) with 3 outputs."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 3)
    ).eval()


def tiny_cnn_rgb() -> Any:
    """A torch CNN of 3x8x8 images (NCHW) with 4 outputs."""
    import torch
    from torch import nn

    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 4)).eval()


def tiny_keras() -> Any:
    """A Keras CNN of 8x8x1 images (NHWC) with 3 outputs."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )


def scores_of_images(images: np.ndarray) -> np.ndarray:
    """A plain numpy model for the Partition explainer: linear scores of NHWC images, 3 outputs."""
    weights = np.random.default_rng(0).standard_normal((int(np.prod(images.shape[1:])), 3))
    return images.reshape(len(images), -1) @ weights


def numpy_scorer() -> Any:
    return scores_of_images


def digits(n: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` random 1x8x8 float32 images."""
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


def _slow_identity(images: np.ndarray) -> np.ndarray:
    import time

    time.sleep(0.15)
    return images


def slow_tiny_cnn() -> Any:
    """``tiny_cnn`` with a preprocessing step that sleeps, so a test can stop the job half-way."""
    return tiny_cnn(), _slow_identity


def _blank_rows(x: Any) -> Any:
    return x.flatten(1).abs().sum(1) == 0


def nan_on_blank() -> Any:
    """``tiny_cnn`` whose scores are NaN for an all-black image (a silently failing image)."""
    import torch

    class NanOnBlank(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny_cnn()

        def forward(self, x: Any) -> Any:
            out = self.inner(x)
            return torch.where(_blank_rows(x)[:, None], torch.full_like(out, float("nan")), out)

    return NanOnBlank().eval()


def raises_on_blank() -> Any:
    """``tiny_cnn`` that raises for a batch holding an all-black image (one bad image)."""
    import torch

    class RaisesOnBlank(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny_cnn()

        def forward(self, x: Any) -> Any:
            if bool(_blank_rows(x).any()):
                raise ValueError("a blank image")
            return self.inner(x)

    return RaisesOnBlank().eval()


def from_checkpoint() -> Any:
    """``tiny_cnn`` with the weights of the ``.npz`` file named by ``DEEPSHAP_TEST_CHECKPOINT``: the
    module stays the same when the checkpoint changes."""
    import os

    import torch

    model = tiny_cnn()
    with np.load(os.environ["DEEPSHAP_TEST_CHECKPOINT"]) as saved:
        model.load_state_dict({name: torch.from_numpy(saved[name]) for name in saved.files})
    return model.eval()


BUILDS = {"counted_tiny_cnn": 0}


def counted_tiny_cnn() -> Any:
    """``tiny_cnn``, counting how often it is built."""
    BUILDS["counted_tiny_cnn"] += 1
    return tiny_cnn()

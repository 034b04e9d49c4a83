"""DeepExplainer (PyTorch) against its floor, shap.DeepExplainer and Captum's DeepLiftShap.

Case: the seed-002 MNIST CNN (conv-relu-maxpool twice, dropout, dense, softmax) in PyTorch, 100 background
rows, 5 images, all 10 outputs. The floor is the bare work any DeepSHAP needs: one forward pass over the
500 (sample, background) pairs and one vector-Jacobian product per output, in plain autograd.

Run with ``python benchmarks/run.py -k deep_torch``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Case, mnist_digits  # noqa: E402

N_BACKGROUND, N_SAMPLES, N_OUTPUTS = 100, 5, 10


def seed_cnn() -> Any:
    """The Keras model of seed 002, written in PyTorch (NCHW), in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(1600, N_OUTPUTS),
        nn.Softmax(dim=1),
    ).eval()


def _setup() -> tuple[Any, Any, Any]:
    import torch

    return (
        seed_cnn(),
        torch.from_numpy(mnist_digits(N_BACKGROUND, 0)[:, None]),
        torch.from_numpy(mnist_digits(N_SAMPLES, 1)[:, None]),
    )


def run_deepshap() -> Callable[[], Any]:
    import deepshap

    model, bg, X = _setup()
    explainer = deepshap.DeepExplainer(model, bg, batch_size=N_BACKGROUND * N_SAMPLES)
    return lambda: explainer.shap_values(X)


def run_floor() -> Callable[[], Any]:
    """One forward over the pairs and one VJP per output, with the parameters out of the graph."""
    import torch

    model, bg, X = _setup()
    for p in model.parameters():
        p.requires_grad_(False)
    pairs = X.repeat_interleave(N_BACKGROUND, dim=0)

    def floor() -> list[Any]:
        leaf = pairs.clone().requires_grad_(True)
        out = model(leaf)
        last = N_OUTPUTS - 1
        return [torch.autograd.grad(out[:, k].sum(), leaf, retain_graph=k < last)[0] for k in range(last + 1)]

    return floor


def run_shap() -> Callable[[], Any]:
    import shap

    model, bg, X = _setup()
    explainer = shap.DeepExplainer(model, bg)
    return lambda: explainer.shap_values(X, check_additivity=False)


def run_captum() -> Callable[[], Any]:
    from captum.attr import DeepLiftShap

    model, bg, X = _setup()
    method = DeepLiftShap(model)
    return lambda: [method.attribute(X, baselines=bg, target=k) for k in range(N_OUTPUTS)]


def cases() -> list[Any]:
    """The benchmark cases for the shared harness (set-up done here; each callable does the work once)."""
    return [
        Case(
            name="deep_torch_seed002_cnn",
            deepshap=run_deepshap(),
            floor=run_floor(),
            shap=run_shap(),
            captum=run_captum(),
            repeats=3,
            note=f"seed-002 CNN, {N_BACKGROUND} background, {N_SAMPLES} images, {N_OUTPUTS} outputs; "
            "floor = 1 forward + 1 VJP per output over the pairs; target <= 1.3x floor",
        )
    ]

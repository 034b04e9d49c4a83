"""Small seeded PyTorch models shared by the tests, small enough for 2 CPU cores.

Every builder takes a ``seed`` so results are reproducible and returns the model in eval mode. torch is
imported inside each builder with ``pytest.importorskip``: importing this module needs no torch, and a
test that builds a model skips where torch is not installed.
"""

from __future__ import annotations

from typing import Any

import pytest


def torch_linear(n_features: int = 6, n_outputs: int = 3, seed: int = 0) -> Any:
    """``y = x W^T + b`` on flat inputs."""
    torch = pytest.importorskip("torch")

    torch.manual_seed(seed)
    return torch.nn.Linear(n_features, n_outputs).eval()


def torch_mlp(n_features: int = 6, n_outputs: int = 3, hidden: int = 16, seed: int = 0) -> Any:
    """A small nonlinear MLP (tanh, softplus) with a smooth output."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.Softplus(),
        nn.Linear(hidden, n_outputs),
    ).eval()


def torch_two_input(n_a: int = 5, n_b: int = 4, n_outputs: int = 3, seed: int = 0) -> Any:
    """``forward(a, b)``: two flat inputs mixed nonlinearly."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class TwoInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fa = nn.Linear(n_a, 8)
            self.fb = nn.Linear(n_b, 8)
            self.head = nn.Linear(8, n_outputs)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.head(torch.tanh(self.fa(a)) * torch.sigmoid(self.fb(b)))

    torch.manual_seed(seed)
    return TwoInput().eval()


def torch_cnn(n_outputs: int = 4, seed: int = 0) -> Any:
    """A tiny CNN on (1, 8, 8) images; ``model[2]`` is the second conv, a good intermediate layer."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Softplus(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, n_outputs),
    ).eval()


def torch_ignores_input(n_features: int = 4) -> Any:
    """A model whose output does not depend on its input (a learned constant)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 2)

    return Constant().eval()

"""What the PyTorch DeepExplainer tests share: seeded tensors, an additivity check and small models.

This module imports torch: import it after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import deepshap

#: The additivity tolerance, relative to the outputs' size (DeepExplainer's own).
RTOL = 1e-4


def tensor_data(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Standard-normal float32 data of ``shape``."""
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def model_outputs(model: nn.Module, inputs: list[torch.Tensor]) -> np.ndarray:
    """The model's outputs, flattened to ``(N, K)`` float64."""
    with torch.no_grad():
        out = model(*inputs)
    out = out.reshape(out.shape[0], -1)
    return out.double().numpy()


def additive_values(model: nn.Module, bg, X, batch_size: int = 256, **kwargs) -> list[np.ndarray]:
    """Explain X against bg and assert additivity for every output; return per-input (N, *shape, K)."""
    torch.manual_seed(0)
    model = model.eval()
    explainer = deepshap.DeepExplainer(model, bg, batch_size=batch_size)
    explanation = explainer(X, check_additivity=False, **kwargs)
    explanations = explanation if isinstance(explanation, list) else [explanation]
    inputs = X if isinstance(X, list) else [X]
    backgrounds = bg if isinstance(bg, list) else [bg]
    fx = model_outputs(model, inputs)
    efb = model_outputs(model, backgrounds).mean(0)
    values = [np.asarray(e.values, dtype=np.float64) for e in explanations]
    if values[0].ndim == inputs[0].dim():  # single output: no trailing axis
        values = [v[..., None] for v in values]
    total = sum(v.reshape(v.shape[0], -1, v.shape[-1]).sum(1) for v in values)
    target = fx - efb
    scale = np.maximum(np.abs(fx), np.abs(efb))
    scale = scale + scale.mean()
    assert np.all(np.abs(total - target) <= RTOL * scale), np.abs(total - target).max()
    assert np.abs(total).max() > 1e-6, "the test model gives no signal"
    return values


class ReusedNet(nn.Module):
    """One nn.ReLU and one nn.MaxPool2d (overlapping windows) used several times."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = (
            nn.Conv2d(1, 4, 3, padding=1),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.Conv2d(4, 4, 1),
        )
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.c1(x)))
        x = self.pool(self.relu(self.c2(x)))
        x = self.pool(self.relu(self.c3(x)))
        return self.fc(x.flatten(1))


def mlp_with(activation: nn.Module, n_in: int = 6, n_out: int = 3) -> nn.Module:
    """A seeded three-layer MLP with ``activation`` after each of its first two layers."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 12), activation, nn.Linear(12, 12), activation, nn.Linear(12, n_out))


class SoftmaxHead(nn.Module):
    """A ReLU MLP of 6 features whose 4 outputs go through a softmax or a log-softmax."""

    def __init__(self, log: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4))
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        return F.log_softmax(z, dim=1) if self.log else torch.softmax(z, dim=-1)


class Lambda(nn.Module):
    """A module that applies ``fn``, to put a function into an ``nn.Sequential``."""

    def __init__(self, fn) -> None:  # noqa: ANN001
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

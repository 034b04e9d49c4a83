"""Blocks of torchvision and timm classifiers that DeepExplainer once refused, rebuilt in plain torch.

Each failure found by explaining the libraries' architectures (random weights) gets its block here,
without torchvision or timm: the fused ``addcmul`` of ResMLP's affine layers and ConvNeXt V2's global
response norm. Additivity is recomputed here against ``f(x) - E f(background)``, and the
decompositions are checked against the operations they stand for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

import deepshap
from deepshap.frameworks.pytorch import decompositions

RTOL = 1e-4


def _data(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _assert_additive(model: nn.Module, background: torch.Tensor, X: torch.Tensor) -> None:
    """``sum(phi) == f(x) - E f(background)`` for every output, within RTOL of the mean change."""
    model = model.eval()
    values = deepshap.DeepExplainer(model, background).shap_values(X, check_additivity=False)
    with torch.no_grad():
        target = (model(X).double() - model(background).double().mean(0)).numpy()
    per_output = values if isinstance(values, list) else [values]
    total = np.stack([np.asarray(v, np.float64).reshape(len(X), -1).sum(1) for v in per_output], 1)
    assert np.abs(target).mean() > 1e-3, "the test model gives no signal"
    gap = np.abs(total - target).max() / np.abs(target).mean()
    assert gap < RTOL, gap


# --- addcmul and addcdiv ---------------------------------------------------------------------------
class ResMLPBlock(nn.Module):
    """ResMLP's block: ``Affine`` layers (``addcmul(beta, alpha, x)``), token mixing along the patches
    and a channel MLP, with layer scale."""

    def __init__(self, tokens: int = 4, dim: int = 6) -> None:
        super().__init__()
        self.alpha1, self.beta1 = nn.Parameter(torch.randn(dim)), nn.Parameter(torch.randn(dim))
        self.alpha2, self.beta2 = nn.Parameter(torch.randn(dim)), nn.Parameter(torch.randn(dim))
        self.mix = nn.Linear(tokens, tokens)
        self.mlp = nn.Sequential(nn.Linear(dim, 12), nn.GELU(), nn.Linear(12, dim))
        self.scale1, self.scale2 = (
            nn.Parameter(torch.full((dim,), 0.5)),
            nn.Parameter(torch.full((dim,), 0.5)),
        )
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = self.mix(torch.addcmul(self.beta1, self.alpha1, x).transpose(1, 2)).transpose(1, 2)
        x = x + self.scale1 * mixed
        x = x + self.scale2 * self.mlp(torch.addcmul(self.beta2, self.alpha2, x))
        return self.head(x.mean(1))


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN, channels last: ``x + addcmul(bias, weight, x * n)`` where ``n`` is the
    spatial L2 norm of ``x`` over its mean across channels (a product of two input-dependent tensors)."""

    def __init__(self, channels: int = 5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, 1, 1, channels))
        self.bias = nn.Parameter(torch.randn(1, 1, 1, channels))
        self.conv = nn.Conv2d(3, channels, 3)
        self.head = nn.Linear(channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        norm = x.norm(p=2, dim=(1, 2), keepdim=True)
        n = norm / (norm.mean(dim=-1, keepdim=True) + 1e-6)
        x = x + torch.addcmul(self.bias, self.weight, x * n)
        return self.head(x.mean((1, 2)))


class FusedUpdates(nn.Module):
    """``addcmul`` and ``addcdiv``: every argument from the input, a ``value``, as methods, in place."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        a = torch.addcmul(x, h, torch.tanh(h), value=0.5)
        b = h.addcdiv(x, 1 + torch.sigmoid(h), value=-2)
        c = torch.relu(h)
        c.addcmul_(x, torch.sigmoid(h), value=1.5)
        d = h.clone()
        d.addcdiv_(a, torch.exp(x))
        return torch.cat([a, b, c, d], 1)


@pytest.mark.parametrize(
    "build, shape",
    [(ResMLPBlock, (4, 6)), (GlobalResponseNorm, (3, 6, 6)), (FusedUpdates, (6,))],
    ids=["resmlp-affine", "convnextv2-grn", "addcmul-addcdiv"],
)
def test_fused_multiply_add_blocks_are_additive(
    build: Callable[[], nn.Module], shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    _assert_additive(build(), _data((4, *shape), 1), _data((3, *shape), 2))


def test_addcmul_and_addcdiv_decompositions_compute_the_operations() -> None:
    x, a, b = _data((3, 4), 3), _data((3, 4), 4), _data((3, 4), 5).exp()
    torch.testing.assert_close(
        decompositions.addcmul(x, a, b, value=-0.5), torch.addcmul(x, a, b, value=-0.5)
    )
    torch.testing.assert_close(decompositions.addcdiv(x, a, b, value=3), torch.addcdiv(x, a, b, value=3))
    y = x.clone()
    assert decompositions.addcmul_(y, a, b) is y
    torch.testing.assert_close(y, x.addcmul(a, b))
    y = x.clone()
    decompositions.addcdiv_(y, a, b, value=2)
    torch.testing.assert_close(y, x.addcdiv(a, b, value=2))

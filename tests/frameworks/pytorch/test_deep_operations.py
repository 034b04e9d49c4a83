"""DeepExplainer's PyTorch rules op by op: activations, element-wise maths, composites decomposed into
primitives, the softmax family, division, square roots and keyword forms; each additive."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from tests.helpers.torch_deep import Lambda, SoftmaxHead, additive_values, mlp_with, tensor_data  # noqa: E402


@pytest.mark.parametrize(
    "activation",
    [
        nn.SiLU(),
        nn.Mish(),
        nn.Hardswish(),
        nn.ReLU6(),
        nn.ELU(),
        nn.SELU(),
        nn.CELU(0.7),
        nn.Softplus(2.0),
        nn.Hardsigmoid(),
        nn.Hardtanh(-0.5, 0.5),
        nn.Tanh(),
        nn.GELU(),
        nn.LeakyReLU(0.2),
        nn.Softsign(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_unary_activations(activation: nn.Module) -> None:
    additive_values(mlp_with(activation), tensor_data((10, 6), 1), tensor_data((4, 6), 2))


class ElementwiseZoo(nn.Module):
    """exp, log, sqrt, rsqrt, square, pow, abs, clamp, division, maximum/minimum and amax on the input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        pos = h.abs() + 0.5
        h = torch.exp(h * 0.3) + torch.log(pos) + pos.sqrt() - torch.rsqrt(pos) + h.square() * 0.1
        h = h + pos**1.5 + 2.0 ** h.clamp(-1, 1) + torch.clamp(h, min=-0.3)
        h = h / pos + 1.0 / (pos + 1) + torch.maximum(h, -h * 0.5) - torch.minimum(h, pos)
        h = h + h.amax(dim=1, keepdim=True) + torch.max(h, dim=1).values[:, None] + h.pow(pos * 0.1)
        h = torch.cat([h[:, :4] * torch.logsumexp(h, 1, keepdim=True), F.rms_norm(h[:, 4:], (4,))], 1)
        return self.out(h)


def test_elementwise_zoo() -> None:
    torch.manual_seed(0)
    additive_values(ElementwiseZoo(), tensor_data((10, 6), 1), tensor_data((4, 6), 2))


class Composites(nn.Module):
    """glu, var, std, vector norms, F.normalize and instance norm, decomposed into primitives."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 8)
        self.conv = nn.Conv1d(2, 4, 1)
        self.inorm = nn.InstanceNorm1d(4, affine=True)
        self.out = nn.Linear(8 + 4 + 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        stats = torch.stack(
            [h.var(1), h.std(1, unbiased=False), h.norm(dim=1), torch.linalg.vector_norm(h, 1, dim=1)], 1
        )
        g = F.normalize(F.glu(torch.cat([h, h * 0.5], 1), dim=1), dim=1)
        seq = self.inorm(self.conv(h.reshape(-1, 2, 4))).flatten(1)
        return self.out(torch.cat([g, stats, seq], 1))


def test_composites_are_decomposed() -> None:
    torch.manual_seed(0)
    additive_values(Composites(), tensor_data((10, 6), 1), tensor_data((3, 6), 2))


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_and_log_softmax_outputs(log: bool) -> None:
    torch.manual_seed(0)
    additive_values(SoftmaxHead(log), tensor_data((12, 6), 1), tensor_data((3, 6), 2))


class ScaledLogits(nn.Module):
    """Identity logits through softmax, log_softmax or logsumexp."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "logsumexp":
            return torch.logsumexp(z, 1, keepdim=True)
        return torch.softmax(z, 1) if self.kind == "softmax" else torch.log_softmax(z, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("gap", [20.0, 100.0, 1000.0])
def test_softmax_of_logits_far_from_the_references_adds_up(gap: float, kind: str, dtype: torch.dtype) -> None:
    """A confident sample: its top logit exceeds every reference logit by ``gap``. A quotient of the two
    sides' sums of exponentials lost the whole change at 20 (float32) and gave NaN from about 90."""
    background = torch.tensor([[0.0, 0.3, -0.2], [0.1, 0.0, 0.0]], dtype=dtype)
    X = torch.tensor([[gap, 0.5, 0.0], [0.2, gap / 2, -gap]], dtype=dtype)
    values = additive_values(ScaledLogits(kind), background, X)
    assert np.isfinite(values[0]).all()


class EmptySlice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(x)) + torch.relu(x[:, :0]).sum(1, keepdim=True)


def test_a_nonlinearity_on_an_empty_slice() -> None:
    additive_values(EmptySlice(), tensor_data((3, 4), 1), tensor_data((3, 4), 2), batch_size=100)


class Quotient(nn.Module):
    """A quotient of two branches, written one of several ways."""

    def __init__(self, form: str, offset: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.fc = nn.Linear(6, 8), nn.Linear(6, 8), nn.Linear(8, 2)
        with torch.no_grad():
            self.fc.bias[0] += offset
        self.form = form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num, den = self.a(x), F.softplus(self.b(x)) + 0.5
        divide = {
            "/": lambda: num / den,
            "torch.div": lambda: torch.div(num, den),
            "torch.true_divide": lambda: torch.true_divide(num, den),
            "Tensor.true_divide": lambda: num.true_divide(den),
        }
        return self.fc(divide[self.form]())


@pytest.mark.parametrize("form", ["torch.div", "torch.true_divide", "Tensor.true_divide"])
def test_every_spelling_of_a_division_gets_the_quotient_rule(form: str) -> None:
    """true_divide was taken for a linear op (right only for a constant denominator)."""
    bg, X = tensor_data((8, 6), 1), tensor_data((3, 6), 2) * 1.5
    expected = additive_values(Quotient("/"), bg, X)
    np.testing.assert_allclose(additive_values(Quotient(form), bg, X)[0], expected[0], rtol=1e-5, atol=1e-7)


def test_the_additivity_check_is_not_loosened_by_a_large_output_offset() -> None:
    """An output of 5000 that moves by about 0.2 next to an ordinary one: sums that miss the change were
    let through when the tolerance followed the outputs' size instead of their change."""

    class Offset(Quotient):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.tanh(self.a(x)) * 3)

    from deepshap.explainers.deep import AdditivityError

    bg, X = tensor_data((8, 6), 1), tensor_data((3, 6), 2) * 1.5
    deepshap.DeepExplainer(Quotient("/", offset=5000.0), bg).shap_values(X)  # right: no error
    deepshap.DeepExplainer(Offset("/", offset=5000.0), bg).shap_values(X)  # tanh's own rule: no error
    # tanh's plain gradient is not a DeepLIFT multiplier: the sums miss the change
    with deepshap.rules.registered(torch.tanh, "linear"), pytest.raises(AdditivityError):
        deepshap.DeepExplainer(Offset("/", offset=5000.0), bg).shap_values(X)


class Normalised(nn.Module):
    def __init__(self, first: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = first
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 6 * 6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = {"normalize": lambda: F.normalize(x, dim=1), "sqrt": lambda: torch.sqrt(x), "pow": lambda: x**0.5}
        return self.fc(F.relu(self.conv(h[self.first]())).flatten(1))


@pytest.mark.parametrize("first", ["normalize", "sqrt", "pow"])
def test_a_square_root_of_zeros_in_sample_and_reference_gives_no_nan(first: str) -> None:
    """Black borders: the infinite derivative of sqrt at 0 stood in for the undefined secant where the
    sample and the reference are both 0, and 0 * inf made NaN values."""
    images = tensor_data((11, 3, 6, 6), 3).abs()
    images[:, :, 0] = 0.0  # the top row is black in every image
    values = additive_values(Normalised(first), images[:8], images[8:])[0]
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize(
    "form",
    [
        lambda h: torch.pow(h, exponent=2),
        lambda h: h.pow(exponent=3),
        lambda h: torch.maximum(h, other=h.flip(1)),
        lambda h: torch.maximum(input=h, other=h.flip(1)),
        lambda h: torch.norm(h, dim=1, keepdim=True).expand_as(h),
        lambda h: torch.logsumexp(h.reshape(-1, 2, 2, 2), dim=(-2, -1), keepdim=True).expand(-1, 2, 2, 2),
        lambda h: torch.logsumexp(h.reshape(-1, 2, 2, 2), dim=(1, 3)).repeat(1, 4),
        lambda h: torch.logsumexp(h.reshape(-1, 2, 2, 2), dim=(1, -1)).repeat(1, 4),
        lambda h: torch.logsumexp(h.reshape(-1, 4, 2), dim=(-2, -1), keepdim=True).expand(-1, 4, 2),
    ],
    ids=[
        "pow_exponent",
        "tensor_pow_exponent",
        "maximum_other",
        "maximum_input_other",
        "norm_dim",
        "logsumexp_last_two_keepdim",
        "logsumexp_apart",
        "logsumexp_mixed_signs",
        "logsumexp_channels_equal_rest",
    ],
)
def test_supported_operations_called_with_keywords_or_several_dims(form) -> None:  # noqa: ANN001
    """Keyword operands were read as missing (IndexError), torch.norm's forwarded ``out`` was refused, and
    logsumexp over negative, mixed-sign or non-adjacent dims had the wrong shape or reduced other axes."""
    torch.manual_seed(0)
    first, last = nn.Linear(6, 8), nn.Linear(8, 2)
    model = nn.Sequential(first, Lambda(lambda h: form(h).reshape(h.shape[0], 8)), last)
    additive_values(model, tensor_data((8, 6), 1), tensor_data((3, 6), 2))

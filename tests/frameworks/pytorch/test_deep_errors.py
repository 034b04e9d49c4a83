"""What DeepExplainer refuses on PyTorch models, with errors that say what and why: unsupported ops, bad
input and arguments, training-mode dropout, custom autograd functions, bypassed layers, control flow."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from deepshap.frameworks.pytorch.deep import UnsupportedOperationError  # noqa: E402
from tests.helpers.torch_deep import Lambda, mlp_with, tensor_data  # noqa: E402


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(self.lin(x), dim=1)


def test_unsupported_operation_raises_naming_it() -> None:
    explainer = deepshap.DeepExplainer(Unsupported().eval(), tensor_data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="cumprod"):
        explainer.shap_values(tensor_data((2, 4), 2))


@pytest.mark.parametrize(
    ("written", "name"),
    [
        (lambda x: x // 2, "__floordiv__"),
        (lambda x: x % 2, "remainder"),
    ],
    ids=["floordiv", "mod"],
)
def test_an_unsupported_binary_operator_raises_naming_it(written, name) -> None:  # noqa: ANN001
    """PyTorch turns a TypeError inside a binary operator into NotImplemented; the explainer's error (a
    TypeError too) must still reach the user with its message, not Python's "unsupported operand"."""
    explainer = deepshap.DeepExplainer(mlp_with(Lambda(written)).eval(), tensor_data((4, 6), 1))
    with pytest.raises(UnsupportedOperationError, match=name):
        explainer.shap_values(tensor_data((2, 6), 2))


def test_training_mode_dropout_raises() -> None:
    class Dropping(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.dropout(x, 0.5, training=True).sum(1)

    explainer = deepshap.DeepExplainer(Dropping(), tensor_data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="eval"):
        explainer.shap_values(tensor_data((2, 4), 2))


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.zeros((2, 5), np.float32), ValueError, "shape"),
        (np.full((2, 6), np.nan, np.float32), ValueError, "NaN"),
        (np.zeros((0, 6), np.float32), ValueError, "at least one sample"),
        ([np.zeros((2, 6), np.float32)] * 2, ValueError, "list"),
    ],
    ids=["shape", "nan", "empty", "list"],
)
def test_bad_input(X, error, match) -> None:  # noqa: ANN001
    explainer = deepshap.DeepExplainer(nn.Linear(6, 2).eval(), tensor_data((4, 6), 1))
    with pytest.raises(error, match=match):
        explainer.shap_values(X)


def test_bad_batch_size_and_rank_order() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        deepshap.DeepExplainer(nn.Linear(6, 2), tensor_data((4, 6), 1), batch_size=0)
    explainer = deepshap.DeepExplainer(nn.Linear(6, 2), tensor_data((4, 6), 1))
    with pytest.raises(ValueError, match="output_rank_order"):
        explainer.shap_values(tensor_data((2, 6), 2), ranked_output=1, output_rank_order="median")


class SkipAroundLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3, self.l4 = (
            nn.Linear(4, 4),
            nn.Linear(4, 4),
            nn.Linear(4, 2),
            nn.Linear(4, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(F.relu(self.l2(F.relu(self.l1(x))))) + self.l4(x)


def test_a_layer_that_a_skip_connection_bypasses_is_an_error() -> None:
    """Its input alone does not determine the output: the values could not add up to f(x)."""
    torch.manual_seed(0)
    model = SkipAroundLayer().eval()
    for explainer in (deepshap.DeepExplainer, deepshap.GradientExplainer):
        with pytest.raises(ValueError, match="bypass the layer Linear"):
            explainer((model, model.l2), tensor_data((6, 4), 1))


def test_data_dependent_control_flow_still_raises() -> None:
    class Branching(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.tanh(row) if row.sum() > 0 else row * 2 for row in x]).sum(
                1, keepdim=True
            )

    explainer = deepshap.DeepExplainer(Branching(), tensor_data((8, 6), 1))
    with pytest.raises(RuntimeError, match="no data-dependent control flow"):
        explainer.shap_values(tensor_data((3, 6), 2))

"""Conditions computed from the input in PyTorch models: activations written with where, masked_fill or
a mask product get the activation's rule; steps, flipping conditions, masks and indices computed from
the input are errors that name the op."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from deepshap.frameworks.pytorch.deep import UnsupportedOperationError  # noqa: E402
from tests.helpers.torch_deep import Lambda, additive_values, mlp_with, tensor_data  # noqa: E402


def _in_place_masked_relu(x: torch.Tensor) -> torch.Tensor:
    h = x.clone()
    h.masked_fill_(h < 0, 0.0)
    return h


def _in_place_mask_product(x: torch.Tensor) -> torch.Tensor:
    h = x.clone()
    h *= h > 0
    return h


@pytest.mark.parametrize(
    ("written", "module"),
    [
        (lambda x: torch.where(x > 0, x, torch.zeros_like(x)), nn.ReLU()),
        (lambda x: torch.where(x > 0, x, 0.2 * x), nn.LeakyReLU(0.2)),
        (lambda x: x.where(x > 0, 0.7 * (torch.exp(x) - 1)), nn.ELU(0.7)),
        (lambda x: torch.where(x > 0.3, x, 0.0), nn.Threshold(0.3, 0.0)),
        (lambda x: x.masked_fill(x < 0, 0.0), nn.ReLU()),
        (_in_place_masked_relu, nn.ReLU()),
        (lambda x: torch.where(x < 0, torch.tensor(0), x), nn.ReLU()),  # an int 0-dim branch
        (lambda x: x.masked_fill(x < 0, torch.tensor(0.0, dtype=torch.float64)), nn.ReLU()),
        (lambda x: torch.where((x > 0).unsqueeze(-1).squeeze(-1).clone(), x, 0.2 * x), nn.LeakyReLU(0.2)),
        (lambda x: torch.where(F.relu(x).to(torch.bool), x, 0.2 * x), nn.LeakyReLU(0.2)),
        (lambda x: x * (x > 0), nn.ReLU()),
        (lambda x: (x > 0) * x, nn.ReLU()),
        (lambda x: torch.mul(x, x > 0.3), nn.Threshold(0.3, 0.0)),
        (_in_place_mask_product, nn.ReLU()),
    ],
    ids=[
        "relu",
        "leaky_relu",
        "elu_method",
        "threshold_scalar",
        "masked_fill",
        "masked_fill_",
        "int_branch",
        "float64_fill",
        "reshaped_condition",
        "condition_by_to_bool",
        "times_its_mask",
        "mask_times",
        "torch_mul_mask",
        "in_place_mask_product",
    ],
)
def test_activations_written_with_where_equal_the_activation(written, module) -> None:  # noqa: ANN001
    """A condition computed from the input: where the input and the reference take different branches,
    the rule is the rescale rule of the whole activation, so the values equal the module's."""
    bg, X = tensor_data((6, 6), 1), tensor_data((5, 6), 2)  # several samples and background rows per pass
    (by_where,) = additive_values(mlp_with(Lambda(written)), bg, X)
    (by_module,) = additive_values(mlp_with(module), bg, X)
    np.testing.assert_allclose(by_where, by_module, rtol=1e-5, atol=1e-6)


def test_where_with_a_condition_from_one_input_and_branches_from_another() -> None:
    """A broadcast (N, 1) condition choosing between two computed branches adds up; the output's change
    goes through the branches, so features read only by the condition get no credit (as documented)."""
    model = Lambda(lambda x: torch.where(x[:, :1] > x[:, 1:2], x[:, 2:] * 2.0, torch.tanh(x[:, 2:])))
    (values,) = additive_values(
        nn.Sequential(model, nn.Linear(4, 2)), tensor_data((4, 6), 3), tensor_data((3, 6), 4)
    )
    assert np.all(values[:, :2] == 0)
    assert np.abs(values[:, 2:]).min() > 1e-4


def test_a_step_written_with_where_raises_naming_it() -> None:
    step = Lambda(lambda x: torch.where(x > 0, 1.0, -1.0).sum(1, keepdim=True))
    explainer = deepshap.DeepExplainer(step, tensor_data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="where.*step function"):
        explainer.shap_values(tensor_data((2, 4), 2))


def test_a_condition_that_flips_between_unchanged_values_raises() -> None:
    """Feature 1 is the same in the input and the reference; the condition on feature 0 flips."""
    model = Lambda(lambda x: torch.where(x[:, :1] > 0, x[:, 1:2], 2.0 * x[:, 1:2]))
    bg = torch.tensor([[-1.0, 0.5]])
    explainer = deepshap.DeepExplainer(model, bg)
    with pytest.raises(UnsupportedOperationError, match="step function"):
        explainer.shap_values(torch.tensor([[1.0, 0.5]]))


def test_a_mask_of_minus_inf_chosen_by_the_input_raises() -> None:
    model = Lambda(lambda x: torch.softmax(x.masked_fill(x < -0.5, float("-inf")), -1))
    explainer = deepshap.DeepExplainer(model, tensor_data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="masked_fill.*too large to split"):
        explainer.shap_values(tensor_data((3, 4), 2))


def test_where_multipliers_neither_overflow_nor_underflow_in_half_precision() -> None:
    """dt^2 + de^2 overflows float16 at 300 and underflows at 3e-4: the rescale multiplier must survive."""
    from deepshap.frameworks.pytorch import deep_rules

    for x_value, r_value in [(200.0, -100.0), (2e-4, -1e-4)]:
        x = torch.tensor([x_value], dtype=torch.float16, requires_grad=True)
        r = torch.tensor([r_value], dtype=torch.float16)
        out, step = deep_rules.select(
            x.detach() > 0, r > 0, deep_rules.Pair(x, r), deep_rules.Pair(0.2 * x, 0.2 * r)
        )
        (multiplier,) = torch.autograd.grad(out.x.sum(), x)
        assert not step
        assert multiplier.item() == pytest.approx((x_value - 0.2 * r_value) / (x_value - r_value), rel=2e-3)


def test_an_index_cast_from_the_input_raises() -> None:
    """``to(torch.long)`` of the input is an index computed from it, not a constant."""
    model = Lambda(lambda x: x.gather(1, x.abs().clamp(max=3).to(torch.long)))
    explainer = deepshap.DeepExplainer(model, tensor_data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="data-dependent"):
        explainer.shap_values(tensor_data((2, 4), 2))


def test_where_returning_indices_of_input_dependent_values_raises() -> None:
    model = Lambda(lambda x: x[torch.where(x > 0)].sum().reshape(1, 1) + 0 * x[:, :1])
    explainer = deepshap.DeepExplainer(model, tensor_data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="data-dependent"):
        explainer.shap_values(tensor_data((2, 4), 2))


@pytest.mark.parametrize("select", ["max_indices", "max_pool_indices"])
def test_argmax_indices_from_max_and_max_pool_are_data_dependent(select: str) -> None:
    """Indices from ``max(dim)`` and ``max_pool(return_indices=True)`` were taken for constants, so the
    sample's argmax picked the reference's values too; as with ``argmax``, that is an error naming it."""

    def pick(x: torch.Tensor) -> torch.Tensor:
        if select == "max_indices":
            index = x.max(1, keepdim=True).indices
        else:
            _, index = F.max_pool1d(x[:, None], 2, return_indices=True)
            index = index[:, 0, :1]
        return torch.gather(x * 2.0, 1, index)

    explainer = deepshap.DeepExplainer(Lambda(pick), tensor_data((4, 6), 1))
    with pytest.raises(
        UnsupportedOperationError, match="gather uses a mask or index computed from the input"
    ):
        explainer.shap_values(tensor_data((2, 6), 2))


@pytest.mark.parametrize("attention", ["sdpa", "multi_head"])
def test_an_attention_mask_computed_from_the_input_raises(attention: str) -> None:
    """Masks are added to the scores as constants; one computed from the input had its change lost."""
    torch.manual_seed(0)
    heads = nn.MultiheadAttention(8, 2, batch_first=True)

    def attend(x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, 4, 8)
        bias = tokens.mean(-1, keepdim=True) - tokens.mean(-1)[:, None, :]  # (B, 4, 4), from the input
        if attention == "sdpa":
            out = F.scaled_dot_product_attention(tokens, tokens, tokens, attn_mask=bias)
        else:
            out = heads(tokens, tokens, tokens, attn_mask=bias.repeat_interleave(2, 0), need_weights=False)[0]
        return out.sum((1, 2))[:, None]

    explainer = deepshap.DeepExplainer(Lambda(attend).eval(), tensor_data((4, 32), 1))
    with pytest.raises(UnsupportedOperationError, match="attn_mask of .* is computed from the model's input"):
        explainer.shap_values(tensor_data((2, 32), 2))

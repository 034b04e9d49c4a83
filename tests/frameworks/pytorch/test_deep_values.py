"""DeepExplainer's values on PyTorch models: shap's on a plain CNN, exact on a linear model, ranked
outputs, base values, a layer's input, and a model left in training mode."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from tests.helpers.torch_deep import RTOL, SoftmaxHead, model_outputs, tensor_data  # noqa: E402


class PlainCNN(nn.Module):
    """Separate modules per use, so shap's module hooks are exact on it."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.r1, self.p1 = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2)
        self.c2, self.r2, self.p2 = nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2)
        self.fc1, self.r3, self.fc2 = nn.Linear(8 * 5 * 5, 16), nn.ReLU(), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.p2(self.r2(self.c2(self.p1(self.r1(self.c1(x))))))
        return self.fc2(self.r3(self.fc1(x.flatten(1))))


def test_agrees_with_shap_on_plain_relu_maxpool_cnn() -> None:
    shap = pytest.importorskip("shap")

    torch.manual_seed(0)
    model = PlainCNN().eval()
    bg, X = tensor_data((16, 1, 28, 28), 1), tensor_data((3, 1, 28, 28), 2)
    ours = np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X))  # (10, N, 1, 28, 28)
    theirs = np.moveaxis(
        np.asarray(shap.DeepExplainer(model, bg).shap_values(X, check_additivity=False)), -1, 0
    )
    scale = np.abs(theirs).max()
    assert scale > 0
    assert np.abs(ours - theirs).max() <= 1e-4 * scale


def test_exact_on_a_linear_model() -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 3).eval()
    bg, X = tensor_data((20, 6), 1), tensor_data((4, 6), 2)
    values = deepshap.DeepExplainer(model, bg).shap_values(X)
    weight = model.weight.detach().numpy()
    for k in range(3):
        expected = (X.numpy() - bg.numpy().mean(0)) * weight[k]
        np.testing.assert_allclose(values[k], expected, rtol=1e-5, atol=1e-6)


def test_ranked_output_indexes_and_additivity() -> None:
    torch.manual_seed(0)
    model = SoftmaxHead(log=False).eval()
    bg, X = tensor_data((12, 6), 1), tensor_data((5, 6), 2)
    explainer = deepshap.DeepExplainer(model, bg)
    values, indexes = explainer.shap_values(X, ranked_output=2)
    full = explainer.shap_values(X)
    probs = model_outputs(model, [X])
    np.testing.assert_array_equal(indexes, np.argsort(-probs, axis=1)[:, :2])
    for r in range(2):
        for i in range(5):
            np.testing.assert_allclose(values[r][i], full[indexes[i, r]][i], rtol=1e-5, atol=1e-7)
            explained = probs[i, indexes[i, r]] - explainer.expected_value[indexes[i, r]]
            assert abs(values[r][i].sum() - explained) <= RTOL * (abs(probs[i]).max() + 1)
    _, min_indexes = explainer.shap_values(X, ranked_outputs=1, output_rank_order="min")
    np.testing.assert_array_equal(min_indexes[:, 0], probs.argmin(1))


def test_explanation_carries_base_values_and_expected_value() -> None:
    torch.manual_seed(0)
    model = SoftmaxHead(log=True).eval()
    bg, X = tensor_data((12, 6), 1), tensor_data((4, 6), 2)
    explainer = deepshap.DeepExplainer(model, bg)
    explanation = explainer(X)
    expected = model_outputs(model, [bg]).mean(0)
    np.testing.assert_allclose(explainer.expected_value, expected, rtol=1e-6)
    assert explanation.values.shape == (4, 6, 4)
    np.testing.assert_allclose(explanation.base_values, np.tile(expected, (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(explanation.data, X.numpy())


def test_module_layer_pair_explains_the_layer_input() -> None:
    torch.manual_seed(0)
    model = PlainCNN().eval()
    bg, X = tensor_data((8, 1, 28, 28), 1), tensor_data((2, 1, 28, 28), 2)
    explainer = deepshap.DeepExplainer((model, model.fc1), bg)
    values = explainer.shap_values(X)
    assert len(values) == 10 and values[0].shape == (2, 200)
    fx = model_outputs(model, [X])
    for k in range(10):
        np.testing.assert_allclose(
            values[k].sum(1), fx[:, k] - explainer.expected_value[k], rtol=1e-4, atol=1e-5
        )


class DropoutBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.bn, self.drop, self.out = (
            nn.Linear(4, 6),
            nn.BatchNorm1d(6),
            nn.Dropout(0.5),
            nn.Linear(6, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(F.relu(self.bn(self.lin(x)))))


def test_a_model_put_back_in_training_mode_is_explained_in_eval_mode_and_left_training() -> None:
    torch.manual_seed(0)
    model = DropoutBatchNorm()
    bg, X = tensor_data((8, 4), 1), tensor_data((3, 4), 2)
    deep, gradient = deepshap.DeepExplainer(model, bg), deepshap.GradientExplainer(model, bg)
    expected = deep.shap_values(X)
    stats = model.bn.running_mean.clone()
    model.train()
    np.testing.assert_allclose(np.stack(deep.shap_values(X)), np.stack(expected), rtol=1e-6)
    a, b = gradient.shap_values(X, rseed=3), gradient.shap_values(X, rseed=3)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert torch.equal(model.bn.running_mean, stats)  # no batch statistics were updated
    assert model.training and model.drop.training

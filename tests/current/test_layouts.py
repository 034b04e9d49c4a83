"""Both of shap's return layouts: shap 0.44's (``import deepshap``) and shap 0.45's (``deepshap.current``
or ``DEEPSHAP_SHAP_LAYOUT=0.45``), for every way values come back from Deep and Gradient explainers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import deepshap
import deepshap.current
from deepshap.explainers._layout import LAYOUT_ENV
from tests.helpers.data import rng_data
from tests.helpers.keras_models import keras_two_input
from tests.helpers.torch_models import torch_cnn, torch_linear, torch_mlp, torch_two_input

X6 = rng_data((3, 6), seed=1)
BG6 = rng_data((20, 6), seed=2)
DIALECTS = ["legacy", "current", "env"]


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The dialect under test; "env" is ``import deepshap`` with the environment variable set."""
    monkeypatch.delenv(LAYOUT_ENV, raising=False)
    if request.param == "env":
        monkeypatch.setenv(LAYOUT_ENV, "0.45")
    return request.param


def _module(dialect: str):
    return deepshap.current if dialect == "current" else deepshap


def _explainer(dialect: str, kind: str, model, data, **kwargs):
    return getattr(_module(dialect), kind)(model, data, **kwargs)


def _call_kwargs(kind: str) -> dict:
    return {"nsamples": 8, "rseed": 0} if kind == "GradientExplainer" else {}


def _torch_outputs(model, *xs) -> np.ndarray:
    torch = pytest.importorskip("torch")

    with torch.no_grad():
        return model(*[torch.as_tensor(x) for x in xs]).numpy().astype(np.float64)


@pytest.mark.parametrize("kind", ["DeepExplainer", "GradientExplainer"])
def test_several_outputs(dialect: str, kind: str) -> None:
    model = torch_linear(n_outputs=3)
    explainer = _explainer(dialect, kind, model, BG6)
    values = explainer.shap_values(X6, **_call_kwargs(kind))
    if dialect == "legacy":
        assert isinstance(values, list) and len(values) == 3 and values[0].shape == (3, 6)
        stacked = np.stack(values, axis=-1)
    else:
        assert isinstance(values, np.ndarray) and values.shape == (3, 6, 3)
        stacked = values
    # a linear model: exact for both explainers
    change = _torch_outputs(model, X6) - explainer.expected_value
    np.testing.assert_allclose(stacked.sum(1), change, atol=1e-4)
    explanation = explainer(X6, **_call_kwargs(kind))
    assert explanation.values.shape == (3, 6, 3) and explanation.base_values.shape == (3, 3)


@pytest.mark.parametrize("kind", ["DeepExplainer", "GradientExplainer"])
def test_single_output_keeps_its_axis_only_in_the_current_layout(dialect: str, kind: str) -> None:
    model = torch_linear(n_outputs=1)
    explainer = _explainer(dialect, kind, model, BG6)
    assert explainer.expected_value.shape == (1,)
    values = explainer.shap_values(X6, **_call_kwargs(kind))
    explanation = explainer(X6, **_call_kwargs(kind))
    expected = (3, 6) if dialect == "legacy" else (3, 6, 1)
    assert values.shape == expected and explanation.values.shape == expected
    np.testing.assert_allclose(explanation.values, values, rtol=1e-6)
    total = values.reshape(3, -1).sum(1)
    outputs = _torch_outputs(model, X6)[:, 0]
    np.testing.assert_allclose(total + explainer.expected_value[0], outputs, atol=1e-4)


@pytest.mark.parametrize("kind", ["DeepExplainer", "GradientExplainer"])
@pytest.mark.parametrize("spelling", ["ranked_output", "ranked_outputs"])
def test_ranked_outputs(dialect: str, kind: str, spelling: str) -> None:
    model = torch_linear(n_outputs=4)
    explainer = _explainer(dialect, kind, model, BG6)
    values, indexes = explainer.shap_values(X6, **{spelling: 2}, **_call_kwargs(kind))
    outputs = _torch_outputs(model, X6)
    np.testing.assert_array_equal(indexes, np.argsort(-outputs, axis=1)[:, :2])
    stacked = np.stack(values, axis=-1) if dialect == "legacy" else values
    assert stacked.shape == (3, 6, 2)
    explained = np.take_along_axis(outputs, indexes, 1) - explainer.expected_value[indexes]
    np.testing.assert_allclose(stacked.sum(1), explained, atol=1e-4)
    explanation = explainer(X6, **{spelling: 2}, **_call_kwargs(kind))
    np.testing.assert_array_equal(explanation.output_indexes, indexes)


def test_return_variances(dialect: str) -> None:
    explainer = _explainer(dialect, "GradientExplainer", torch_mlp(n_outputs=3), BG6)
    values, variances = explainer.shap_values(X6, nsamples=8, rseed=0, return_variances=True)
    ranked, ranked_variances, indexes = explainer.shap_values(
        X6, nsamples=8, rseed=0, return_variances=True, ranked_outputs=2
    )
    if dialect == "legacy":
        assert len(variances) == 3 and variances[0].shape == (3, 6) and len(ranked_variances) == 2
        variances = np.stack(variances, -1)
    else:
        assert variances.shape == (3, 6, 3) and ranked_variances.shape == (3, 6, 2)
    assert (variances >= 0).all() and variances.max() > 0 and indexes.shape == (3, 2)


@pytest.mark.parametrize("kind", ["DeepExplainer", "GradientExplainer"])
def test_several_inputs(dialect: str, kind: str) -> None:
    model = torch_two_input(n_outputs=3)
    background = [rng_data((10, 5), 3), rng_data((10, 4), 4)]
    x = [rng_data((2, 5), 5), rng_data((2, 4), 6)]
    explainer = _explainer(dialect, kind, model, background)
    values = explainer.shap_values(x, **_call_kwargs(kind))
    if dialect == "legacy":  # per output, a list per input
        assert len(values) == 3 and len(values[0]) == 2 and values[0][1].shape == (2, 4)
        per_input = [np.stack([v[i] for v in values], -1) for i in range(2)]
    else:  # per input, outputs last
        assert len(values) == 2 and values[0].shape == (2, 5, 3) and values[1].shape == (2, 4, 3)
        per_input = values
    explanations = explainer(x, **_call_kwargs(kind))
    assert [e.values.shape for e in explanations] == [p.shape for p in per_input]
    if kind == "DeepExplainer":
        total = per_input[0].sum(1) + per_input[1].sum(1)
        np.testing.assert_allclose(total, _torch_outputs(model, *x) - explainer.expected_value, atol=1e-4)


@pytest.mark.parametrize("kind", ["DeepExplainer", "GradientExplainer"])
def test_intermediate_layer(dialect: str, kind: str) -> None:
    model = torch_mlp(n_outputs=3)
    explainer = _explainer(dialect, kind, (model, model[2]), BG6)
    values = explainer.shap_values(X6, **_call_kwargs(kind))
    shape = np.stack(values, -1).shape if dialect == "legacy" else values.shape
    assert shape == (3, 16, 3)


def test_keras_layouts(dialect: str) -> None:
    model = keras_two_input(n_outputs=3)
    background = [rng_data((10, 5), 3), rng_data((10, 4), 4)]
    x = [rng_data((2, 5), 5), rng_data((2, 4), 6)]
    values = _explainer(dialect, "DeepExplainer", model, background).shap_values(x)
    if dialect == "legacy":
        assert len(values) == 3 and values[2][0].shape == (2, 5)
    else:
        assert len(values) == 2 and values[0].shape == (2, 5, 3)


def test_image_plot_draws_either_layout(dialect: str) -> None:
    model = torch_cnn(n_outputs=4)
    images = rng_data((2, 1, 8, 8), 7)
    values = _explainer(dialect, "DeepExplainer", model, rng_data((5, 1, 8, 8), 8)).shap_values(images)
    figure = _module(dialect).image_plot(values, images, show=False)
    image_axes = [ax for ax in figure.axes if ax.images]
    assert len(image_axes) == 2 * (1 + 4)  # per image: the image, then one panel per output
    plt.close(figure)


def test_the_environment_variable_is_read_at_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    explainer = deepshap.DeepExplainer(torch_linear(n_outputs=2), BG6)
    monkeypatch.setenv(LAYOUT_ENV, "0.51")
    assert explainer.shap_values(X6).shape == (3, 6, 2)
    monkeypatch.setenv(LAYOUT_ENV, "0.44")
    assert isinstance(explainer.shap_values(X6), list)
    monkeypatch.setenv(LAYOUT_ENV, "newest")
    with pytest.raises(ValueError, match="DEEPSHAP_SHAP_LAYOUT"):
        explainer.shap_values(X6)


def test_current_ignores_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAYOUT_ENV, "0.44")
    explainer = deepshap.current.DeepExplainer(torch_linear(n_outputs=2), BG6)
    assert explainer.shap_values(X6).shape == (3, 6, 2)
    assert isinstance(explainer, deepshap.DeepExplainer)


def test_shaps_explainer_names() -> None:
    assert deepshap.explainers.Deep is deepshap.DeepExplainer
    assert deepshap.explainers.Gradient is deepshap.GradientExplainer
    assert deepshap.explainers.Partition is deepshap.PartitionExplainer
    current = deepshap.current.explainers
    assert current.Deep is deepshap.current.DeepExplainer and current.Gradient.shap_layout == "0.45"
    assert current.Partition is deepshap.PartitionExplainer
    assert deepshap.current.Explanation is deepshap.Explanation

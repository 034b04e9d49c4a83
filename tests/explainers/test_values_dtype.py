"""Values come back in the dtype shap gives: float64 for float64 inputs (a float32 model included), else the
model's precision; and they add up within shap's own tolerance at large outputs."""

from __future__ import annotations

import numpy as np
import pytest

import deepshap.current as shap


def _keras_relu_line(weights: tuple[float, float], bias: float):
    keras = pytest.importorskip("keras")

    inputs = keras.Input(shape=(2,))
    layer = keras.layers.Dense(1, activation="relu")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.array([[weights[0]], [weights[1]]], np.float32), np.array([bias], np.float32)])
    return model


@pytest.mark.parametrize("kind", ["DeepExplainer", "GradientExplainer"])
def test_float64_inputs_to_a_float32_keras_model_give_float64_values(kind: str) -> None:
    rng = np.random.RandomState(0)
    x = rng.normal(1, 10, size=(1000, 2))  # float64, outputs up to about 60
    model = _keras_relu_line((1.0, 2.0), 1.0)
    explainer = getattr(shap, kind)(model, x[:200])
    kwargs = {"nsamples": 4, "rseed": 0} if kind == "GradientExplainer" else {}
    values = explainer.shap_values(x, **kwargs)
    assert values.dtype == np.float64 and values.shape == (1000, 2, 1)
    if kind == "DeepExplainer":  # exact: shap's own tolerance, 1e-5 absolute, on every row
        outputs = model.predict(x, verbose=0)
        np.testing.assert_allclose(values.sum(1) + explainer.expected_value, outputs, atol=1e-5, rtol=0)
    float32_values = explainer.shap_values(x.astype(np.float32), **kwargs)
    assert float32_values.dtype == np.float32


def test_float64_numpy_inputs_to_a_torch_model_give_float64_values() -> None:
    from tests.helpers.data import rng_data
    from tests.helpers.torch_models import torch_linear

    explainer = shap.DeepExplainer(torch_linear(n_outputs=2), rng_data((10, 6)))
    x = np.random.default_rng(0).normal(size=(3, 6))
    assert explainer.shap_values(x).dtype == np.float64
    assert explainer.shap_values(x.astype(np.float32)).dtype == np.float32
    assert explainer(x).values.dtype == np.float64

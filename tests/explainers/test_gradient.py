"""GradientExplainer: exactness on linear models, additivity, variances, ranking, formats and errors."""

from __future__ import annotations

import numpy as np
import pytest

import deepshap
from deepshap.explainers import gradient
from deepshap.explainers.gradient import GradientExplainer
from tests.helpers.data import rng_data
from tests.helpers.examples import example_main
from tests.helpers.keras_models import keras_cnn, keras_linear, keras_mlp, keras_two_input
from tests.helpers.torch_models import (
    torch_cnn,
    torch_ignores_input,
    torch_linear,
    torch_mlp,
    torch_two_input,
)

BG = rng_data((30, 6), seed=1)
X = rng_data((3, 6), seed=2)


def _torch_outputs(model, *xs):
    torch = pytest.importorskip("torch")

    with torch.no_grad():
        return model(*[torch.from_numpy(x) for x in xs]).numpy()


def _keras_outputs(model, *xs):
    return np.asarray(model(list(xs) if len(xs) > 1 else xs[0], training=False))


def _sum_per_output(values, n_inputs=1):
    """(N, K) sums of attributions from shap's list-per-output format (list per input when several)."""
    if n_inputs == 1:
        return np.stack([v.reshape(len(v), -1).sum(1) for v in values], axis=1)
    return np.stack([sum(p.reshape(len(p), -1).sum(1) for p in per_input) for per_input in values], axis=1)


# exactness -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("nsamples", [1, 3, 40])
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_linear_model_is_exact_for_any_nsamples(framework, nsamples):
    if framework == "torch":
        model = torch_linear()
        weights = model.weight.detach().numpy().T
    else:
        model = keras_linear()
        weights = np.asarray(model.layers[-1].kernel)
    values = GradientExplainer(model, BG).shap_values(X, nsamples=nsamples, rseed=3)
    expected = (X - BG.mean(0))[:, :, None] * weights[None]
    assert len(values) == 3
    for k in range(3):
        np.testing.assert_allclose(values[k], expected[..., k], rtol=1e-4, atol=1e-5)


def test_torch_layer_delta_is_the_layer_input_difference():
    """With a linear head as the layer, phi is exactly (z - mean z_bg) * W at that layer's input."""
    torch = pytest.importorskip("torch")

    model = torch_mlp()
    head = model[-1]
    explainer = GradientExplainer((model, head), BG)
    values = explainer.shap_values(X, nsamples=5, rseed=0)
    with torch.no_grad():
        z, z_bg = model[:-1](torch.from_numpy(X)).numpy(), model[:-1](torch.from_numpy(BG)).numpy()
    weights = head.weight.detach().numpy().T
    for k in range(3):
        np.testing.assert_allclose(values[k], (z - z_bg.mean(0)) * weights[:, k], rtol=1e-4, atol=1e-5)


def test_keras_layer_tuple_delta_is_the_layer_input_difference():
    keras = pytest.importorskip("keras")

    model = keras_mlp()
    body = keras.Model(model.inputs[0], model.layers[-2].output)
    z, z_bg = np.asarray(body(X)), np.asarray(body(BG))
    explainer = GradientExplainer((model.layers[-1].input, model.layers[-1].output), z_bg)
    values = explainer.shap_values(z, nsamples=5, rseed=0)
    weights = np.asarray(model.layers[-1].kernel)
    for k in range(3):
        np.testing.assert_allclose(values[k], (z - z_bg.mean(0)) * weights[:, k], rtol=1e-4, atol=1e-5)


# additivity ------------------------------------------------------------------------------------------
def _additivity_errors(explainer, x, f_x, n_inputs=1):
    errors = []
    for nsamples in (20, 2000):
        values = explainer.shap_values(x, nsamples=nsamples, rseed=7)
        gap = _sum_per_output(values, n_inputs) - (f_x - explainer.expected_value)
        errors.append(np.abs(gap).max())
    return errors


def _check_shrinks(errors, scale):
    small, large = errors
    assert large < small, errors
    assert large < 0.02 * scale, (errors, scale)


def test_additivity_torch_one_input():
    model = torch_mlp()
    f_x = _torch_outputs(model, X)
    explainer = GradientExplainer(model, BG, batch_size=500)
    _check_shrinks(_additivity_errors(explainer, X, f_x), np.abs(f_x - explainer.expected_value).max())


def test_additivity_torch_two_inputs():
    model = torch_two_input()
    bg = [rng_data((20, 5), 3), rng_data((20, 4), 4)]
    x = [rng_data((2, 5), 5), rng_data((2, 4), 6)]
    f_x = _torch_outputs(model, *x)
    explainer = GradientExplainer(model, bg, batch_size=500)
    _check_shrinks(_additivity_errors(explainer, x, f_x, 2), np.abs(f_x - explainer.expected_value).max())


def test_additivity_torch_intermediate_layer():
    model = torch_cnn()
    bg, x = rng_data((10, 1, 8, 8), 3), rng_data((2, 1, 8, 8), 4)
    f_x = _torch_outputs(model, x)
    explainer = GradientExplainer((model, model[2]), bg, batch_size=500)
    _check_shrinks(_additivity_errors(explainer, x, f_x), np.abs(f_x - explainer.expected_value).max())


def test_additivity_keras_one_and_two_inputs():
    model = keras_mlp()
    f_x = _keras_outputs(model, X)
    explainer = GradientExplainer(model, BG, batch_size=500)
    _check_shrinks(_additivity_errors(explainer, X, f_x), np.abs(f_x - explainer.expected_value).max())
    two = keras_two_input()
    bg = [rng_data((20, 5), 3), rng_data((20, 4), 4)]
    x = [rng_data((2, 5), 5), rng_data((2, 4), 6)]
    f_x = _keras_outputs(two, *x)
    explainer = GradientExplainer(two, bg, batch_size=500)
    _check_shrinks(_additivity_errors(explainer, x, f_x, 2), np.abs(f_x - explainer.expected_value).max())


def test_additivity_keras_intermediate_layer():
    keras = pytest.importorskip("keras")

    model = keras_cnn()
    head = keras.Model(model.inputs[0], model.layers[1].output)
    bg, x = rng_data((10, 8, 8, 1), 3), rng_data((2, 8, 8, 1), 4)
    f_x = _keras_outputs(model, x)
    tuple_model = (model.layers[2].input, model.layers[-1].output)
    explainer = GradientExplainer(tuple_model, np.asarray(head(bg)), batch_size=500)
    errors = _additivity_errors(explainer, np.asarray(head(x)), f_x)
    _check_shrinks(errors, np.abs(f_x - explainer.expected_value).max())


# variance and determinism -------------------------------------------------------------------------
def test_reported_variance_matches_spread_across_seeds():
    explainer = GradientExplainer(torch_mlp(), BG, batch_size=500)
    estimates, reported = [], []
    for seed in range(40):
        values, variances = explainer.shap_values(X, nsamples=30, rseed=seed, return_variances=True)
        estimates.append(np.stack(values))
        reported.append(np.stack(variances))
    empirical = np.var(np.stack(estimates), axis=0, ddof=1)
    ratio = np.mean(np.stack(reported)) / np.mean(empirical)
    assert 0.7 < ratio < 1.4, ratio


@pytest.mark.parametrize(
    ("model", "local_smoothing"),
    [(torch_mlp, 0.0), (torch_mlp, 0.3), (keras_mlp, 0.3)],
)
def test_same_seed_same_values_whatever_the_batch_size(model, local_smoothing, monkeypatch):
    """Backgrounds, path positions and smoothing noise are fixed per sample and draw, not per batch."""
    explainer = GradientExplainer(model(), BG, batch_size=50, local_smoothing=local_smoothing)
    reference = np.stack(explainer.shap_values(X, nsamples=120, rseed=11))
    other_seed = np.stack(explainer.shap_values(X, nsamples=120, rseed=12))
    assert np.abs(reference - other_seed).max() > 1e-4
    for batch_size in (7, 1000):
        explainer.batch_size = batch_size
        np.testing.assert_allclose(
            np.stack(explainer.shap_values(X, nsamples=120, rseed=11)), reference, atol=1e-5
        )
    monkeypatch.setattr(gradient, "_MAX_GRADIENT_ELEMENTS", 1)  # one output per forward pass
    np.testing.assert_allclose(
        np.stack(explainer.shap_values(X, nsamples=120, rseed=11)), reference, atol=1e-5
    )


def test_local_smoothing_is_seeded_and_keeps_linear_exactness():
    mlp = GradientExplainer(torch_mlp(), BG, local_smoothing=0.5)
    first = np.stack(mlp.shap_values(X, nsamples=20, rseed=1))
    np.testing.assert_array_equal(first, np.stack(mlp.shap_values(X, nsamples=20, rseed=1)))
    plain = GradientExplainer(torch_mlp(), BG)
    assert np.abs(first - np.stack(plain.shap_values(X, nsamples=20, rseed=1))).max() > 1e-4
    model = torch_linear()
    values = GradientExplainer(model, BG, local_smoothing=0.5).shap_values(X, nsamples=4, rseed=2)
    expected = (X - BG.mean(0)) * model.weight.detach().numpy()[0]
    np.testing.assert_allclose(values[0], expected, rtol=1e-4, atol=1e-5)


# outputs, formats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["max", "min", "max_abs"])
def test_ranked_output_indexes_and_values(order):
    model = torch_mlp(n_outputs=5)
    explainer = GradientExplainer(model, BG)
    f_x = _torch_outputs(model, X)
    values, indexes = explainer.shap_values(X, nsamples=16, ranked_output=3, output_rank_order=order, rseed=4)
    keys = {"max": -f_x, "min": f_x, "max_abs": -np.abs(f_x)}[order]
    np.testing.assert_array_equal(indexes, np.argsort(keys, axis=1, kind="stable")[:, :3])
    assert indexes.dtype == np.int64 and len(values) == 3
    full = explainer.shap_values(X, nsamples=16, rseed=4)
    for r in range(3):
        expected = np.stack([full[indexes[i, r]][i] for i in range(len(X))])
        np.testing.assert_allclose(values[r], expected, rtol=1e-5, atol=1e-6)
    alias, alias_indexes = explainer.shap_values(
        X, nsamples=16, ranked_outputs=3, output_rank_order=order, rseed=4
    )
    np.testing.assert_array_equal(alias_indexes, indexes)


def test_formats_two_inputs_single_output_and_variances():
    two = GradientExplainer(torch_two_input(), [rng_data((6, 5)), rng_data((6, 4))])
    x = [rng_data((2, 5), 1), rng_data((2, 4), 2)]
    values, variances = two.shap_values(x, nsamples=8, return_variances=True)
    assert len(values) == 3 and len(values[0]) == 2
    assert values[0][0].shape == (2, 5) and values[0][1].shape == (2, 4)
    assert len(variances) == 3 and variances[2][1].shape == (2, 4) and (variances[2][1] >= 0).all()
    ranked, ranked_var, indexes = two.shap_values(x, nsamples=8, ranked_output=1, return_variances=True)
    assert (
        len(ranked) == 1
        and len(ranked[0]) == 2
        and ranked_var[0][0].shape == (2, 5)
        and indexes.shape == (2, 1)
    )
    single = GradientExplainer(torch_linear(n_outputs=1), BG)
    assert isinstance(single.shap_values(X, nsamples=4), np.ndarray)
    assert single.expected_value.shape == (1,)  # one entry per output, as DeepExplainer (and shap)


def test_call_returns_explanation_with_base_values():
    model = keras_mlp()
    explainer = GradientExplainer(model, BG)
    explanation = explainer(X, nsamples=10, rseed=0)
    assert isinstance(explanation, deepshap.Explanation)
    assert explanation.values.shape == (3, 6, 3)
    assert explanation.values.dtype == np.float32  # a float32 model's precision (float64 stays float64)
    np.testing.assert_allclose(explanation.base_values, np.tile(explainer.expected_value, (3, 1)), rtol=1e-6)
    np.testing.assert_allclose(explainer.expected_value, _keras_outputs(model, BG).mean(0), rtol=1e-5)
    np.testing.assert_array_equal(explanation.data, X)
    ranked = explainer(X, nsamples=10, ranked_output=2, rseed=0)
    assert ranked.values.shape == (3, 6, 2) and ranked.base_values.shape == (3, 2)


def test_accepts_torch_and_tf_tensors():
    tf = pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")

    model = torch_linear()
    explainer = GradientExplainer(model, tf.constant(BG))
    values = explainer.shap_values(torch.from_numpy(X), nsamples=2)
    np.testing.assert_allclose(
        values[0], (X - BG.mean(0)) * model.weight.detach().numpy()[0], rtol=1e-4, atol=1e-5
    )
    keras_explainer = GradientExplainer(keras_linear(), torch.from_numpy(BG))
    assert keras_explainer.shap_values(tf.constant(X), nsamples=2)[0].shape == (3, 6)


# bad input -------------------------------------------------------------------------------------------
def test_bad_input_errors_name_the_problem():
    explainer = GradientExplainer(torch_mlp(), BG)
    with pytest.raises(ValueError, match="samples of shape"):
        explainer.shap_values(X[:, :4])
    with pytest.raises(TypeError, match="integer values but the background data has float"):
        explainer.shap_values(X.astype(np.int64))
    nan_x = X.copy()
    nan_x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        explainer.shap_values(nan_x)
    with pytest.raises(ValueError, match="nsamples must be a positive integer"):
        explainer.shap_values(X, nsamples=0)
    with pytest.raises(ValueError, match="ranked_output must be between 1"):
        explainer.shap_values(X, ranked_output=9)
    with pytest.raises(ValueError, match="background needs at least one sample"):
        GradientExplainer(torch_mlp(), BG[:0])
    inf_bg = BG.copy()
    inf_bg[1, 1] = -np.inf
    with pytest.raises(ValueError, match="data contains NaN or infinite"):
        GradientExplainer(torch_mlp(), inf_bg)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        GradientExplainer(torch_mlp(), BG, batch_size=0)
    with pytest.raises(ValueError, match="local_smoothing must be"):
        GradientExplainer(torch_mlp(), BG, local_smoothing=-1)


def test_wrong_number_of_inputs_and_no_gradient():
    two = GradientExplainer(torch_two_input(), [rng_data((6, 5)), rng_data((6, 4))])
    with pytest.raises(ValueError, match="X has 1 inputs but the model was given background data for 2"):
        two.shap_values([rng_data((2, 5))])
    with pytest.raises(ValueError, match="the model takes 2 input"):
        GradientExplainer(keras_two_input(), rng_data((6, 5)))
    constant = GradientExplainer(torch_ignores_input(), rng_data((5, 4)))
    with pytest.raises(ValueError, match="does not depend on its input"):
        constant.shap_values(rng_data((2, 4)), nsamples=3)


def test_keras_model_without_gradient_is_reported():
    keras = pytest.importorskip("keras")

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.ops.stop_gradient(inputs)))
    with pytest.raises(ValueError, match="does not depend on its input"):
        GradientExplainer(model, rng_data((5, 4))).shap_values(rng_data((2, 4)), nsamples=3)


def test_keras_local_smoothing_is_seeded():
    explainer = GradientExplainer(keras_mlp(), BG, local_smoothing=0.3)
    first = np.stack(explainer.shap_values(X, nsamples=10, rseed=5))
    np.testing.assert_array_equal(first, np.stack(explainer.shap_values(X, nsamples=10, rseed=5)))
    assert np.abs(first - np.stack(explainer.shap_values(X, nsamples=10, rseed=6))).max() > 1e-4


# the seeds, run as written ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("no_tf_retracing")
def test_seed_000_multi_input_keras_runs_as_written(tmp_path):
    result = example_main("seed_000_multi_input_gradient.py", "tensorflow", "mlxtend")(
        str(tmp_path), epochs=1
    )
    values, variances = result["shap_values"], result["variances"]
    assert len(values) == 10 and len(values[0]) == 2
    assert values[0][0].shape == (3, 28, 28, 1) and values[0][1].shape == (3, 28, 28, 1)
    assert len(variances) == 10 and len(variances[0]) == 2
    assert result["accuracy"] > 0.8
    # 200 draws of a sharp softmax model: the Monte Carlo error is a few hundredths to ~0.2 (outputs in
    # [0, 1]); a wrong delta or gradient would be off by the size of the outputs themselves
    assert result["additivity_gap"] < 0.3
    # the walkthrough's claim: 200 samples give variances far below the size of the values themselves
    magnitude = np.mean([np.abs(v[0]).mean() for v in values])
    assert np.mean([np.sqrt(v[0]).mean() for v in variances]) < magnitude
    assert len(result["figures"]) == 3


@pytest.mark.slow
def test_seed_003_vgg16_layer_runs_as_written(tmp_path):
    result = example_main("seed_003_layer_gradient.py", "keras")(str(tmp_path), size=32, nsamples=50)
    values, indexes, outputs = result["shap_values"], result["indexes"], result["outputs"]
    assert result["layer_name"] == "block3_conv1"
    assert len(values) == 2 and values[0].shape == (2, 8, 8, 128)
    assert indexes.shape == (2, 2) and indexes.dtype == np.int64
    np.testing.assert_array_equal(indexes, np.argsort(-outputs, axis=1, kind="stable")[:, :2])
    assert (tmp_path / "layer_7.png").is_file()


def test_torch_layer_pair_accepts_integer_token_inputs():
    """Token ids feed an embedding before the explained layer; the delta is taken on the embeddings."""
    torch = pytest.importorskip("torch")

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(20, 4), torch.nn.Flatten(), torch.nn.Linear(20, 3)).eval()
    rng = np.random.default_rng(0)
    tokens_bg, tokens = rng.integers(0, 20, (8, 5)), rng.integers(0, 20, (2, 5))
    values = GradientExplainer((model, model[1]), tokens_bg).shap_values(tokens, nsamples=3, rseed=0)
    with torch.no_grad():
        z, z_bg = model[0](torch.from_numpy(tokens)).numpy(), model[0](torch.from_numpy(tokens_bg)).numpy()
    weights = model[2].weight.detach().numpy().reshape(3, 5, 4)
    for k in range(3):
        np.testing.assert_allclose(values[k], (z - z_bg.mean(0)) * weights[k], rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="float values but the background data has integer"):
        GradientExplainer((model, model[1]), tokens_bg).shap_values(tokens.astype(np.float32))


def test_keras_token_ids_beside_a_float_input_are_named_with_the_tuple_form_hint():
    """The float input has gradients; the int token input does not, and the error says which one."""
    keras = pytest.importorskip("keras")
    from keras import layers as L

    keras.utils.set_random_seed(0)
    tokens, features = keras.Input((4,), dtype="int32"), keras.Input((3,))
    hidden = L.Concatenate()([L.Flatten()(L.Embedding(10, 2)(tokens)), L.Dense(4)(features)])
    model = keras.Model([tokens, features], L.Dense(2)(hidden))
    rng = np.random.default_rng(0)
    background = [rng.integers(0, 10, (5, 4)), rng.standard_normal((5, 3)).astype(np.float32)]
    X = [rng.integers(0, 10, (2, 4)), rng.standard_normal((2, 3)).astype(np.float32)]
    with pytest.raises(ValueError, match=r"input\(s\) \[0\].*embedding_layer\.output"):
        GradientExplainer(model, background).shap_values(X, nsamples=4)

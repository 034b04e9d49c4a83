"""DeepExplainer's Keras values against their definitions: hand-computed DeepLIFT/Shapley values on
small models, the PyTorch backend's values on the same model, shap's where shap is exact, and the same
values whatever the scale of the activations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.keras_deep import (  # noqa: E402
    RTOL,
    activation_model,
    additivity_error,
    attribute,
    functional_model,
    maxpool_cnn,
    multiply_model,
    sequential_model,
)


def _mlp_deeplift(model: Any, X: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Hand-computed DeepLIFT (rescale) for Dense -> activation -> Dense, averaged over the background."""
    import tensorflow as tf

    dense1, act, dense2 = model.layers
    w1, b1 = (w.astype(np.float64) for w in dense1.get_weights())
    w2, _ = (w.astype(np.float64) for w in dense2.get_weights())

    def f(z: np.ndarray) -> np.ndarray:
        return np.asarray(act(tf.constant(z, tf.float64)))

    out = np.zeros((len(X), X.shape[1], w2.shape[1]))
    for i, x in enumerate(X.astype(np.float64)):
        for r in background.astype(np.float64):
            z, z_ref = x @ w1 + b1, r @ w1 + b1
            m = (f(z) - f(z_ref)) / (z - z_ref)
            out[i] += (x - r)[:, None] * (w1 * m[None, :]) @ w2
    return out / len(background)


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "swish", "tanh", "sigmoid", "elu", "softplus"])
def test_unary_rescale_rule_matches_hand_computed_deeplift(activation: str) -> None:
    """Composite activations (gelu's erfc, swish's custom gradient) reduce exactly to the rescale rule."""
    model = activation_model(activation)()
    X, background = rng_data((2, 6), seed=3), rng_data((5, 6), seed=4)
    phi, *_ = attribute(model, background, X)
    np.testing.assert_allclose(phi[0], _mlp_deeplift(model, X, background), rtol=1e-4, atol=1e-5)


def test_product_of_two_branches_is_the_two_player_shapley_split() -> None:
    model = multiply_model()
    X, background = rng_data((2, 6), seed=5), rng_data((4, 6), seed=6)
    phi, *_ = attribute(model, background, X)
    _, left, right, product, head = model.layers
    wa, ba = (w.astype(np.float64) for w in left.get_weights())
    wb, bb = (w.astype(np.float64) for w in right.get_weights())
    wh = head.get_weights()[0].astype(np.float64)
    expected = np.zeros((2, 6, 3))
    for i, x in enumerate(X.astype(np.float64)):
        for r in background.astype(np.float64):
            a, a_ref = x @ wa + ba, r @ wa + ba
            t, t_ref = np.tanh(x @ wb + bb), np.tanh(r @ wb + bb)
            m_t = (t - t_ref) / ((x - r) @ wb)  # tanh rescale
            # Shapley: the a-branch sees the t midpoint, the t-branch the a midpoint
            via_a = (wa * ((t + t_ref) / 2)[None, :]) @ wh
            via_t = (wb * (m_t * (a + a_ref) / 2)[None, :]) @ wh
            expected[i] += (x - r)[:, None] * (via_a + via_t)
    np.testing.assert_allclose(phi[0], expected / 4, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_gets_the_values_of_the_pytorch_rule(log: bool) -> None:
    """Keras' Softmax / LogSoftmax op and torch's softmax / log_softmax share one rule: same values."""
    torch = pytest.importorskip("torch")
    from keras import layers as L

    import deepshap

    activation = "log_softmax" if log else "softmax"
    model = sequential_model((6,), L.Dense(8, activation="relu"), L.Dense(4), L.Activation(activation))
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    net.append(torch.nn.LogSoftmax(1) if log else torch.nn.Softmax(1))
    with torch.no_grad():
        for linear, dense in ((net[0], model.layers[0]), (net[2], model.layers[1])):
            weight, bias = dense.get_weights()
            linear.weight.copy_(torch.from_numpy(weight.T)), linear.bias.copy_(torch.from_numpy(bias))
    X, background = rng_data((3, 6), seed=7) * 6, rng_data((5, 6), seed=8)  # far-apart logits
    phi, fx, fb, index = attribute(model, background, X)
    explainer = deepshap.DeepExplainer(net.double().eval(), torch.from_numpy(background).double())
    theirs = np.stack(explainer.shap_values(torch.from_numpy(X).double()), axis=-1)
    np.testing.assert_allclose(phi[0], theirs, rtol=1e-4, atol=1e-5)
    assert additivity_error(phi, fx, fb, index) <= RTOL


@pytest.mark.parametrize("gap", [20.0, 100.0, 1000.0])
def test_softmax_of_logits_far_from_the_references_adds_up(gap: float) -> None:
    """A confident sample: its top logit exceeds every reference logit by ``gap`` (a quotient of the
    two sides' sums lost the whole change at 20 and gave NaN from about 90)."""
    from keras import layers as L

    model = sequential_model((3,), L.Dense(3, use_bias=False), L.Activation("softmax"))
    model.layers[0].set_weights([np.eye(3, dtype=np.float32)])
    background = np.array([[0.0, 0.3, -0.2], [0.1, 0.0, 0.0]], dtype=np.float32)
    X = np.array([[gap, 0.5, 0.0]], dtype=np.float32)
    phi, fx, fb, index = attribute(model, background, X)
    assert np.isfinite(phi[0]).all()
    assert additivity_error(phi, fx, fb, index) <= RTOL


def test_log_softmax_and_max_reduction_are_additive() -> None:
    import keras
    from keras import layers as L

    model = functional_model(
        (6, 4),
        lambda x: L.Lambda(lambda z: keras.ops.log_softmax(z, axis=-1))(
            L.Dense(3)(L.GlobalMaxPooling1D()(L.Dense(5, activation="relu")(x)))
        ),
    )
    phi, fx, fb, index = attribute(model, rng_data((5, 6, 4), seed=9), rng_data((3, 6, 4), seed=10))
    assert additivity_error(phi, fx, fb, index) <= RTOL


def test_agrees_with_shap_on_a_relu_maxpool_cnn() -> None:
    """Where shap's TensorFlow DeepExplainer is exact (ReLU, MaxPool, linear ops) the values agree."""
    shap = pytest.importorskip("shap")

    model = maxpool_cnn()
    X = np.abs(rng_data((3, 10, 10, 1), seed=11))
    background = np.abs(rng_data((8, 10, 10, 1), seed=12))
    phi, *_ = attribute(model, background, X)
    expected = np.asarray(shap.DeepExplainer(model, background).shap_values(X, check_additivity=False))
    assert expected.shape == phi[0].shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(phi[0], expected, rtol=0, atol=RTOL * scale)


def test_same_values_as_the_pytorch_backend_on_the_same_model() -> None:
    """One algorithm, two frameworks: an MLP with GELU, LayerNorm, ReLU6 and softmax, weights copied."""
    torch = pytest.importorskip("torch")
    from keras import layers as L

    import deepshap as shap

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8),
        torch.nn.GELU(),
        torch.nn.LayerNorm(8),
        torch.nn.Linear(8, 5),
        torch.nn.ReLU6(),
        torch.nn.Linear(5, 3),
        torch.nn.Softmax(dim=1),
    ).eval()
    model = sequential_model(
        (6,),
        L.Dense(8, activation="gelu"),
        L.LayerNormalization(epsilon=1e-5),
        L.Dense(5),
        L.ReLU(max_value=6.0),
        L.Dense(3, activation="softmax"),
    )
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    model.layers[0].set_weights([state["0.weight"].T, state["0.bias"]])
    model.layers[1].set_weights([state["2.weight"], state["2.bias"]])
    model.layers[2].set_weights([state["3.weight"].T, state["3.bias"]])
    model.layers[4].set_weights([state["5.weight"].T, state["5.bias"]])
    X, background = rng_data((3, 6), seed=33, scale=2.0), rng_data((6, 6), seed=34, scale=2.0)
    ours = shap.DeepExplainer(model, background).shap_values(X)
    theirs = shap.DeepExplainer(net, torch.from_numpy(background)).shap_values(torch.from_numpy(X))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layer", ["leaky_relu", "abs", "max_pool"])
def test_small_activations_get_the_values_of_large_ones(layer: str) -> None:
    """``Dense(W s) -> op -> Dense(W2 / s)`` is the same function for every scale s, and for these
    positively homogeneous ops DeepLIFT's values are the same too. An absolute 1e-6 threshold on input
    differences sent activations of about 1e-6 to the midpoint derivative (wrong across a kink) or
    dropped their change (max pooling: all values 0)."""
    import keras
    from keras import layers as L
    from keras import ops

    ops_by_name = {
        "leaky_relu": L.LeakyReLU(negative_slope=0.1),
        "abs": L.Lambda(ops.abs),
        "max_pool": L.MaxPooling1D(2),
    }
    background, X = rng_data((8, 6), 1), rng_data((3, 6), 2) * 1.5

    def model(scale: float) -> Any:
        keras.utils.set_random_seed(0)
        first, last = L.Dense(8), L.Dense(3)
        reshape = [L.Reshape((8, 1))] if layer == "max_pool" else []
        built = keras.Sequential([keras.Input((6,)), first, *reshape, ops_by_name[layer], L.Flatten(), last])
        kernel, bias = first.get_weights()
        first.set_weights([kernel * scale, bias * scale])
        kernel, bias = last.get_weights()
        last.set_weights([kernel / scale, bias])
        return built

    values = {}
    for scale in (1.0, 1e-7):
        phi, fx, fb, index = attribute(model(scale), background, X)
        assert additivity_error(phi, fx, fb, index) < RTOL
        values[scale] = phi[0]
    assert np.abs(values[1.0]).max() > 0.01
    np.testing.assert_allclose(values[1e-7], values[1.0], atol=1e-5)


@pytest.mark.parametrize("body", ["unit_normalization", "sqrt"])
def test_a_square_root_of_zeros_in_sample_and_reference_gives_no_nan(body: str) -> None:
    """Black borders: sqrt and the norm of UnitNormalization see 0 in the sample and in the reference,
    where their derivative is infinite. That derivative stood in for the (undefined) secant and made
    0 * inf = NaN values; any finite multiplier keeps the sum, since the difference is 0."""
    from keras import layers as L
    from keras import ops

    images = np.abs(rng_data((11, 6, 6, 3), 3))
    images[:, 0] = 0.0  # the top row is black in every image
    first = L.UnitNormalization(axis=-1) if body == "unit_normalization" else L.Lambda(ops.sqrt)
    model = sequential_model(
        (6, 6, 3), first, L.Conv2D(4, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(2)
    )
    phi, fx, fb, index = attribute(model, images[:8], images[8:])
    assert np.all(np.isfinite(phi[0]))
    assert additivity_error(phi, fx, fb, index) < RTOL

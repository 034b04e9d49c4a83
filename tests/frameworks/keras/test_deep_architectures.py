"""DeepExplainer's Keras 3 / TensorFlow backend: op-level DeepLIFT/Shapley rules.

Properties checked: summation-to-delta (sum of attributions == f(x) - mean f(background)) on the
architectures of issue 4, equality with hand-computed DeepLIFT/Shapley values on small models, equality
with shap where shap is exact, invariance to chunking, unsupported ops raising by name, and no state left
behind after a call, whether it succeeds or fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.helpers.data import rng_data

RTOL = 1e-4


def _attribute(model: Any, background: Any, X: Any, batch_size: int = 64, index: Any = None) -> tuple:
    """(phi per input, f(x), mean f(background), output_index) through the backend."""
    from deepshap.frameworks import load_adapter
    from deepshap.frameworks.keras.deep import deep_attributions

    adapter = load_adapter(model, background)
    inputs = adapter.explained_inputs(adapter.to_inputs(X))
    n = int(inputs[0].shape[0])
    if index is None:
        index = np.tile(np.arange(adapter.n_outputs, dtype=np.int64), (n, 1))
    phi = deep_attributions(adapter, inputs, index, batch_size)
    fx = np.asarray(adapter.forward(inputs), dtype=np.float64)
    fb = np.asarray(adapter.forward(adapter.background), dtype=np.float64).mean(0)
    return phi, fx, fb, index


def _additivity_error(phi: list[np.ndarray], fx: np.ndarray, fb: np.ndarray, index: np.ndarray) -> float:
    """Largest |sum phi - (f(x) - E f(bg))| relative to the largest |f(x) - E f(bg)|."""
    n, r = index.shape
    total = sum(p.reshape(n, -1, r).astype(np.float64).sum(1) for p in phi)
    target = np.take_along_axis(fx - fb, index, axis=1)
    return float(np.abs(total - target).max() / max(np.abs(target).max(), 1e-12))


# model builders ------------------------------------------------------------------------------------
def _seq(shape: tuple[int, ...], *layer_list: Any, seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), *layer_list])


def _functional(shape: tuple[int, ...], body: Callable[[Any], Any], seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    return keras.Model(inputs, body(inputs))


def _batchnorm() -> Any:
    from keras import layers as L

    model = _seq((6, 6, 2), L.Conv2D(4, 3), L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(3))
    bn = model.layers[1]  # non-trivial moving statistics, as after training
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.2, mean + 0.3, var * 2.0])
    return model


def _leaky() -> Any:
    from keras import layers as L

    return _seq((6,), L.Dense(8), L.LeakyReLU(negative_slope=0.1), L.Dense(3))


def _relu6() -> Any:
    from keras import layers as L

    return _seq((6,), L.Dense(8), L.ReLU(max_value=6.0), L.Dense(3))


def _depthwise() -> Any:
    from keras import layers as L

    return _seq(
        (6, 6, 2), L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"), L.Flatten(), L.Dense(3)
    )


def _activation(name: str) -> Callable[[], Any]:
    def build() -> Any:
        import keras
        from keras import layers as L

        act = {"gelu_tanh": lambda x: keras.activations.gelu(x, approximate=True)}.get(name, name)
        return _seq((6,), L.Dense(8), L.Activation(act), L.Dense(3))

    return build


def _multiply() -> Any:
    from keras import layers as L

    return _functional(
        (6,), lambda x: L.Dense(3)(L.Multiply()([L.Dense(5)(x), L.Dense(5, activation="tanh")(x)]))
    )


def _upsampling() -> Any:
    from keras import layers as L

    return _seq(
        (3, 3, 2),
        L.UpSampling2D(),
        L.Conv2D(2, 2, activation="relu"),
        L.UpSampling2D(interpolation="bilinear"),
        L.Flatten(),
        L.Dense(3),
    )


def _conv_transpose() -> Any:
    from keras import layers as L

    return _seq((4, 4, 2), L.Conv2DTranspose(3, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(3))


def _attention() -> Any:
    from keras import layers as L

    def body(x: Any) -> Any:
        h = L.Dense(8)(x)
        h = L.LayerNormalization()(h + L.MultiHeadAttention(num_heads=2, key_dim=4)(h, h))
        h = L.Dense(8, activation="gelu")(h)
        return L.Dense(3)(L.Flatten()(h))

    return _functional((5, 4), body)


def _layernorm() -> Any:
    from keras import layers as L

    return _seq((6,), L.Dense(8), L.LayerNormalization(), L.Dense(3))


def _groupnorm() -> Any:
    from keras import layers as L

    return _seq((4, 4, 4), L.GroupNormalization(groups=2), L.Flatten(), L.Dense(3))


def _residual_concat() -> Any:
    from keras import layers as L

    def body(x: Any) -> Any:
        h = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        h = L.Add()([h, L.Conv2D(4, 3, padding="same")(h)])
        h = L.ReLU()(h)
        h = L.Concatenate()([h, L.Conv2D(2, 1, activation="relu")(x)])
        return L.Dense(3)(L.Flatten()(h))

    return _functional((5, 5, 2), body)


def _softmax() -> Any:
    from keras import layers as L

    return _seq((6,), L.Dense(8, activation="relu"), L.Dense(4, activation="softmax"))


def _maxpool_cnn(output_activation: str | None = None) -> Any:
    from keras import layers as L

    return _seq(
        (10, 10, 1),
        L.Conv2D(4, 3, activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(6, 3, activation="relu"),
        L.Flatten(),
        L.Dense(8, activation="relu"),
        L.Dense(3, activation=output_activation),
    )


def _overlapping_pool() -> Any:
    from keras import layers as L

    return _seq(
        (7, 7, 2),
        L.Conv2D(3, 2, padding="same", activation="relu"),
        L.MaxPooling2D(3, strides=2, padding="same"),
        L.MaxPooling2D(2, strides=1),
        L.Flatten(),
        L.Dense(3),
    )


ARCHITECTURES = {
    "batchnorm": _batchnorm,
    "leaky_relu": _leaky,
    "relu_max_value_6": _relu6,
    "depthwise_conv": _depthwise,
    "gelu": _activation("gelu"),
    "gelu_tanh": _activation("gelu_tanh"),
    "swish": _activation("swish"),
    "multiply_branches": _multiply,
    "upsampling": _upsampling,
    "conv_transpose": _conv_transpose,
    "multi_head_attention": _attention,
    "layer_norm": _layernorm,
    "group_norm": _groupnorm,
    "add_residual_concat": _residual_concat,
    "softmax": _softmax,
    "maxpool_cnn": _maxpool_cnn,
    "maxpool_overlapping_same": _overlapping_pool,
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_additivity_on_modern_architectures(name: str) -> None:
    model = ARCHITECTURES[name]()
    shape = tuple(model.inputs[0].shape[1:])
    phi, fx, fb, index = _attribute(model, rng_data((6, *shape), seed=1), rng_data((3, *shape), seed=2))
    assert phi[0].shape == (3, *shape, index.shape[1])
    assert _additivity_error(phi, fx, fb, index) <= RTOL


# exact values ---------------------------------------------------------------------------------------
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
    model = _activation(activation)()
    X, background = rng_data((2, 6), seed=3), rng_data((5, 6), seed=4)
    phi, *_ = _attribute(model, background, X)
    np.testing.assert_allclose(phi[0], _mlp_deeplift(model, X, background), rtol=1e-4, atol=1e-5)


def test_product_of_two_branches_is_the_two_player_shapley_split() -> None:
    model = _multiply()
    X, background = rng_data((2, 6), seed=5), rng_data((4, 6), seed=6)
    phi, *_ = _attribute(model, background, X)
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
    import torch
    from keras import layers as L

    import deepshap

    activation = "log_softmax" if log else "softmax"
    model = _seq((6,), L.Dense(8, activation="relu"), L.Dense(4), L.Activation(activation))
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    net.append(torch.nn.LogSoftmax(1) if log else torch.nn.Softmax(1))
    with torch.no_grad():
        for linear, dense in ((net[0], model.layers[0]), (net[2], model.layers[1])):
            weight, bias = dense.get_weights()
            linear.weight.copy_(torch.from_numpy(weight.T)), linear.bias.copy_(torch.from_numpy(bias))
    X, background = rng_data((3, 6), seed=7) * 6, rng_data((5, 6), seed=8)  # far-apart logits
    phi, fx, fb, index = _attribute(model, background, X)
    explainer = deepshap.DeepExplainer(net.double().eval(), torch.from_numpy(background).double())
    theirs = np.stack(explainer.shap_values(torch.from_numpy(X).double()), axis=-1)
    np.testing.assert_allclose(phi[0], theirs, rtol=1e-4, atol=1e-5)
    assert _additivity_error(phi, fx, fb, index) <= RTOL


@pytest.mark.parametrize("gap", [20.0, 100.0, 1000.0])
def test_softmax_of_logits_far_from_the_references_adds_up(gap: float) -> None:
    """A confident sample: its top logit exceeds every reference logit by ``gap`` (a quotient of the
    two sides' sums lost the whole change at 20 and gave NaN from about 90)."""
    from keras import layers as L

    model = _seq((3,), L.Dense(3, use_bias=False), L.Activation("softmax"))
    model.layers[0].set_weights([np.eye(3, dtype=np.float32)])
    background = np.array([[0.0, 0.3, -0.2], [0.1, 0.0, 0.0]], dtype=np.float32)
    X = np.array([[gap, 0.5, 0.0]], dtype=np.float32)
    phi, fx, fb, index = _attribute(model, background, X)
    assert np.isfinite(phi[0]).all()
    assert _additivity_error(phi, fx, fb, index) <= RTOL


def test_log_softmax_and_max_reduction_are_additive() -> None:
    import keras
    from keras import layers as L

    model = _functional(
        (6, 4),
        lambda x: L.Lambda(lambda z: keras.ops.log_softmax(z, axis=-1))(
            L.Dense(3)(L.GlobalMaxPooling1D()(L.Dense(5, activation="relu")(x)))
        ),
    )
    phi, fx, fb, index = _attribute(model, rng_data((5, 6, 4), seed=9), rng_data((3, 6, 4), seed=10))
    assert _additivity_error(phi, fx, fb, index) <= RTOL


def test_agrees_with_shap_on_a_relu_maxpool_cnn() -> None:
    """Where shap's TensorFlow DeepExplainer is exact (ReLU, MaxPool, linear ops) the values agree."""
    import shap

    model = _maxpool_cnn()
    X = np.abs(rng_data((3, 10, 10, 1), seed=11))
    background = np.abs(rng_data((8, 10, 10, 1), seed=12))
    phi, *_ = _attribute(model, background, X)
    expected = np.asarray(shap.DeepExplainer(model, background).shap_values(X, check_additivity=False))
    assert expected.shape == phi[0].shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(phi[0], expected, rtol=0, atol=RTOL * scale)


# model forms, inputs, chunking -----------------------------------------------------------------------
def test_tuple_form_and_tf_tensors_give_the_model_values() -> None:
    import tensorflow as tf

    model = _maxpool_cnn("softmax")
    X, background = rng_data((2, 10, 10, 1), seed=13), rng_data((6, 10, 10, 1), seed=14)
    phi, *_ = _attribute(model, background, X)
    pair = (model.layers[0].input, model.layers[-1].output)
    phi_pair, *_ = _attribute(pair, tf.constant(background), tf.constant(X))
    np.testing.assert_allclose(phi_pair[0], phi[0], rtol=1e-5, atol=1e-7)


def test_chunking_and_per_sample_outputs_do_not_change_values() -> None:
    model = _attention()
    X, background = rng_data((3, 5, 4), seed=15), rng_data((7, 5, 4), seed=16)
    phi, *_ = _attribute(model, background, X, batch_size=1000)
    phi_small, *_ = _attribute(model, background, X, batch_size=3)
    np.testing.assert_allclose(phi_small[0], phi[0], rtol=1e-4, atol=1e-6)
    index = np.array([[2, 0], [1, 2], [0, 1]], dtype=np.int64)
    phi_ranked, fx, fb, _ = _attribute(model, background, X, batch_size=5, index=index)
    expected = np.stack([phi[0][i][..., index[i]] for i in range(3)])
    np.testing.assert_allclose(phi_ranked[0], expected, rtol=1e-4, atol=1e-6)
    assert _additivity_error(phi_ranked, fx, fb, index) <= RTOL


def test_many_outputs_run_in_groups() -> None:
    from keras import layers as L

    from deepshap.frameworks.keras.deep import OUTPUTS_PER_TRACE

    n_outputs = OUTPUTS_PER_TRACE + 3
    model = _seq((6,), L.Dense(8, activation="tanh"), L.Dense(n_outputs, activation="softmax"))
    X, background = rng_data((2, 6), seed=31), rng_data((5, 6), seed=32)
    phi, fx, fb, index = _attribute(model, background, X)
    assert phi[0].shape == (2, 6, n_outputs)
    assert _additivity_error(phi, fx, fb, index) <= RTOL
    last = np.full((2, 1), n_outputs - 1, dtype=np.int64)
    phi_last, *_ = _attribute(model, background, X, index=last)
    np.testing.assert_allclose(phi_last[0][..., 0], phi[0][..., -1], rtol=1e-5, atol=1e-8)


def test_two_input_model_is_additive() -> None:
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    a, b = keras.Input((5,)), keras.Input((3, 2))
    h = L.Multiply()([L.Dense(4, activation="swish")(a), L.Dense(4)(L.Flatten()(b))])
    model = keras.Model([a, b], L.Dense(2, activation="softmax")(h))
    background = [rng_data((4, 5), seed=17), rng_data((4, 3, 2), seed=18)]
    X = [rng_data((2, 5), seed=19), rng_data((2, 3, 2), seed=20)]
    phi, fx, fb, index = _attribute(model, background, X)
    assert [p.shape for p in phi] == [(2, 5, 2), (2, 3, 2, 2)]
    assert _additivity_error(phi, fx, fb, index) <= RTOL


def _more_layers(name: str) -> Any:
    import keras
    from keras import layers as L

    def branches(x: Any) -> Any:
        pairs = [(L.Dense(3)(x), L.Dense(3)(x)) for _ in range(4)]
        merged = [L.Maximum()(list(pairs[0])), L.Minimum()(list(pairs[1])), L.Dot(axes=1)(list(pairs[2]))]
        return L.Dense(2)(L.Concatenate()([*merged, L.Subtract()(list(pairs[3]))]))

    inner = _seq((6,), L.Dense(5, activation="relu"), L.Dense(4, activation="elu"), seed=1)
    bodies = {
        "min_max_dot_subtract": ((6,), branches),
        "logsumexp": ((6,), lambda x: L.Lambda(lambda z: keras.ops.logsumexp(z, axis=-1))(L.Dense(4)(x))),
        "causal_attention": (
            (5, 4),
            lambda x: L.Dense(2)(L.Flatten()(L.MultiHeadAttention(2, 2)(x, x, use_causal_mask=True))),
        ),
        "nested_model": ((6,), lambda x: L.Dense(2)(inner(x))),
        "mish_hard_silu": ((6,), lambda x: L.Dense(2)(L.Activation("hard_silu")(L.Activation("mish")(x)))),
        "dilated_separable": (
            (9, 9, 1),
            lambda x: L.Dense(2)(
                L.Flatten()(L.SeparableConv2D(2, 3, dilation_rate=2, activation="hard_sigmoid")(x))
            ),
        ),
    }
    shape, body = bodies[name]
    return _functional(shape, body)


@pytest.mark.parametrize(
    "name",
    [
        "min_max_dot_subtract",
        "logsumexp",
        "causal_attention",
        "nested_model",
        "mish_hard_silu",
        "dilated_separable",
    ],
)
def test_additivity_on_more_layers(name: str) -> None:
    model = _more_layers(name)
    shape = tuple(model.inputs[0].shape[1:])
    phi, fx, fb, index = _attribute(model, rng_data((5, *shape), seed=27), rng_data((2, *shape), seed=28))
    assert _additivity_error(phi, fx, fb, index) <= RTOL


# errors and state ------------------------------------------------------------------------------------
def _model_gradients(model: Any, X: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(model(x, training=False))
    return np.asarray(tape.gradient(out, x))


def _graph_gradients(model: Any, X: np.ndarray) -> np.ndarray:
    """Gradients from a fresh traced function (where a leaked override map or registry entry would show)."""
    import tensorflow as tf

    @tf.function
    def grads(x: Any) -> Any:
        return tf.gradients(tf.reduce_sum(model(x, training=False)), x)[0]

    return np.asarray(grads(tf.constant(X)))


@pytest.mark.parametrize(
    ("op", "expression"),
    [
        ("Floor", lambda z: __import__("keras").ops.floor(z)),
        ("boolean", lambda z: z * __import__("keras").ops.cast(z > 0, "float32")),
    ],
)
def test_unsupported_op_raises_by_name_and_leaves_nothing_patched(op: str, expression: Callable) -> None:
    from keras import layers as L

    from deepshap.frameworks.keras import deep_rules

    bad = _seq((6,), L.Dense(8, activation="relu"), L.Lambda(expression), L.Dense(3))
    good = _relu6()
    X, background = rng_data((2, 6), seed=21), rng_data((4, 6), seed=22)
    before = (_model_gradients(good, X), _graph_gradients(good, X), _graph_gradients(bad, X))
    with pytest.raises(deep_rules.UnsupportedOperationError, match=op):
        _attribute(bad, background, X)
    assert deep_rules._ACTIVE.get() is None
    after = (_model_gradients(good, X), _graph_gradients(good, X), _graph_gradients(bad, X))
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    _attribute(good, background, X)  # a successful call afterwards, then the same check
    assert deep_rules._ACTIVE.get() is None
    np.testing.assert_array_equal(_graph_gradients(good, X), before[1])


def test_where_whose_condition_flips_gives_the_rescale_rule_of_the_activation() -> None:
    """LeakyReLU written as ``where(z > 0, z, 0.1 z)``: where the input and the reference fall on opposite
    sides, the change goes through both branches in proportion to theirs, which for a one-variable
    activation is the rescale rule of the whole: the same values as Keras' own LeakyReLU."""
    import keras
    from keras import layers as L

    written = _seq((6,), L.Dense(4), L.Lambda(lambda z: keras.ops.where(z > 0, z, 0.1 * z)), L.Dense(2))
    builtin = _seq((6,), L.Dense(4), L.LeakyReLU(negative_slope=0.1), L.Dense(2))
    builtin.set_weights(written.get_weights())
    X, background = rng_data((3, 6), seed=30), rng_data((4, 6), seed=29)
    hidden = np.asarray(written.layers[0](X)), np.asarray(written.layers[0](background))
    assert ((hidden[0][:, None] > 0) != (hidden[1][None] > 0)).any(), "some conditions flip"
    phi, fx, fb, index = _attribute(written, background, X)
    assert _additivity_error(phi, fx, fb, index) < 1e-5
    np.testing.assert_allclose(phi[0], _attribute(builtin, background, X)[0][0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["elu", "threshold", "soft_shrink", "hard_shrink", "sparse_plus"])
def test_keras_activations_built_on_where_add_up(name: str) -> None:
    from keras import layers as L

    activation = {
        "elu": L.ELU(alpha=0.5),
        "threshold": L.ReLU(threshold=0.3),
    }.get(name) or L.Activation(name)
    model = _seq((6,), L.Dense(8), activation, L.Dense(3))
    phi, fx, fb, index = _attribute(model, rng_data((5, 6), seed=32), rng_data((3, 6), seed=31))
    assert _additivity_error(phi, fx, fb, index) < 1e-5


def test_a_step_built_on_where_raises_naming_its_op() -> None:
    """``where(z > 0, 1, 0)`` chooses between constants by the input: no DeepLIFT rule, and no silent
    zero either (it used to contribute nothing)."""
    import keras
    from keras import layers as L

    from deepshap.frameworks.keras import deep_rules

    model = _seq((6,), L.Dense(4), L.Lambda(lambda z: z + keras.ops.where(z > 0, 1.0, 0.0)), L.Dense(2))
    X = rng_data((2, 6), seed=30)
    before = _graph_gradients(model, X)
    with pytest.raises(deep_rules.UnsupportedOperationError, match=r"SelectV2.*step function"):
        _attribute(model, rng_data((4, 6), seed=29), X)
    assert deep_rules._ACTIVE.get() is None
    np.testing.assert_array_equal(_graph_gradients(model, X), before)


def test_a_flipping_condition_between_unchanged_values_is_an_error() -> None:
    """The condition comes from one input, the values it picks from another that the reference shares:
    the whole change is caused through the condition, which DeepLIFT cannot credit."""
    import keras
    import tensorflow as tf
    from keras import layers as L

    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,)), keras.Input((4,))
    z, w = L.Dense(4)(a), L.Dense(4)(b)
    model = keras.Model(
        [a, b], L.Dense(2)(L.Lambda(lambda t: keras.ops.where(t[0] > 0, t[1], 2 * t[1]))([z, w]))
    )
    shared = rng_data((1, 4), seed=33)
    X = [rng_data((2, 4), seed=34), np.repeat(shared, 2, axis=0)]
    background = [rng_data((3, 4), seed=35), np.repeat(shared, 3, axis=0)]
    with pytest.raises(tf.errors.InvalidArgumentError, match="neither of the values it chooses between"):
        _attribute(model, background, X)


def test_recurrent_layer_raises_naming_its_op() -> None:
    from keras import layers as L

    from deepshap.frameworks.keras.deep import UnsupportedOperationError

    model = _seq((4, 3), L.LSTM(3), L.Dense(2))
    with pytest.raises(UnsupportedOperationError, match="op type 'TensorList|op type 'While"):
        _attribute(model, rng_data((3, 4, 3)), rng_data((1, 4, 3)))


def test_rule_gradient_outside_a_trace_raises() -> None:
    import tensorflow as tf

    from deepshap.frameworks.keras import deep_rules

    @tf.function
    def stray(x: Any) -> Any:
        graph = tf.compat.v1.get_default_graph()
        with graph.gradient_override_map({"Relu": deep_rules.RULE_GRADIENT}):
            y = tf.nn.relu(x)
        return tf.gradients(y, x)[0]

    with pytest.raises(RuntimeError, match="no DeepExplainer trace is active"):
        stray(tf.constant([1.0, -1.0]))


def test_bad_arguments_raise_clear_errors() -> None:
    from deepshap.frameworks import load_adapter
    from deepshap.frameworks.keras.deep import deep_attributions

    adapter = load_adapter(_leaky(), rng_data((4, 6)))
    inputs = adapter.to_inputs(rng_data((2, 6)))
    with pytest.raises(ValueError, match="batch_size"):
        deep_attributions(adapter, inputs, np.zeros((2, 1), dtype=np.int64), 0)
    with pytest.raises(ValueError, match="output_index"):
        deep_attributions(adapter, inputs, np.zeros((3, 1), dtype=np.int64), 8)


# through the public DeepExplainer ---------------------------------------------------------------------
def test_deep_explainer_takes_tf_tensors_and_returns_shap_formats() -> None:
    """Seed 004: tf.Tensor background and inputs; one array per output; additivity checked by default."""
    import tensorflow as tf

    import deepshap as shap

    model = _maxpool_cnn("softmax")
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

    model = _maxpool_cnn("softmax")
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

    model = _seq((6,), L.Dense(4), L.Lambda(lambda z: keras.ops.round(z)), L.Dense(2))
    explainer = shap.DeepExplainer(model, rng_data((4, 6)))
    with pytest.raises(UnsupportedOperationError, match="'Round'"):
        explainer.shap_values(rng_data((1, 6)))


# the seeds, run as written -----------------------------------------------------------------------------
def _run_example(name: str) -> Callable[..., dict[str, Any]]:
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / name
    return runpy.run_path(str(path), run_name="example")["main"]


@pytest.mark.slow
@pytest.mark.usefixtures("no_tf_retracing")
def test_seed_002_deep_mnist_runs_as_written(tmp_path: Any) -> None:
    result = _run_example("seed_002_deep_mnist.py")(str(tmp_path), n_train=600, epochs=1)
    values = result["shap_values"]
    assert len(values) == 10 and values[0].shape == (5, 28, 28, 1)
    assert result["additivity_gap"] < 1e-4
    for a, b in zip(values, result["shap_values_tuple"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-8)
    assert (tmp_path / "deep_mnist.png").is_file()


@pytest.mark.slow
@pytest.mark.usefixtures("no_tf_retracing")
def test_seed_004_deep_tf_tensors_runs_as_written(tmp_path: Any) -> None:
    result = _run_example("seed_004_deep_tf_tensors.py")(str(tmp_path), n_train=600, epochs=1)
    values = result["shap_values"]
    assert len(values) == 10 and values[0].shape == (1, 28, 28, 1)
    assert result["additivity_gap"] < 1e-4
    assert (tmp_path / "deep_tf_tensors.png").is_file()


def test_same_values_as_the_pytorch_backend_on_the_same_model() -> None:
    """One algorithm, two frameworks: an MLP with GELU, LayerNorm, ReLU6 and softmax, weights copied."""
    import torch
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
    model = _seq(
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


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_convolutions_are_exactly_additive(groups: int) -> None:
    """Keras runs a grouped Conv2D (ConvNeXt's depthwise 7x7) as a nested XLA-compiled tf.function: one
    call op the rule overrides cannot reach. Its body is linear, so its ordinary gradient is the exact
    multiplier, and the ReLU after it still gets its rule (a plain gradient would break additivity)."""
    from keras import layers as L

    model = _seq((8, 8, 4), L.Conv2D(4, 3, groups=groups), L.ReLU(), L.Flatten(), L.Dense(2))
    phi, fx, fb, index = _attribute(model, rng_data((5, 8, 8, 4), seed=36), rng_data((3, 8, 8, 4), seed=37))
    assert np.abs(fx - fb).max() > 1e-2
    assert _additivity_error(phi, fx, fb, index) < RTOL


def test_a_nonlinear_nested_tf_function_call_names_the_op_inside() -> None:
    """A layer whose call is a tf.function computing a nonlinearity cannot pass through with its plain
    gradient: the error names the call and the op inside it."""
    import keras
    import tensorflow as tf
    from keras import layers as L

    from deepshap.frameworks.keras import deep_rules

    class CompiledTanh(L.Layer):
        def call(self, x: Any) -> Any:
            return tf.function(tf.math.tanh)(x)

    model = _seq((6,), L.Dense(4), CompiledTanh(), L.Dense(2))
    assert isinstance(model, keras.Model)
    with pytest.raises(deep_rules.UnsupportedOperationError, match="nested tf.function call.*'Tanh'"):
        _attribute(model, rng_data((3, 6), seed=36), rng_data((2, 6), seed=37))


# findings of a review of 353 one-op models ---------------------------------------------------------
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
        phi, fx, fb, index = _attribute(model(scale), background, X)
        assert _additivity_error(phi, fx, fb, index) < RTOL
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
    model = _seq((6, 6, 3), first, L.Conv2D(4, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(2))
    phi, fx, fb, index = _attribute(model, images[:8], images[8:])
    assert np.all(np.isfinite(phi[0]))
    assert _additivity_error(phi, fx, fb, index) < RTOL

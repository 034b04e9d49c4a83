"""The Keras adapter: forward passes and output gradients against a GradientTape, several inputs, layer
tuples fed the layer's activations, gradients in groups of output columns."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from deepshap.frameworks import load_adapter  # noqa: E402
from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.keras_models import keras_cnn, keras_mlp, keras_two_input  # noqa: E402

X6 = rng_data((5, 6), seed=1)
BG6 = rng_data((7, 6), seed=2)


def _torch(x: np.ndarray):
    torch = pytest.importorskip("torch")

    return torch.from_numpy(x)


def test_keras_forward_and_gradients_match_tape():
    import tensorflow as tf

    model = keras_mlp()
    adapter = load_adapter(model, BG6)
    assert (adapter.framework, adapter.multi_input, adapter.n_outputs) == ("tensorflow", False, 3)
    xs = adapter.to_inputs(tf.constant(X6))
    np.testing.assert_allclose(adapter.to_numpy(adapter.forward(xs)), model(X6, training=False), rtol=1e-6)
    index = np.array([[2, 0], [1, 1], [0, 2], [2, 2], [1, 0]])
    (grads,) = adapter.output_gradients(xs, index)
    x = tf.constant(X6)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)
    jac = tape.batch_jacobian(out, x).numpy()  # (5, 3, 6)
    np.testing.assert_allclose(
        grads.numpy(), np.take_along_axis(jac, index[:, :, None], 1), rtol=1e-5, atol=1e-6
    )


def test_keras_two_inputs_and_torch_tensor_data():
    pytest.importorskip("torch")
    model = keras_two_input()
    a, b = rng_data((4, 5), 3), rng_data((4, 4), 4)
    adapter = load_adapter(model, [_torch(a), b])
    assert adapter.multi_input and adapter.n_inputs == 2
    xs = adapter.to_inputs([a[:2], b[:2]])
    np.testing.assert_allclose(adapter.to_numpy(adapter.forward(xs)), model([a[:2], b[:2]]), rtol=1e-6)
    grads = adapter.output_gradients(xs, np.tile(np.arange(3), (2, 1)))
    assert [tuple(g.shape) for g in grads] == [(2, 3, 5), (2, 3, 4)]


def test_keras_layer_tuple_is_fed_layer_activations():
    import keras

    model = keras_cnn()
    head = keras.Model(model.inputs[0], model.layers[1].output)
    x = rng_data((3, 8, 8, 1), 6)
    z_bg, z = np.asarray(head(rng_data((5, 8, 8, 1), 5))), np.asarray(head(x))
    adapter = load_adapter((model.layers[2].input, model.layers[-1].output), z_bg)
    assert adapter.n_inputs == 1 and adapter.n_outputs == 4
    np.testing.assert_allclose(adapter.to_numpy(adapter.forward(adapter.to_inputs(z))), model(x), rtol=1e-5)


def test_keras_output_gradients_in_groups_of_columns(monkeypatch):
    from deepshap.frameworks.keras import model as keras_model

    adapter = load_adapter(keras_mlp(n_outputs=5), BG6)
    xs = adapter.to_inputs(X6)
    index = np.tile(np.array([4, 0, 3, 1, 2]), (5, 1))
    (together,) = adapter.output_gradients(xs, index)
    monkeypatch.setattr(keras_model, "_COLUMNS_PER_TRACE", 2)
    (grouped,) = adapter.output_gradients(xs, index)
    assert tuple(grouped.shape) == (5, 5, 6)
    np.testing.assert_allclose(grouped.numpy(), together.numpy(), rtol=1e-6)

"""Conditions computed from the input in Keras models: a where whose condition flips gets the rescale rule
of the activation it writes; a step, or a flip between values the reference shares, is an error."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.keras_deep import additivity_error, attribute, graph_gradients, sequential_model  # noqa: E402


def test_where_whose_condition_flips_gives_the_rescale_rule_of_the_activation() -> None:
    """LeakyReLU written as ``where(z > 0, z, 0.1 z)``: where the input and the reference fall on opposite
    sides, the change goes through both branches in proportion to theirs, which for a one-variable
    activation is the rescale rule of the whole: the same values as Keras' own LeakyReLU."""
    import keras
    from keras import layers as L

    written = sequential_model(
        (6,), L.Dense(4), L.Lambda(lambda z: keras.ops.where(z > 0, z, 0.1 * z)), L.Dense(2)
    )
    builtin = sequential_model((6,), L.Dense(4), L.LeakyReLU(negative_slope=0.1), L.Dense(2))
    builtin.set_weights(written.get_weights())
    X, background = rng_data((3, 6), seed=30), rng_data((4, 6), seed=29)
    hidden = np.asarray(written.layers[0](X)), np.asarray(written.layers[0](background))
    assert ((hidden[0][:, None] > 0) != (hidden[1][None] > 0)).any(), "some conditions flip"
    phi, fx, fb, index = attribute(written, background, X)
    assert additivity_error(phi, fx, fb, index) < 1e-5
    np.testing.assert_allclose(phi[0], attribute(builtin, background, X)[0][0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["elu", "threshold", "soft_shrink", "hard_shrink", "sparse_plus"])
def test_keras_activations_built_on_where_add_up(name: str) -> None:
    from keras import layers as L

    activation = {
        "elu": L.ELU(alpha=0.5),
        "threshold": L.ReLU(threshold=0.3),
    }.get(name) or L.Activation(name)
    model = sequential_model((6,), L.Dense(8), activation, L.Dense(3))
    phi, fx, fb, index = attribute(model, rng_data((5, 6), seed=32), rng_data((3, 6), seed=31))
    assert additivity_error(phi, fx, fb, index) < 1e-5


def test_a_step_built_on_where_raises_naming_its_op() -> None:
    """``where(z > 0, 1, 0)`` chooses between constants by the input: no DeepLIFT rule, and no silent
    zero either (it used to contribute nothing)."""
    import keras
    from keras import layers as L

    from deepshap.frameworks.keras import deep_rules

    model = sequential_model(
        (6,), L.Dense(4), L.Lambda(lambda z: z + keras.ops.where(z > 0, 1.0, 0.0)), L.Dense(2)
    )
    X = rng_data((2, 6), seed=30)
    before = graph_gradients(model, X)
    with pytest.raises(deep_rules.UnsupportedOperationError, match=r"SelectV2.*step function"):
        attribute(model, rng_data((4, 6), seed=29), X)
    assert deep_rules._ACTIVE.get() is None
    np.testing.assert_array_equal(graph_gradients(model, X), before)


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
        attribute(model, background, X)

"""The model-randomisation check: the re-initialised copy changes, the user's model does not."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from deepshap import metrics
from tests.helpers import games


def test_torch_linear_model_rank_correlation_in_closed_form():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    before = net[1].weight.detach().clone()
    x, background = games.images(3, 1), games.images(4, 2)
    delta = x - background.mean(axis=0)

    def explain(model):  # exact Shapley values of a linear model: w * (x - E b)
        weights = model[1].weight.detach().numpy().T
        return (delta.reshape(3, -1, 1) * weights[None]).reshape(3, *games.SHAPE, 2)

    report = metrics.randomisation_check(net, explain, n_layers=1, seed=1)
    assert torch.equal(net[1].weight, before)  # the user's model is untouched
    randomised, names = metrics.randomise_top_layers(net, 1, seed=1)
    assert names == ["1"]
    trained, changed = explain(net), explain(randomised)
    expected = spearmanr(trained[1, ..., 0].ravel(), changed[1, ..., 0].ravel()).statistic
    assert report.spearman.shape == (3, 2)
    assert report.spearman[1, 0] == pytest.approx(expected)
    assert np.all(report.spearman < 0.9)


@pytest.mark.slow
def test_keras_top_layer_is_reinitialised():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    original = [w.copy() for w in model.get_weights()]
    randomised, names = metrics.randomise_top_layers(model, 1, seed=0)
    assert names == [model.layers[-1].name]
    after = randomised.get_weights()
    np.testing.assert_array_equal(after[0], original[0])  # lower layer kept
    assert not np.allclose(after[2], original[2])  # top kernel re-drawn
    for kept, now in zip(original, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)

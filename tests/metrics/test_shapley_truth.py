"""The sampled truth: exact on linear and pairwise games, covered by its interval on a three-way one."""

import numpy as np
import pytest

from deepshap import metrics
from tests.helpers import games


def test_linear_model_is_exact_with_zero_error():
    weights = np.random.default_rng(1).normal(size=(16, 3))
    x, background = games.images(3, 2), games.images(5, 3)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(
        games.linear(weights), x, background, regions, max_permutations=8, progress=False
    )
    expected = regions.sum_values(games.linear_truth(weights, x, background))
    np.testing.assert_allclose(truth.values, expected, atol=1e-5)
    assert np.all(truth.std_error < 1e-6)
    assert truth.outputs.tolist() == [[0, 1, 2]] * 3


def test_two_interacting_regions_are_exact_under_antithetic_pairs():
    x, background = games.images(3, 4), games.images(6, 5)
    truth = metrics.shapley_values(
        games.product, x, background, metrics.grid(games.SHAPE, 2), max_permutations=6, progress=False
    )
    np.testing.assert_allclose(truth.values[..., 0], games.product_truth(x, background), rtol=1e-5, atol=1e-5)


def test_three_way_interaction_is_inside_the_interval():
    x, background = games.images(4, 6), games.images(4, 7)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(
        games.triple, x, background, regions, max_permutations=200, seed=3, progress=False
    )
    exact = games.triple_truth(x, background)
    low, high = truth.interval
    assert truth.std_error[..., :3, 0].min() > 0  # the sampling really has noise here
    inside = (low[..., 0] <= exact + 1e-9) & (exact - 1e-9 <= high[..., 0])
    assert inside.mean() >= 0.9  # 95% intervals: 16 values, at most one outside in this seeded run
    np.testing.assert_allclose(truth.values[..., 0].sum(axis=1), exact.sum(axis=1), rtol=1e-5)  # efficiency


def test_tolerance_stops_before_the_budget():
    x, background = games.images(1, 8), games.images(4, 9)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(
        games.triple, x, background, regions, max_permutations=4000, tolerance=0.05, progress=False
    )
    estimate = truth.estimates[0]
    assert estimate.converged and truth.n_permutations[0] < 4000
    assert 1.96 * truth.std_error.sum() <= 0.05 * np.abs(truth.values).sum() + 1e-12


def test_batches_never_exceed_batch_size():
    seen = []

    def model(batch):
        seen.append(len(batch))
        return games.product(batch)

    x, background = games.images(1, 10), games.images(3, 11)
    metrics.shapley_values(
        model, x, background, metrics.grid(games.SHAPE, 2), max_permutations=10, batch_size=7, progress=False
    )
    assert max(seen) <= 7


def test_torch_model_through_its_adapter_matches_closed_form():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    weights = net[1].weight.detach().numpy().T.astype(np.float64)
    x, background = games.images(2, 12), games.images(4, 13)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(net, x, background, regions, max_permutations=4, progress=False)
    expected = regions.sum_values(games.linear_truth(weights, x, background))
    np.testing.assert_allclose(truth.values, expected, atol=1e-4)


def test_mismatched_regions_are_refused():
    with pytest.raises(ValueError, match="same sample shape"):
        metrics.shapley_values(
            games.product, games.images(1, 0), games.images(2, 1), metrics.grid((8, 8, 1), 2), progress=False
        )


@pytest.mark.slow
def test_keras_model_through_its_adapter_matches_closed_form():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(games.SHAPE), keras.layers.Flatten(), keras.layers.Dense(2)])
    weights = np.asarray(model.layers[-1].get_weights()[0], dtype=np.float64)
    x, background = games.images(2, 14), games.images(3, 15)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(model, x, background, regions, max_permutations=4, progress=False)
    expected = regions.sum_values(games.linear_truth(weights, x, background))
    np.testing.assert_allclose(truth.values, expected, atol=1e-4)

"""Exact Owen values on a partition tree's cut, checked in closed form and against the Partition explainer."""

import numpy as np
import pytest

import deepshap
from deepshap import metrics
from tests.helpers import games


def test_partition_cut_follows_the_axis_tree():
    masker = deepshap.maskers.Image(0.0, games.SHAPE)
    regions = metrics.partition_cut(masker.clustering, games.SHAPE, depth=2)
    assert regions.n_regions == 4
    assert regions.labels[..., 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert regions.tree == {4: (2, 3), 5: (0, 1), 6: (5, 4)}


def test_owen_values_of_two_interacting_regions():
    masker = deepshap.maskers.Image(0.0, games.SHAPE)
    regions = metrics.partition_cut(masker.clustering, games.SHAPE, depth=2)
    x, background = games.images(2, 1), games.images(3, 2)
    owen = metrics.owen_values(games.product, x, background, regions, progress=False)
    # blocks 0 and 1 are siblings: their Owen values are their Shapley values
    np.testing.assert_allclose(owen[..., 0], games.product_truth(x, background), rtol=1e-5, atol=1e-6)


def test_partition_explainer_summed_per_region_equals_exact_owen_values():
    shape = (8, 8, 1)
    x = np.random.default_rng(3).uniform(size=(1, *shape)).astype(np.float32)
    weights = np.random.default_rng(4).normal(size=64)

    def model(batch):
        flat = np.asarray(batch, dtype=np.float64).reshape(len(batch), -1)
        return np.tanh(flat @ weights)[:, None] * flat[:, :32].sum(1, keepdims=True)

    masker = deepshap.maskers.Image(0.25, shape)
    explanation = deepshap.Explainer(model, masker)(x, max_evals=2000, batch_size=64, silent=True)
    regions = metrics.partition_cut(masker.clustering, shape, depth=3)
    owen = metrics.owen_values(model, x, np.full((1, *shape), 0.25, np.float32), regions, progress=False)
    summed = regions.sum_values(np.asarray(explanation.values).reshape(1, *shape, 1))
    np.testing.assert_allclose(summed, owen, rtol=1e-4, atol=1e-6)


def test_owen_values_need_a_tree():
    with pytest.raises(ValueError, match="partition_cut"):
        metrics.owen_values(
            games.product, games.images(1, 0), games.images(1, 1), metrics.grid(games.SHAPE, 2)
        )

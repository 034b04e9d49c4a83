"""Deletion and insertion curves of a linear model, where each point is known in closed form."""

import numpy as np
import pytest

from deepshap import metrics
from tests.helpers import games


def _case():
    weights = np.random.default_rng(5).normal(size=(16, 1))
    x = games.images(2, 6)
    attributions = games.linear_truth(weights, x, np.full((1, *games.SHAPE), 0.5))
    return games.linear(weights), x, attributions, weights[:, 0]


def test_linear_model_curves_in_closed_form():
    model, x, attributions, w = _case()
    curves = metrics.deletion_insertion(model, x, attributions, fill=0.5, n_steps=16, progress=False)
    assert curves.fractions.tolist() == [k / 16 for k in range(17)]
    for i in range(2):
        contributions = (w * (x[i].ravel() - 0.5))[np.argsort(-attributions[i].ravel(), kind="stable")]
        full, empty = float(x[i].ravel() @ w), float(np.full(16, 0.5) @ w)
        expected_deletion = full - np.concatenate([[0], np.cumsum(contributions)])
        expected_insertion = empty + np.concatenate([[0], np.cumsum(contributions)])
        np.testing.assert_allclose(curves.deletion[i, 0], expected_deletion, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(curves.insertion[i, 0], expected_insertion, rtol=1e-5, atol=1e-5)
        area = np.sum((expected_deletion[1:] + expected_deletion[:-1]) / 2) / 16
        assert curves.deletion_auc[i, 0] == pytest.approx(area, rel=1e-5)


def test_good_attributions_beat_reversed_ones():
    model, x, attributions, _ = _case()
    good = metrics.deletion_insertion(model, x, attributions, fill=0.5, n_steps=8, progress=False)
    bad = metrics.deletion_insertion(model, x, -attributions, fill=0.5, n_steps=8, progress=False)
    assert np.all(good.deletion_auc < bad.deletion_auc)
    assert np.all(good.insertion_auc > bad.insertion_auc)


def test_regions_are_removed_whole_and_batches_are_bounded():
    seen = []
    model, x, attributions, _ = _case()

    def counted(batch):
        seen.append(len(batch))
        return model(batch)

    regions = metrics.grid(games.SHAPE, 2)
    curves = metrics.deletion_insertion(
        counted, x, attributions, fill="mean", n_steps=4, regions=regions, batch_size=3, progress=False
    )
    assert curves.deletion.shape == (2, 1, 5) and max(seen) <= 3
    np.testing.assert_allclose(curves.deletion[:, 0, 0], model(x)[:, 0], rtol=1e-5)
    np.testing.assert_allclose(curves.insertion[:, 0, -1], model(x)[:, 0], rtol=1e-5)


def test_fills():
    x = games.images(2, 7)
    blurred = metrics.make_fill(x, "blur", blur_sigma=1.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    means = metrics.make_fill(x, "mean")
    np.testing.assert_allclose(means[:, 0, 0, 0], x.mean(axis=(1, 2, 3)), rtol=1e-5)
    assert np.all(metrics.make_fill(x, 2.0) == 2.0)
    with pytest.raises(ValueError, match="blur"):
        metrics.make_fill(x, "noise")

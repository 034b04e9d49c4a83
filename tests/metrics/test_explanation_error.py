"""Errors of an explanation against the truth, the formats explanations come in, and their intervals."""

import numpy as np
import pytest

import deepshap
from deepshap import metrics
from tests.helpers import games


def _linear_case():
    weights = np.random.default_rng(1).normal(size=(16, 2))
    x, background = games.images(3, 2), games.images(5, 3)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(
        games.linear(weights), x, background, regions, max_permutations=4, progress=False
    )
    return truth, games.linear_truth(weights, x, background)


def test_exact_and_scaled_explanations():
    truth, exact = _linear_case()
    report = metrics.explanation_error(exact, truth)
    assert report.relative_l1 == pytest.approx(0.0, abs=1e-5)
    assert report.correlation == pytest.approx(1.0, abs=1e-9)
    scaled = metrics.explanation_error(1.5 * exact, truth)
    assert scaled.relative_l1 == pytest.approx(0.5, rel=1e-5)
    assert scaled.correlation == pytest.approx(1.0, abs=1e-9)
    assert "relative L1 error 50.0%" in str(scaled)


def test_formats_of_an_explanation_agree():
    truth, exact = _linear_case()
    wrong = exact + np.random.default_rng(0).normal(size=exact.shape) * 0.3
    reference = metrics.explanation_error(wrong, truth).relative_l1
    per_output = [wrong[..., k] for k in range(2)]  # shap <= 0.44
    explanation = deepshap.Explanation(wrong)
    ranked = (wrong[..., ::-1], np.tile([1, 0], (3, 1)))  # (values, indexes) from ranked_output
    for form in (per_output, explanation, ranked):
        assert metrics.explanation_error(form, truth).relative_l1 == pytest.approx(reference)
    only_second = metrics.shapley_values(
        games.linear(np.ones((16, 2))),
        games.images(3, 2),
        games.images(5, 3),
        truth.regions,
        outputs=[1],
        max_permutations=2,
        progress=False,
    )
    picked = metrics.explanation_error(wrong, only_second, outputs=[0, 1])
    assert picked.region_values.shape == (3, 4, 1)
    np.testing.assert_allclose(picked.region_values[..., 0], truth.regions.sum_values(wrong)[..., 1])


def test_interval_covers_the_error_against_exact_values():
    x, background = games.images(4, 6), games.images(4, 7)
    regions = metrics.grid(games.SHAPE, 2)
    truth = metrics.shapley_values(
        games.triple, x, background, regions, max_permutations=40, seed=5, progress=False
    )
    exact_regions = games.triple_truth(x, background)
    noisy = exact_regions * 1.2 + np.random.default_rng(2).normal(size=exact_regions.shape) * 0.5
    explanation = np.zeros((4, *games.SHAPE))
    explanation[:, 0, 0, 0], explanation[:, 0, 2, 0] = noisy[:, 0], noisy[:, 1]
    explanation[:, 2, 0, 0], explanation[:, 2, 2, 0] = noisy[:, 2], noisy[:, 3]
    report = metrics.explanation_error(explanation, truth)
    true_error = metrics.relative_l1(noisy.ravel(), exact_regions.ravel())
    low, high = report.relative_l1_interval
    assert low <= true_error <= high
    c_low, c_high = report.correlation_interval
    assert c_low <= metrics.correlation(noisy.ravel(), exact_regions.ravel()) <= c_high
    assert report.noise_floor > 0


def test_column_count_mismatch_says_what_to_do():
    truth, exact = _linear_case()
    with pytest.raises(ValueError, match="outputs="):
        metrics.explanation_error(exact[..., :1], truth)

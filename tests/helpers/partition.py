"""What the Partition explainer tests share: a smooth numpy model and the efficiency check (the values
and the base value add up to the model's output)."""

from __future__ import annotations

import numpy as np

K = 5


def smooth_model(shape: tuple[int, ...], n_outputs: int = K, seed: int = 0):
    """A nonlinear float64 model of a numpy batch: tanh of random linear scores, plus a product term."""
    weights = np.random.default_rng(seed).normal(size=(int(np.prod(shape)), n_outputs))

    def f(x: np.ndarray) -> np.ndarray:
        z = x.reshape(len(x), -1) @ weights / (40 * np.sqrt(weights.shape[0]))
        return np.tanh(z) + 0.3 * np.tanh(z[:, :1]) * np.tanh(z[:, 1:2])

    return f


def picked(scores: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(scores, index, axis=1)


def assert_efficient(explanation, f, X, rtol=1e-10):
    """sum of values + base value = f(x) for every image and explained output."""
    totals = explanation.values.reshape(len(X), -1, explanation.values.shape[-1]).astype(np.float64).sum(1)
    expected = picked(np.asarray(f(X), dtype=np.float64), explanation.output_indexes)
    np.testing.assert_allclose(totals + explanation.base_values, expected, rtol=rtol, atol=rtol)

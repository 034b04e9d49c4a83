"""Image models whose region Shapley values are known in closed form, as numpy functions of (B, 4, 4, 1).

Regions are the four 2x2 blocks of ``grid((4, 4, 1), 2)``: block 0 is the top-left, 1 top-right,
2 bottom-left, 3 bottom-right.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHAPE = (4, 4, 1)


def block_sums(x: np.ndarray) -> np.ndarray:
    """``(B, 4)``: the sum of each 2x2 block."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), 2, 2, 2, 2)  # (B, block row, y, block col, x)
    return x.sum(axis=(2, 4)).reshape(len(x), 4)


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *SHAPE)).astype(np.float32)


def linear(weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """f(x) = x . w (one column per output of ``weights`` (16, K))."""
    return lambda x: np.asarray(x, dtype=np.float64).reshape(len(x), -1) @ weights


def linear_truth(weights: np.ndarray, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per-value Shapley values w * (x - E b), ``(N, 4, 4, 1, K)``."""
    delta = (x - background.mean(axis=0)).reshape(len(x), -1, 1)
    return (delta * weights[None]).reshape(len(x), *SHAPE, weights.shape[1])


def product(x: np.ndarray) -> np.ndarray:
    """f = a * b of the first two blocks' sums: two interacting regions."""
    sums = block_sums(x)
    return sums[:, 0] * sums[:, 1]


def product_truth(x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Region values ``(N, 4)``: phi_a = mean_b (a - a_b)(b + b_b) / 2, symmetric for b, 0 elsewhere."""
    s, r = block_sums(x), block_sums(background)
    phi = np.zeros((len(x), 4))
    phi[:, 0] = ((s[:, None, 0] - r[None, :, 0]) * (s[:, None, 1] + r[None, :, 1]) / 2).mean(axis=1)
    phi[:, 1] = ((s[:, None, 1] - r[None, :, 1]) * (s[:, None, 0] + r[None, :, 0]) / 2).mean(axis=1)
    return phi


def triple(x: np.ndarray) -> np.ndarray:
    """f = a * b * c of the first three blocks' sums (a three-way interaction: sampling has variance)."""
    sums = block_sums(x)
    return sums[:, 0] * sums[:, 1] * sums[:, 2]


def triple_truth(x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Region values ``(N, 4)`` of ``triple``: for player i with partners j, k (per background row),
    phi_i = (x_i - b_i) (b_j b_k / 3 + (x_j b_k + b_j x_k) / 6 + x_j x_k / 3)."""
    s, r = block_sums(x)[:, None, :3], block_sums(background)[None, :, :3]
    phi = np.zeros((len(x), 4))
    for i, (j, k) in enumerate([(1, 2), (0, 2), (0, 1)]):
        weight = r[..., j] * r[..., k] / 3 + (s[..., j] * r[..., k] + r[..., j] * s[..., k]) / 6
        weight = weight + s[..., j] * s[..., k] / 3
        phi[:, i] = ((s[..., i] - r[..., i]) * weight).mean(axis=1)
    return phi

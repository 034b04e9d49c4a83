"""Shapley values of regions by antithetic permutation sampling, with a running standard error.

Each draw is a pair: a random order of the M regions and its reverse. Walking an order adds one region
at a time, and the change in v is that region's marginal contribution; the pair's estimate of a region's
value is the mean of its two contributions. Pairs are independent, so the mean over pairs is unbiased
and its standard error is the pairs' standard deviation over sqrt(number of pairs). v(empty) and v(all)
are shared by every order and computed once, so a pair costs 2 (M - 1) coalitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deepshap.metrics._game import RegionGame

__all__ = ["PermutationEstimate", "sample_shapley"]


@dataclass
class PermutationEstimate:
    """One image's sampled Shapley values: ``pairs`` holds each antithetic pair's estimate ``(P, M, R)``."""

    pairs: np.ndarray
    empty_value: np.ndarray
    full_value: np.ndarray
    n_evaluations: int
    converged: bool

    @property
    def values(self) -> np.ndarray:
        return self.pairs.mean(axis=0)

    @property
    def std_error(self) -> np.ndarray:
        n = len(self.pairs)
        if n < 2:
            return np.full(self.pairs.shape[1:], np.inf)
        return self.pairs.std(axis=0, ddof=1) / math.sqrt(n)


def _pair_coalitions(orders: np.ndarray) -> np.ndarray:
    """Keep-masks of the inner prefixes of each order and of its reverse: ``(pairs, 2, M - 1, M)``."""
    n_pairs, m = orders.shape
    rank = np.empty_like(orders)
    rank[np.arange(n_pairs)[:, None], orders] = np.arange(m)
    steps = np.arange(1, m)[:, None]  # prefix lengths 1..M-1
    forward = rank[:, None, :] < steps[None]
    backward = rank[:, None, :] >= (m - steps)[None]  # the reverse order's first j regions
    return np.stack([forward, backward], axis=1)


def _pair_estimates(orders: np.ndarray, inner: np.ndarray, empty: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Marginal contributions averaged over each order and its reverse: ``(pairs, M, R)``.

    ``inner`` holds v of the inner prefixes ``(pairs, 2, M - 1, R)``.
    """
    n_pairs, m = orders.shape
    ends = (
        np.broadcast_to(empty, (n_pairs, 2, 1, len(empty))),
        np.broadcast_to(full, (n_pairs, 2, 1, len(full))),
    )
    walk = np.concatenate([ends[0], inner, ends[1]], axis=2)  # v along each order, (pairs, 2, M + 1, R)
    steps = np.diff(walk, axis=2)  # contribution of the j-th region added
    estimates = np.zeros((n_pairs, m, walk.shape[-1]))
    rows = np.arange(n_pairs)[:, None]
    estimates[rows, orders] += steps[:, 0]
    estimates[rows, orders[:, ::-1]] += steps[:, 1]
    return estimates / 2.0


def sample_shapley(
    game: RegionGame,
    max_permutations: int = 300,
    tolerance: float = 0.0,
    confidence: float = 0.95,
    min_permutations: int = 20,
    rng: np.random.Generator | None = None,
    progress: object = None,
) -> PermutationEstimate:
    """The regions' Shapley values of ``game``, sampled until the interval is tight enough or the
    budget is spent.

    ``max_permutations`` counts orders (each pair is two). With ``tolerance > 0`` sampling stops once the
    confidence intervals' half-widths, summed over regions and outputs, are at most ``tolerance`` times
    the values' L1 norm (that is, the relative L1 error the sampling noise can cause), after at least
    ``min_permutations``.
    """
    rng = np.random.default_rng() if rng is None else rng
    m = game.regions.n_regions
    ends = game.values(np.stack([np.zeros(m, bool), np.ones(m, bool)]), progress)
    empty, full = ends[0], ends[1]
    max_pairs = max(1, math.ceil(max_permutations / 2))
    min_pairs = max(2, math.ceil(min_permutations / 2))
    if m == 1:
        pairs = np.broadcast_to(full - empty, (2, 1, len(full))).copy()
        return PermutationEstimate(pairs, empty, full, game.n_evaluations, True)
    z = _normal_quantile(confidence)
    per_round = max(1, (4 * game.runner.batch_size) // (2 * (m - 1) * game.n_background))
    estimates: list[np.ndarray] = []
    converged = False
    n_pairs = 0
    while n_pairs < max_pairs:
        take = min(per_round, max_pairs - n_pairs)
        orders = np.argsort(rng.random((take, m)), axis=1)
        coalitions = _pair_coalitions(orders)
        inner = game.values(coalitions.reshape(-1, m), progress).reshape(take, 2, m - 1, -1)
        estimates.append(_pair_estimates(orders, inner, empty, full))
        n_pairs += take
        if tolerance > 0 and n_pairs >= min_pairs:
            pairs = np.concatenate(estimates)
            half_width = z * pairs.std(axis=0, ddof=1).sum() / math.sqrt(n_pairs)
            if half_width <= tolerance * np.abs(pairs.mean(axis=0)).sum():
                converged = True
                break
    return PermutationEstimate(np.concatenate(estimates), empty, full, game.n_evaluations, converged)


def _normal_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile for ``confidence`` (0.95 -> 1.96)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1; got {confidence}.")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)

"""An explanation's error against sampled Shapley values, with bootstrap confidence intervals.

The truth is an estimate, so every error computed from it is too. Resampling each image's antithetic
pairs with replacement gives bootstrap replicates of the truth; the error of the explanation against
each replicate shows how the error moves with the truth's noise. The intervals are basic (reflected)
bootstrap intervals, ``2 * point - upper quantile`` to ``2 * point - lower quantile``: noise in the
truth inflates the relative L1 error of any explanation (and deflates the correlation), and the
reflection turns that bias around, so the interval covers the error against the exact values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deepshap._typing import Attributions
from deepshap.metrics._attributions import as_attributions
from deepshap.metrics._truth import RegionShapley

__all__ = ["ErrorReport", "explanation_error", "relative_l1", "correlation"]


def relative_l1(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """sum |estimate - truth| / sum |truth| over the last axis (all values when given flat)."""
    return np.abs(estimate - truth).sum(axis=-1) / np.abs(truth).sum(axis=-1)


def correlation(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pearson correlation over the last axis."""
    a = estimate - estimate.mean(axis=-1, keepdims=True)
    b = truth - truth.mean(axis=-1, keepdims=True)
    return (a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))


@dataclass
class ErrorReport:
    """How far an explanation (summed per region) is from the sampled Shapley values.

    ``relative_l1`` and ``correlation`` pool every image, region and output, measured against the
    sampled values; ``*_interval`` are basic bootstrap intervals at ``confidence`` for the same numbers
    measured against the exact values (see the module's docstring). ``noise_floor`` is the relative L1
    error that the truth's own sampling noise would give an exact explanation (sqrt(2/pi) * sum of
    standard errors over sum |truth|): errors near it cannot be told apart from zero.
    """

    relative_l1: float
    relative_l1_interval: tuple[float, float]
    correlation: float
    correlation_interval: tuple[float, float]
    noise_floor: float
    confidence: float
    region_values: np.ndarray
    truth: RegionShapley

    def __str__(self) -> str:
        low, high = self.relative_l1_interval
        c_low, c_high = self.correlation_interval
        level = f"{self.confidence:.0%}"
        return (
            f"relative L1 error {self.relative_l1:.1%} ({level} CI {low:.1%}-{high:.1%}; noise floor "
            f"{self.noise_floor:.1%}), correlation {self.correlation:.3f} "
            f"({level} CI {c_low:.3f}-{c_high:.3f})"
        )


def _region_values(
    explanation: Attributions, truth: RegionShapley, outputs: npt.ArrayLike | None
) -> np.ndarray:
    """The explanation summed per region, its columns matched to the truth's outputs: ``(N, M, R)``."""
    values, indexes = as_attributions(explanation, truth.regions.sample_shape)
    summed = truth.regions.sum_values(values)
    if outputs is not None:
        indexes = np.asarray(outputs, dtype=np.int64)
        indexes = (
            indexes.reshape(len(summed), -1) if indexes.ndim == 2 else np.tile(indexes, (len(summed), 1))
        )
    if indexes is None:
        if summed.shape[-1] != truth.outputs.shape[1]:
            raise ValueError(
                f"The explanation has {summed.shape[-1]} outputs per image and the truth "
                f"{truth.outputs.shape[1]}; "
                "say which model outputs the explanation's columns are with outputs=[...]."
            )
        return summed
    if len(summed) != len(truth.outputs):
        raise ValueError(f"The explanation has {len(summed)} images and the truth {len(truth.outputs)}.")
    columns = []
    for image_outputs, truth_outputs in zip(indexes, truth.outputs, strict=True):
        missing = set(truth_outputs.tolist()) - set(image_outputs.tolist())
        if missing:
            raise ValueError(f"The explanation lacks the outputs {sorted(missing)} that the truth holds.")
        columns.append([int(np.flatnonzero(image_outputs == k)[0]) for k in truth_outputs])
    return np.stack([summed[i][:, cols] for i, cols in enumerate(columns)])


def bootstrap_truths(truth: RegionShapley, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_bootstrap, N, M, R)`` replicates of the truth, each image's pairs resampled with replacement."""
    replicates = []
    for estimate in truth.estimates:
        pairs = estimate.pairs.reshape(len(estimate.pairs), -1)
        counts = rng.multinomial(len(pairs), np.full(len(pairs), 1.0 / len(pairs)), size=n_bootstrap)
        replicates.append((counts @ pairs / len(pairs)).reshape(n_bootstrap, *estimate.pairs.shape[1:]))
    return np.stack(replicates, axis=1)


def explanation_error(
    explanation: Attributions,
    truth: RegionShapley,
    outputs: npt.ArrayLike | None = None,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
) -> ErrorReport:
    """Relative L1 error and correlation of ``explanation`` against ``truth``, with intervals.

    ``explanation`` is any form :func:`as_attributions` takes, of the images ``truth`` was sampled on;
    ``outputs`` names the model output of each of its columns when it does not carry them (by default
    its columns are the truth's outputs, in order).
    """
    estimate = _region_values(explanation, truth, outputs)
    reference = truth.values
    alpha = (1 - truth.confidence) / 2
    replicates = bootstrap_truths(truth, n_bootstrap, np.random.default_rng(seed)).reshape(n_bootstrap, -1)
    flat = estimate.reshape(-1)
    error = float(relative_l1(flat, reference.reshape(-1)))
    match = float(correlation(flat, reference.reshape(-1)))
    floor = math.sqrt(2 / math.pi) * truth.std_error.sum() / np.abs(reference).sum()
    return ErrorReport(
        relative_l1=error,
        relative_l1_interval=_basic_interval(
            error, relative_l1(flat[None], replicates), alpha, (0.0, np.inf)
        ),
        correlation=match,
        correlation_interval=_basic_interval(match, correlation(flat[None], replicates), alpha, (-1.0, 1.0)),
        noise_floor=float(floor),
        confidence=truth.confidence,
        region_values=estimate,
        truth=truth,
    )


def _basic_interval(
    point: float, samples: np.ndarray, alpha: float, bounds: tuple[float, float]
) -> tuple[float, float]:
    """The basic bootstrap interval (the replicates' quantiles reflected about the point estimate),
    clipped to the values the quantity can take."""
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(np.clip(2 * point - high, *bounds)), float(np.clip(2 * point - low, *bounds))

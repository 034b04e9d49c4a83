"""The truth an explanation is measured against: the regions' interventional Shapley values of the
model over the background, sampled per image (:func:`shapley_values`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deepshap._typing import InputData, NativeTensor
from deepshap.metrics._game import MeasuredModel, ModelRunner, RegionGame
from deepshap.metrics._permutation import PermutationEstimate, _normal_quantile, sample_shapley
from deepshap.metrics._regions import Regions

__all__ = ["RegionShapley", "output_table", "shapley_values"]

#: What stands in for hidden regions: background rows, or a function of one image returning its rows.
Background = InputData | Callable[[np.ndarray], npt.ArrayLike]


@dataclass
class RegionShapley:
    """Sampled Shapley values of the regions of N images for R outputs each.

    ``values`` and ``std_error`` are ``(N, M, R)``; ``outputs`` ``(N, R)`` names the model output of each
    column; ``estimates`` keeps each image's antithetic pairs (for bootstrap intervals).
    """

    estimates: list[PermutationEstimate]
    outputs: np.ndarray
    regions: Regions
    confidence: float
    seconds: float

    @property
    def values(self) -> np.ndarray:
        return np.stack([e.values for e in self.estimates])

    @property
    def std_error(self) -> np.ndarray:
        return np.stack([e.std_error for e in self.estimates])

    @property
    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-value normal confidence intervals ``(low, high)``, each ``(N, M, R)``."""
        half = _normal_quantile(self.confidence) * self.std_error
        return self.values - half, self.values + half

    @property
    def n_permutations(self) -> list[int]:
        return [2 * len(e.pairs) for e in self.estimates]

    @property
    def n_evaluations(self) -> int:
        return sum(e.n_evaluations for e in self.estimates)


def output_table(outputs: npt.ArrayLike | None, n_images: int, n_outputs: int) -> np.ndarray:
    """Outputs to explain as an ``(N, R)`` int array: None (all), a list for every image, or per image."""
    if outputs is None:
        return np.tile(np.arange(n_outputs), (n_images, 1))
    table = np.asarray(outputs, dtype=np.int64)
    if table.ndim == 0:
        table = table[None]
    if table.ndim == 1:
        table = np.tile(table, (n_images, 1))
    if table.shape[0] != n_images or table.ndim != 2:
        raise ValueError(f"outputs must be (R,) or (N, R) with N = {n_images} images; got {table.shape}.")
    if table.min() < 0 or table.max() >= n_outputs:
        raise ValueError(f"outputs must be model output indices in 0..{n_outputs - 1}; got {table.ravel()}.")
    return table


def fill_rows(runner: ModelRunner, background: Background, image: np.ndarray) -> NativeTensor:
    """The rows that stand in for hidden regions of ``image``: the background, or ``background(image)``."""
    if callable(background):
        rows = np.asarray(background(image))
        return runner.native(rows[None] if rows.shape == image.shape else rows)
    return runner.background


def shapley_values(
    model: MeasuredModel,
    images: InputData,
    background: Background,
    regions: Regions,
    outputs: npt.ArrayLike | None = None,
    max_permutations: int = 300,
    tolerance: float = 0.0,
    confidence: float = 0.95,
    batch_size: int = 256,
    seed: int | None = 0,
    progress: bool = True,
) -> RegionShapley:
    """Estimate the regions' Shapley values of ``model`` at each image against ``background``.

    v(S) is the model's output averaged over background rows, with the regions in S taken from the image
    and the rest from the row (the interventional game DeepSHAP approximates). ``background`` may also be
    a function of one image returning its fill rows (a blurred copy for a blur masker). Sampling stops
    per image after ``max_permutations`` orders, or earlier once the intervals are within ``tolerance``
    (relative L1, see :func:`sample_shapley`).
    """
    from tqdm.auto import tqdm

    images = _numpy_images(images)
    runner = ModelRunner(model, images[:1] if callable(background) else background, batch_size)
    if images.shape[1:] != runner.sample_shape or regions.sample_shape != runner.sample_shape:
        raise ValueError(
            f"images {images.shape[1:]}, background {runner.sample_shape} and regions {regions.sample_shape} "
            "must have the same sample shape."
        )
    table = output_table(outputs, len(images), runner.n_outputs)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    estimates = []
    n_rows = 1 if callable(background) else int(runner.background.shape[0])
    per_image = (2 + 2 * ((max_permutations + 1) // 2) * (regions.n_regions - 1)) * n_rows
    total = len(images) * per_image
    with tqdm(total=total, desc="Shapley values (permutations)", unit="eval", disable=not progress) as bar:
        for image, picked in zip(images, table, strict=True):
            game = RegionGame(
                runner, runner.native(image[None])[0], fill_rows(runner, background, image), regions, picked
            )
            estimates.append(
                sample_shapley(game, max_permutations, tolerance, confidence, rng=rng, progress=bar)
            )
    return RegionShapley(estimates, table, regions, confidence, time.perf_counter() - start)


def _numpy_images(images: InputData) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu()
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()
    return np.asarray(images, dtype=np.float32)

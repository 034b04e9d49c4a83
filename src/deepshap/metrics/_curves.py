"""Deletion and insertion curves (RISE, Petsiuk et al. 2018): how fast the explained output falls as the
most important pixels are removed, and rises as they are put back into a blurred, mean or constant image.

Pixels (or regions) are ranked by their attribution, summed over channels, largest first. Deletion
replaces the first k of them with the fill; insertion starts from the fill and restores them. Each
curve has ``n_steps + 1`` points at fractions 0, 1/n_steps, ..., 1 of the pixels, and its area (the
trapezoid rule over the fraction) is the AUC: low is good for deletion, high for insertion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deepshap._typing import Attributions, InputData, NativeTensor
from deepshap.metrics._attributions import as_attributions
from deepshap.metrics._game import MeasuredModel, ModelRunner
from deepshap.metrics._regions import Regions, pixels, spatial_axes
from deepshap.metrics._truth import _numpy_images, output_table

__all__ = ["Curves", "Fill", "deletion_insertion", "make_fill"]

#: What hidden pixels become: ``"blur"``, ``"mean"``, a number, or an image (or one per image).
Fill = str | float | np.ndarray


@dataclass
class Curves:
    """Deletion and insertion curves ``(N, R, n_steps + 1)`` of the outputs ``outputs`` ``(N, R)``."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    outputs: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        return _area(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> np.ndarray:
        return _area(self.insertion, self.fractions)


def _area(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Trapezoid-rule area under each curve (last axis) over ``fractions``."""
    return ((curves[..., 1:] + curves[..., :-1]) / 2 * np.diff(fractions)).sum(axis=-1)


def make_fill(
    images: np.ndarray, fill: Fill, blur_sigma: float = 5.0, channels: str | None = None
) -> np.ndarray:
    """The image each pixel is replaced by: ``"blur"`` (Gaussian, ``blur_sigma`` pixels), ``"mean"`` (the
    image's mean per channel), a number, or an array of the images' (or one image's) shape."""
    images = np.asarray(images, dtype=np.float32)
    h_axis, w_axis, channel_axis = spatial_axes(images.shape[1:], channels)
    if isinstance(fill, str):
        if fill == "blur":
            from scipy.ndimage import gaussian_filter

            sigma = [0.0] * images.ndim
            sigma[h_axis + 1] = sigma[w_axis + 1] = blur_sigma
            return gaussian_filter(images, sigma=sigma, mode="nearest").astype(np.float32)
        if fill == "mean":
            axes = (h_axis + 1, w_axis + 1)
            return np.broadcast_to(images.mean(axis=axes, keepdims=True), images.shape).astype(np.float32)
        raise ValueError(f'fill must be "blur", "mean", a number or an image; got {fill!r}.')
    array = np.asarray(fill, dtype=np.float32)
    if array.ndim == 0 or array.shape in (images.shape, images.shape[1:]):
        return np.broadcast_to(array, images.shape).astype(np.float32)
    raise ValueError(f"A fill image must have shape {images.shape[1:]} or {images.shape}; got {array.shape}.")


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Position of each region in the order of decreasing score (ties keep their index order)."""
    order = np.argsort(-scores, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank


def deletion_insertion(
    model: MeasuredModel,
    images: InputData,
    explanation: Attributions,
    outputs: npt.ArrayLike | None = None,
    fill: Fill = "blur",
    n_steps: int = 50,
    regions: Regions | None = None,
    batch_size: int = 256,
    blur_sigma: float = 5.0,
    channels: str | None = None,
    progress: bool = True,
) -> Curves:
    """Deletion and insertion curves of ``explanation`` for ``model`` at ``images``, batched.

    ``regions`` (default: every pixel) are removed in order of their summed attribution, about
    ``M / n_steps`` per step. ``outputs`` names the model output of each explanation column when the
    explanation does not carry them (default: columns are outputs 0..R-1). The model's outputs are used
    as they are (probabilities for a softmax model, as in RISE).
    """
    from tqdm.auto import tqdm

    images = _numpy_images(images)
    sample_shape = images.shape[1:]
    values, indexes = as_attributions(explanation, sample_shape)
    regions = pixels(sample_shape, channels) if regions is None else regions
    runner = ModelRunner(model, images[:1], batch_size)
    table = output_table(indexes if outputs is None else outputs, len(images), runner.n_outputs)
    if table.shape[1] != values.shape[-1] and outputs is None and indexes is None:
        table = output_table(np.arange(values.shape[-1]), len(images), runner.n_outputs)
    if table.shape[1] != values.shape[-1]:
        raise ValueError(
            f"outputs names {table.shape[1]} outputs but the explanation has {values.shape[-1]}."
        )
    fills = make_fill(images, fill, blur_sigma, channels)
    scores = regions.sum_values(values)  # (N, M, R)
    m = regions.n_regions
    steps = np.minimum(np.round(np.linspace(0, m, n_steps + 1)).astype(np.int64), m)
    n, r = table.shape
    deletion = np.zeros((n, r, len(steps)))
    insertion = np.zeros((n, r, len(steps)))
    with tqdm(
        total=n * r * 2 * len(steps), desc="Deletion/insertion", unit="eval", disable=not progress
    ) as bar:
        for i in range(n):
            x, filler = runner.native(images[i : i + 1])[0], runner.native(fills[i : i + 1])
            for j in range(r):
                rank = _ranks(scores[i, :, j])
                removed = rank[None, :] < steps[:, None]  # (steps, M): regions gone after each step
                keep = np.concatenate([~removed, removed])  # deletion keeps the rest, insertion restores
                out = _masked_outputs(runner, x, filler, regions, keep)[:, table[i, j]]
                deletion[i, j], insertion[i, j] = out[: len(steps)], out[len(steps) :]
                bar.update(len(keep))
    return Curves(steps / m, deletion, insertion, table)


def _masked_outputs(
    runner: ModelRunner, x: NativeTensor, filler: NativeTensor, regions: Regions, keep: np.ndarray
) -> np.ndarray:
    """Outputs for ``x`` with the regions of each row of ``keep`` kept and the rest filled, a batch at a
    time (value masks are built per batch, so memory stays bounded by the batch size)."""
    outputs: list[np.ndarray] = []
    for start in range(0, len(keep), runner.batch_size):
        masks = regions.value_masks(keep[start : start + runner.batch_size])
        rows = np.zeros(len(masks), dtype=np.int64)
        outputs.extend(runner.composed_outputs(x, filler, masks, rows))
    return np.concatenate(outputs)

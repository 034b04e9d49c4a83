"""``image_plot``: one row per image, the image then one attribution map per explained output.

Same layout as shap's ``image_plot``, with its failures fixed: an array with a trailing output axis gives
one column per output (never a sum over outputs), attributions from an intermediate layer are summed over
channels and stretched to the image, float images in [0, 255] and negated images are shown as they look,
channels-first arrays and torch / tf tensors are accepted, and the colour scale is shared by all panels.
The colour map and the panels are shap's; the grey overlay lies exactly under the map (shap stretches it
over one pixel more). NaN or infinite numbers, and maps that do not fit the images, are errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from deepshap._typing import Attributions, NativeTensor

from ._inputs import ArrayOrTensor, Labels, label_grid, prepare, to_numpy

_BLUE = (30 / 255, 136 / 255, 229 / 255)
_RED = (1.0, 13 / 255, 87 / 255)
_HALF_GAP = 0.5 / 199  # shap's map runs through 200 evenly spaced colours; zero falls between two

#: shap's red_transparent_blue: blue for negative values and red for positive ones, each fading in
#: transparency (not in colour) to nothing at zero, so small values show the image beneath.
red_transparent_blue = LinearSegmentedColormap.from_list(
    "deepshap_red_transparent_blue",
    [
        (0.0, (*_BLUE, 1.0)),
        (0.5 - _HALF_GAP, (*_BLUE, 0.0)),
        (0.5 + _HALF_GAP, (*_RED, 0.0)),
        (1.0, (*_RED, 1.0)),
    ],
    N=256,
)

_OVERLAY_ALPHA = 0.15


def display_scale(pixels: np.ndarray) -> np.ndarray:
    """Scale pixel values into [0, 1] for display.

    uint8 and float images within [0, 255] (reaching above 2) are divided by 255, images already in
    [0, 1] are kept, and anything else (negated images, mean/std-normalised inputs, [0, 1] images that
    overshoot a little) is mapped by its range over the batch.
    """
    x = pixels.astype(np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros_like(x)
    lo, hi = float(finite.min()), float(finite.max())
    if pixels.dtype == np.uint8 or (lo >= 0.0 and 2.0 < hi <= 255.0):
        x = x / 255.0
    elif not (lo >= 0.0 and hi <= 1.0):
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)


def _display_image(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image to show, greyscale for the overlay) from one scaled (H, W, C) image."""
    channels = img.shape[-1]
    if channels in (3, 4):
        rgb = img[..., :3]
        grey = rgb @ np.array([0.2989, 0.5870, 0.1140])
        return rgb, grey
    grey = img.mean(-1)
    return grey, grey


def _resize(m: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Stretch a 2-D attribution map to (H, W): nearest cells when enlarging, area average when shrinking."""
    if m.shape == tuple(hw):
        return m
    import cv2  # a core dependency, imported only when a map needs stretching

    shrinking = m.shape[0] * m.shape[1] > hw[0] * hw[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST
    return cv2.resize(m.astype(np.float64), (int(hw[1]), int(hw[0])), interpolation=interpolation)


def _colour_limit(maps: list[np.ndarray], vmax: float | None) -> float:
    """Half-width of the symmetric colour scale: ``vmax`` or the 99.9th percentile of |values| shown."""
    if vmax is not None:
        if not np.isfinite(vmax) or vmax <= 0:
            raise ValueError(f"vmax must be a positive finite number; got {vmax!r}.")
        return float(vmax)
    abs_vals = np.abs(np.concatenate([m.ravel() for m in maps]))
    abs_vals = abs_vals[np.isfinite(abs_vals)]
    limit = float(np.percentile(abs_vals, 99.9)) if abs_vals.size else 0.0
    return limit if limit > 0 else 1.0  # all-zero attributions: any scale shows them as transparent


def _figure_size(n_cols: int, n_rows: int, width: float | None) -> np.ndarray:
    """shap's sizing: 3 x 2.5 inches per panel plus a row for the colour bar, shrunk to ``width``."""
    size = np.array([3.0 * n_cols, 2.5 * (n_rows + 1)])
    if width is not None and size[0] > width:
        size *= width / size[0]
    return size


@overload
def image(
    shap_values: Attributions,
    pixel_values: ArrayOrTensor | None = ...,
    labels: Labels = ...,
    true_labels: Sequence[object] | np.ndarray | NativeTensor | None = ...,
    width: float | None = ...,
    aspect: float | None = ...,
    hspace: float | Literal["auto"] | None = ...,
    labelpad: float | None = ...,
    cmap: str | Colormap | None = ...,
    vmax: float | None = ...,
    show: Literal[True] = ...,
) -> None: ...


@overload
def image(
    shap_values: Attributions,
    pixel_values: ArrayOrTensor | None = ...,
    labels: Labels = ...,
    true_labels: Sequence[object] | np.ndarray | NativeTensor | None = ...,
    width: float | None = ...,
    aspect: float | None = ...,
    hspace: float | Literal["auto"] | None = ...,
    labelpad: float | None = ...,
    cmap: str | Colormap | None = ...,
    vmax: float | None = ...,
    *,
    show: Literal[False],
) -> Figure: ...


@overload
def image(
    shap_values: Attributions,
    pixel_values: ArrayOrTensor | None = ...,
    labels: Labels = ...,
    true_labels: Sequence[object] | np.ndarray | NativeTensor | None = ...,
    width: float | None = ...,
    aspect: float | None = ...,
    hspace: float | Literal["auto"] | None = ...,
    labelpad: float | None = ...,
    cmap: str | Colormap | None = ...,
    vmax: float | None = ...,
    show: bool = ...,
) -> Figure | None: ...


def image(
    shap_values: Attributions,
    pixel_values: ArrayOrTensor | None = None,
    labels: Labels = None,
    true_labels: Sequence[object] | np.ndarray | NativeTensor | None = None,
    width: float | None = 20,
    aspect: float | None = 0.2,
    hspace: float | Literal["auto"] | None = 0.2,
    labelpad: float | None = None,
    cmap: str | Colormap | None = None,
    vmax: float | None = None,
    show: bool = True,
) -> Figure | None:
    """Plot image attributions: per image, the image then one map per explained output.

    ``shap_values``: an Explanation (values with or without a trailing output axis; its ``data`` and
    ``output_names`` are used when ``pixel_values`` / ``labels`` are not given), a list with one array per
    output, or one array (a trailing output axis gives one column per output). Arrays may be numpy, torch
    or tf, channels-last or channels-first; attributions of an intermediate layer are summed over channels
    and stretched to the image. ``labels``: k output names, or an (N, k) array of names per image.
    ``true_labels``: one title per image for the image column. Returns the Figure when ``show`` is False;
    with ``show`` True the figure is shown and stays the current figure, as in shap.
    """
    inputs = prepare(shap_values, pixel_values, labels)
    n_rows, n_outputs = inputs.maps[0].shape[0], len(inputs.maps)
    grid, per_row = label_grid(inputs.labels, n_rows, n_outputs)
    pixels = None if inputs.pixels is None else display_scale(inputs.pixels)
    if true_labels is not None:
        if pixels is None:
            raise ValueError(
                "true_labels title the image column; pass pixel_values (or an Explanation with data)."
            )
        true_labels = list(to_numpy(true_labels)) if hasattr(true_labels, "numpy") else list(true_labels)
        if len(true_labels) != n_rows:
            raise ValueError(f"true_labels needs one entry per image ({n_rows}); got {len(true_labels)}.")

    maps = inputs.maps
    if pixels is not None:
        maps = [np.stack([_resize(m, pixels.shape[1:3]) for m in out]) for out in maps]
    limit = _colour_limit(maps, vmax)
    cmap = red_transparent_blue if cmap is None else plt.get_cmap(cmap)
    norm = Normalize(vmin=-limit, vmax=limit)
    title_kwargs = {} if labelpad is None else {"pad": labelpad}

    offset = 0 if pixels is None else 1
    fig_size = _figure_size(n_outputs + offset, n_rows, width)
    fig, axes = plt.subplots(n_rows, n_outputs + offset, figsize=fig_size, squeeze=False)
    for row in range(n_rows):
        grey = None
        if pixels is not None:
            shown, grey = _display_image(pixels[row])
            axes[row, 0].imshow(shown, cmap="gray", vmin=0.0, vmax=1.0)
            if true_labels is not None:
                axes[row, 0].set_title(str(true_labels[row]), **title_kwargs)
            axes[row, 0].axis("off")
        for j in range(n_outputs):
            ax = axes[row, j + offset]
            if grey is not None:
                ax.imshow(grey, cmap="gray", alpha=_OVERLAY_ALPHA)  # its own range, as in shap
            ax.imshow(maps[j][row], cmap=cmap, norm=norm)
            if grid is not None and (per_row or row == 0):
                ax.set_title(str(grid[row if per_row else 0, j]), **title_kwargs)
            ax.axis("off")

    if hspace == "auto":
        fig.tight_layout()
    elif hspace is not None:
        fig.subplots_adjust(hspace=hspace)
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=axes.ravel().tolist(),
        label="SHAP value",
        orientation="horizontal",
        aspect=fig_size[0] / (aspect if aspect else 0.2),
    )
    bar.outline.set_visible(False)
    if show:
        plt.show()  # the figure stays open, as in shap: a script may plt.savefig() it afterwards
        return None
    return fig

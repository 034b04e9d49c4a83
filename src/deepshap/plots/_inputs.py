"""Normalise what users pass to ``image_plot`` into plain numpy layouts.

Attributions arrive as an Explanation, a list with one array per output, or one array with a trailing
output axis; as numpy arrays, torch tensors or tf tensors; channels-last or channels-first. Everything
here turns them into ``(N, h, w)`` maps (one per output) and ``(N, H, W, C)`` pixels, so the drawing code
sees a single layout. Nothing here imports a deep-learning framework: tensors are converted by duck typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from deepshap._typing import Attributions, NativeTensor

_COLOUR_CHANNELS = (1, 3)

#: Images or other arrays as users pass them: numpy (or anything ``np.asarray`` takes), torch or tf.
ArrayOrTensor: TypeAlias = NativeTensor | npt.ArrayLike
#: Output names: k names shared by the rows, or an ``(N, k)`` array of them (checked by `label_grid`).
Labels: TypeAlias = ArrayOrTensor | None


@dataclass
class PlotInputs:
    """Attribution maps, pixels and labels ready to draw."""

    maps: list[np.ndarray]  # one (N, h, w) float array per output
    pixels: np.ndarray | None  # (N, H, W, C) or None
    labels: Labels  # whatever the user or the Explanation gave; checked by `label_grid`


def to_numpy(x: ArrayOrTensor) -> np.ndarray:
    """Convert a numpy array, torch / tf tensor or nested sequence to numpy, importing no framework."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        t = x.detach().cpu()
        if t.is_floating_point():  # bfloat16 / float16 have no (or a poor) numpy equivalent
            t = t.float()
        return t.numpy()
    if hasattr(x, "numpy") and callable(x.numpy):  # tf.Tensor, keras tensors, jax arrays
        return np.asarray(x.numpy())
    return np.asarray(x)


def is_explanation(x: object) -> bool:
    """Duck-type an Explanation: it carries attribution ``values`` and input ``data`` as attributes."""
    return (
        hasattr(x, "values")
        and hasattr(x, "data")
        and not isinstance(x, (np.ndarray, list, tuple, dict))
        and not callable(x.values)
    )


def _is_channels_first(shape: tuple[int, ...], image_hw: tuple[int, int] | None = None) -> bool:
    """Guess whether a 4-D ``shape`` is (N, C, H, W) rather than (N, H, W, C).

    Given the image's (H, W), the spatial pair that equals it decides, then the one whose aspect ratio is
    closer to the image's (a 3x3 layer of 64 channels is not 3 colour channels). Failing that, a
    colour-like channel count (1 or 3) decides, then a small axis (at most 4) below both others, then a
    square spatial pair.
    """
    if image_hw is not None:
        hw = tuple(image_hw)
        first, last = tuple(shape[2:4]) == hw, tuple(shape[1:3]) == hw
        if first != last:
            return first
        target = np.log(hw[0] / hw[1])
        first_err = abs(np.log(shape[2] / shape[3]) - target)
        last_err = abs(np.log(shape[1] / shape[2]) - target)
        if first_err != last_err:
            return bool(first_err < last_err)
    if shape[-1] in _COLOUR_CHANNELS:
        return False
    if shape[1] in _COLOUR_CHANNELS:
        return True
    small_first = shape[1] <= 4 and shape[1] < min(shape[2], shape[3])
    small_last = shape[3] <= 4 and shape[3] < min(shape[1], shape[2])
    if small_first != small_last:
        return small_first
    return shape[2] == shape[3] and shape[1] != shape[2]


def _batched_images(arr: np.ndarray, what: str, image_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Return ``arr`` as (N, H, W, C): add a batch axis to a single image, move channels-first channels last.

    Accepted: (N, H, W, C), (N, C, H, W), (N, H, W), and a single (H, W, C) image with 1 or 3 channels.
    """
    if arr.ndim == 3 and arr.shape[-1] in _COLOUR_CHANNELS:
        arr = arr[None]  # one (H, W, C) image
    elif arr.ndim == 3:
        arr = arr[..., None]  # (N, H, W) greyscale batch
    if arr.ndim != 4:
        raise ValueError(
            f"{what} must be image-shaped: (N, H, W, C), (N, C, H, W), (N, H, W) or one (H, W, C) image; "
            f"got shape {arr.shape}. For a model with several inputs pick one input first: "
            "[sv[i][0] for i in range(len(sv))] in shap 0.44's layout (a list per output), sv[0] in "
            "shap 0.45's (deepshap.current: a list per input, outputs on the last axis)."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{what} holds no images (shape {arr.shape}); pass at least one.")
    if _is_channels_first(arr.shape, image_hw):
        arr = np.moveaxis(arr, 1, -1)
    return arr


def _split_outputs(
    values: np.ndarray, reference: np.ndarray | None, has_output_axis: bool | None
) -> list[np.ndarray]:
    """Split one attribution array into a list of per-output arrays.

    The trailing axis is an output axis when the caller says so, when the array has one more axis than the
    pixel values with the same leading shape, or when it is 5-D; otherwise the array is a single output.
    Never sums over outputs.
    """
    if has_output_axis is None:
        matches_pixels = reference is not None and values.shape[:-1] == reference.shape
        has_output_axis = matches_pixels or values.ndim == 5
    if not has_output_axis:
        return [values]
    return [values[..., j] for j in range(values.shape[-1])]


def _explanation_parts(
    expl: Attributions, pixel_values: ArrayOrTensor | None, labels: Labels
) -> tuple[list[np.ndarray], ArrayOrTensor | None, Labels]:
    """Unpack an Explanation into per-output arrays, pixel values and labels (explicit arguments win)."""
    values = to_numpy(expl.values)
    data = None if expl.data is None else to_numpy(expl.data)
    output_dims = tuple(getattr(expl, "output_dims", ()) or ())
    if len(output_dims) > 1:
        raise ValueError(
            f"the Explanation has {len(output_dims)} output axes; image_plot draws one: select along the "
            "others first, e.g. expl[..., 0]."
        )
    # a declared trailing output axis is trusted (shap can leave a stale one on a sliced Explanation);
    # otherwise the shape against `data` decides
    declared = output_dims == (values.ndim - 1,)
    outputs = _split_outputs(values, data, True if declared else None)
    if pixel_values is None:
        pixel_values = data
    if labels is None:
        labels = getattr(expl, "output_names", None)
    return outputs, pixel_values, labels


def _check_ranked_tuple(shap_values: Attributions) -> None:
    """Catch the ``(values, indexes)`` pair that ``ranked_output`` returns, passed whole."""
    if isinstance(shap_values, tuple) and len(shap_values) == 2:
        second = to_numpy(shap_values[1]) if not isinstance(shap_values[1], list) else None
        if second is not None and second.ndim == 2 and np.issubdtype(second.dtype, np.integer):
            raise ValueError(
                "shap_values looks like the (values, indexes) pair returned with ranked_output; unpack it: "
                "`values, indexes = explainer.shap_values(X, ranked_output=k)`, then "
                "`image_plot(values, X, labels=names_of(indexes))`."
            )


def _output_list(shap_values: Attributions) -> list[np.ndarray]:
    """Turn a list (one entry per output) into a list of numpy arrays, rejecting nested per-input lists."""
    _check_ranked_tuple(shap_values)
    if len(shap_values) == 0:
        raise ValueError("shap_values is an empty list; pass one attribution array per model output.")
    outputs = []
    for j, v in enumerate(shap_values):
        if isinstance(v, (list, tuple)):
            raise ValueError(
                f"shap_values[{j}] is a list: the model has several inputs, so each output holds one array "
                "per input. Plot one input at a time: image_plot([sv[i][0] for i in range(len(sv))], x[0])."
            )
        if is_explanation(v):
            raise ValueError(
                "shap_values is a list of Explanations (one per model input); plot one of them at a time."
            )
        outputs.append(to_numpy(v))
    return outputs


def _pixels(pixel_values: ArrayOrTensor | None) -> np.ndarray | None:
    """Pixel values as a float (N, H, W, C) array, or None."""
    if pixel_values is None:
        return None
    arr = to_numpy(pixel_values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"pixel_values must be numeric images; got dtype {arr.dtype}.")
    _check_finite(arr, "pixel_values")
    return _batched_images(arr, "pixel_values")


def _maps(outputs: list[np.ndarray], pixels: np.ndarray | None) -> list[np.ndarray]:
    """Per-output (N, h, w) maps: attributions in (N, h, w, c) layout summed over their channels."""
    image_hw = None if pixels is None else pixels.shape[1:3]
    maps = []
    for j, out in enumerate(outputs):
        if not np.issubdtype(out.dtype, np.number):
            raise ValueError(f"attributions for output {j} must be numeric; got dtype {out.dtype}.")
        name = "shap_values" if len(outputs) == 1 else f"shap_values for output {j}"
        _check_finite(out, name)
        imgs = _batched_images(out, name, image_hw)
        maps.append(imgs.astype(np.float64).sum(-1))
    first = maps[0].shape
    for j, m in enumerate(maps[1:], start=1):
        if m.shape != first:
            raise ValueError(
                f"all outputs must have attributions of one shape; output 0 gives maps {first}, "
                f"output {j} gives {m.shape}."
            )
    if pixels is not None and pixels.shape[0] != first[0]:
        raise ValueError(
            f"shap_values explain {first[0]} image(s) but pixel_values holds {pixels.shape[0]}; "
            "pass the same images that were explained (e.g. x[:n] for both)."
        )
    if pixels is not None:
        _check_map_size(first[1:], pixels.shape[1:3])
    return maps


def _check_finite(values: np.ndarray, what: str) -> None:
    """Refuse NaN and infinite numbers: drawn, they are blanks that look like zero attributions."""
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
        count = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise ValueError(
            f"{what} contains {count} NaN or infinite value(s), which would be drawn as if they were "
            "zero; find where they come from (an explainer given NaN inputs, a division by zero) or "
            "replace them (np.nan_to_num) before plotting."
        )


#: A map smaller than the image is a layer's, stretched to the image; it must be this much smaller.
_MIN_LAYER_SHRINK = 1.5


def _check_map_size(map_hw: tuple[int, ...], image_hw: tuple[int, ...]) -> None:
    """Accept attribution maps of the image's size, or a layer's map (at least 1.5x smaller along both
    axes: a pooled or strided layer). Anything else would be stretched into nonsense over the image."""
    (h, w), (height, width) = map_hw, image_hw
    if (h, w) == (height, width):
        return
    if min(height / h, width / w) >= _MIN_LAYER_SHRINK:
        return
    raise ValueError(
        f"shap_values give {h}x{w} maps but pixel_values are {height}x{width} images: the attributions "
        "do not belong to these images (and are not a layer's map, which is at least 1.5x smaller along "
        "both axes). Pass the images that were explained, or pixel_values=None to draw the maps "
        "alone."
    )


def prepare(shap_values: Attributions, pixel_values: ArrayOrTensor | None, labels: Labels) -> PlotInputs:
    """Normalise any accepted form of attributions and pixels into `PlotInputs`."""
    if is_explanation(shap_values):
        outputs, pixel_values, labels = _explanation_parts(shap_values, pixel_values, labels)
    elif isinstance(shap_values, (list, tuple)):
        outputs = _output_list(shap_values)
    else:
        values = to_numpy(shap_values)
        reference = None if pixel_values is None else to_numpy(pixel_values)
        outputs = _split_outputs(values, reference, None)
    pixels = _pixels(pixel_values)
    return PlotInputs(maps=_maps(outputs, pixels), pixels=pixels, labels=labels)


def label_grid(labels: Labels, n_rows: int, n_outputs: int) -> tuple[np.ndarray | None, bool]:
    """Labels as an (N, k) or (1, k) array of strings, and whether they differ per row.

    Accepted: k names (shared by all rows), an (N, k) array (one name per row and output), and for a
    single output, N names (one per row).
    """
    if labels is None:
        return None, False
    if isinstance(labels, str):
        labels = [labels]
    arr = np.asarray(to_numpy(labels) if not isinstance(labels, (list, tuple)) else labels, dtype=object)
    if arr.ndim == 1 and arr.shape[0] == n_outputs:
        return arr.reshape(1, n_outputs), False
    if arr.ndim == 1 and n_outputs == 1 and arr.shape[0] == n_rows:
        return arr.reshape(n_rows, 1), n_rows > 1
    if arr.ndim == 2 and arr.shape == (n_rows, n_outputs):
        return arr, n_rows > 1
    if arr.ndim == 2 and arr.shape == (1, n_outputs):
        return arr, False
    raise ValueError(
        f"labels must be {n_outputs} name(s) (one per output) or an array of shape ({n_rows}, {n_outputs}) "
        f"(one name per image and output); got shape {arr.shape}."
    )

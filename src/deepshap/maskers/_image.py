"""The Image masker: hides pixel regions by blurring, inpainting, a background image or a constant.

Masks are boolean ``(B, H, W)`` arrays over pixels (True keeps a pixel, channels move together). Kept pixels
keep their exact values. The fill for hidden pixels is prepared once per image (:meth:`Image.filler`):
a blurred copy computed once, a background, a constant (:mod:`._constant_fill`), or per-mask inpainting
computed from the kept pixels only, in the image's own value range (:mod:`._inpaint`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from typing import IO, cast

import numpy as np
import numpy.typing as npt

from deepshap.maskers._constant_fill import ConstantFill, _background_fill, _blur, _constant_fill
from deepshap.maskers._inpaint import INPAINT_METHODS, InpaintFill
from deepshap.maskers._serialization import load_image_masker, save_image_masker
from deepshap.maskers._trees import PartitionTree, axis_tree, superpixel_tree

_BLUR = re.compile(r"^blur\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
PARTITIONS = ("axis", "superpixels")
_MASK_VALUE_HELP = (
    'use "inpaint_telea", "inpaint_ns", "blur(kx,ky)" (kernel size in pixels), a background image of the '
    "input's shape, or a number"
)


class Image:
    """Masks out regions of an image (H, W, C) for the Partition explainer.

    Parameters
    ----------
    mask_value:
        ``"inpaint_telea"`` / ``"inpaint_ns"`` (OpenCV inpainting from the kept pixels), ``"blur(kx,ky)"``
        (a box blur of the image, computed once per image), a background image of the input's shape, or a
        number (a constant fill).
    shape:
        The shape ``(H, W, C)`` of one image. Needed unless ``mask_value`` is a background image.
    partition:
        ``"axis"`` (default): shap's axis-aligned halving tree, so results agree with shap's.
        ``"superpixels"``: SLIC superpixels of each image merged hierarchically by colour similarity;
        regions then follow the objects in the picture.
    n_segments:
        Approximate number of superpixels for ``partition="superpixels"``.
    """

    _kind: str  # how hidden pixels are filled: "inpaint", "blur", "constant" or "background"
    _param: object  # per kind: the inpainting method, the blur kernel, the number, the background image

    def __init__(
        self,
        mask_value: str | npt.ArrayLike,
        shape: Iterable[int] | None = None,
        partition: str = "axis",
        n_segments: int = 100,
    ) -> None:
        if isinstance(mask_value, str):
            self._kind, self._param = _parse_mask_string(mask_value)
            if shape is None:
                raise TypeError(
                    f"Image({mask_value!r}) needs the image shape: Image({mask_value!r}, shape=(H, W, C)), "
                    "for example Image(mask_value, X[0].shape)."
                )
        elif np.ndim(mask_value) == 0:
            if mask_value is None or np.asarray(mask_value).dtype.kind not in "iuf":
                raise TypeError(
                    f"mask_value must be a string, a number or a background image; got {mask_value!r}."
                )
            if not np.isfinite(mask_value):
                raise ValueError(f"mask_value must be finite; got {mask_value!r}.")
            self._kind, self._param = "constant", mask_value
            if shape is None:
                raise TypeError("Image(number) needs the image shape: Image(value, shape=(H, W, C)).")
        else:
            background = np.asarray(mask_value)
            if background.dtype.kind not in "iuf" or not np.all(np.isfinite(background)):
                raise ValueError("The background image must hold finite numbers (no NaN, inf or booleans).")
            shape = background.shape if shape is None else tuple(shape)
            if background.shape != tuple(shape):
                raise ValueError(
                    f"The background image has shape {background.shape} but the images have shape "
                    f"{tuple(shape)}; give a background of the same shape as one image."
                )
            self._kind, self._param = "background", background
        self.input_shape = _check_shape(shape)
        if self.input_shape[0] in (1, 3, 4) and self.input_shape[2] > 4:
            warnings.warn(
                f"The Image masker's shape {self.input_shape} looks channels-first (C, H, W); it takes "
                "(height, width, channels). Move the channels last: X.transpose(0, 2, 3, 1), and a model "
                "that wants channels first can transpose its batch back.",
                stacklevel=2,
            )
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}; got {partition!r}.")
        if int(n_segments) < 2:
            raise ValueError(f"n_segments must be at least 2; got {n_segments}.")
        self.mask_value = mask_value
        self.partition = partition
        self.n_segments = int(n_segments)
        # shap's attributes: one "row" of H*W*C features per masked sample
        self.shape = (1, int(np.prod(self.input_shape)))
        self.image_data = True

    @property
    def clustering(self) -> np.ndarray | Callable[[np.ndarray], np.ndarray]:
        """The partition tree as a scipy linkage matrix (a function of the image for superpixels)."""
        if self.partition == "axis":
            return self.tree(None).clustering()
        return lambda x: self.tree(x).clustering()

    def tree(self, x: np.ndarray | None) -> PartitionTree:
        """The partition tree used for image ``x`` (the same for every image with the axis tree)."""
        height, width, _ = self.input_shape
        if self.partition == "axis":
            return axis_tree(height, width)
        if x is None:
            raise ValueError("The superpixel tree depends on the image; pass the image.")
        return superpixel_tree(self.check_image(x), self.n_segments)

    def check_image(self, x: npt.ArrayLike) -> np.ndarray:
        """Return ``x`` as an array after checking that it is one finite image of the masker's shape."""
        x = np.asarray(x)
        if x.shape != self.input_shape:
            raise ValueError(
                f"The image has shape {x.shape} but the masker was built for {self.input_shape}; "
                "build the masker with maskers.Image(mask_value, X[0].shape)."
            )
        if x.dtype.kind == "b":
            raise TypeError("Boolean images are not supported; pass X.astype(np.uint8) or X.astype(float).")
        if x.dtype.kind not in "iuf":
            raise TypeError(f"Images must hold numbers; got dtype {x.dtype}.")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise ValueError("The image contains NaN or infinite values; pass finite pixel values.")
        return x

    def filler(self, x: npt.ArrayLike) -> ConstantFill | InpaintFill:
        """Prepare the masking of image ``x``: the fill is computed here once, masks are applied later."""
        x = self.check_image(x)
        # the parameter's type follows the kind (see __init__)
        if self._kind == "blur":
            return ConstantFill(x, _blur(x, cast(tuple[int, int], self._param)))
        if self._kind == "constant":
            return ConstantFill(x, _constant_fill(cast(float, self._param), x))
        if self._kind == "background":
            return ConstantFill(x, _background_fill(cast(np.ndarray, self._param), x))
        return InpaintFill(x, cast(str, self._param))

    def __call__(self, mask: npt.ArrayLike, x: npt.ArrayLike) -> tuple[np.ndarray]:
        """shap's masker call: one mask (True keeps) over the H*W pixels or H*W*C values -> ``(1, H, W, C)``.

        A mask over values keeps a pixel only where all of its channels are kept.
        """
        height, width, channels = self.input_shape
        mask = np.asarray(mask, dtype=bool).ravel()
        if mask.size == height * width * channels:
            mask = mask.reshape(height, width, channels).all(axis=2)
        elif mask.size != height * width:
            raise ValueError(
                f"The mask has {mask.size} entries; give one per pixel ({height * width}) "
                f"or one per value ({height * width * channels})."
            )
        return (self.filler(x).build(mask.reshape(1, height, width)),)

    def save(self, out_file: IO[bytes]) -> None:
        """Write this masker to a binary file object (``Image.load`` reads it back; nothing is pickled)."""
        save_image_masker(self, out_file)

    @classmethod
    def load(cls, in_file: IO[bytes]) -> Image:
        """Read a masker written by :meth:`save` from a binary file object, at its current position."""
        return load_image_masker(cls, in_file)

    def __repr__(self) -> str:
        value = self.mask_value if isinstance(self.mask_value, str | int | float) else "<image>"
        return f"Image({value!r}, shape={self.input_shape}, partition={self.partition!r})"


def _parse_mask_string(mask_value: str) -> tuple[str, str | tuple[int, int]]:
    if mask_value.strip() in INPAINT_METHODS:
        return "inpaint", mask_value.strip()
    match = _BLUR.match(mask_value.strip())
    if match is None:
        raise ValueError(f"Unknown mask_value {mask_value!r}; {_MASK_VALUE_HELP}.")
    kernel = (int(match.group(1)), int(match.group(2)))
    if min(kernel) < 1:
        raise ValueError(f"The blur kernel must be at least 1x1; got {mask_value!r}.")
    return "blur", kernel


def _check_shape(shape: Iterable[int]) -> tuple[int, int, int]:
    given = tuple(shape)
    whole = tuple(int(s) for s in given)
    if len(whole) != 3 or min(whole) < 1 or whole != given:
        raise ValueError(
            "The Image masker needs the shape of one image as (height, width, channels), three whole "
            f"numbers; got {given}. For grayscale images add a channel axis: X[..., None]."
        )
    height, width, channels = whole
    return height, width, channels

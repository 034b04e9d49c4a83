"""The Image masker: hides pixel regions by blurring, inpainting, a background image or a constant.

Masks are boolean ``(B, H, W)`` arrays over pixels (True keeps a pixel, channels move together). Kept pixels
keep their exact values. The fill for hidden pixels is prepared once per image (:meth:`Image.filler`):
a blurred copy computed once, a background, a constant, or per-mask inpainting computed from the kept pixels
only, in the image's own value range.
"""

from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import IO, Any

import numpy as np

from deepshap.maskers._paths import Path, copy_cost, match_paths, path_changes
from deepshap.maskers._serialization import load_image_masker, save_image_masker
from deepshap.maskers._trees import PartitionTree, axis_tree, superpixel_tree

INPAINT_METHODS = {"inpaint_telea": "INPAINT_TELEA", "inpaint_ns": "INPAINT_NS"}
INPAINT_RADIUS = 3
# cv2.inpaint reads only pixels within radius + 1 of the hidden region; a wider crop is bit-identical.
_CROP_MARGIN = INPAINT_RADIUS + 3
_OPENCV_MAX_CHANNELS = 128  # CV_CN_MAX in OpenCV 5 (512 in OpenCV 4)
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

    def __init__(
        self,
        mask_value: Any,
        shape: tuple[int, ...] | None = None,
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
    def clustering(self) -> Any:
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

    def check_image(self, x: Any) -> np.ndarray:
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

    def filler(self, x: np.ndarray) -> ConstantFill | InpaintFill:
        """Prepare the masking of image ``x``: the fill is computed here once, masks are applied later."""
        x = self.check_image(x)
        if self._kind == "blur":
            return ConstantFill(x, _blur(x, self._param))
        if self._kind == "constant":
            return ConstantFill(x, _constant_fill(self._param, x))
        if self._kind == "background":
            return ConstantFill(x, _background_fill(self._param, x))
        return InpaintFill(x, self._param)

    def __call__(self, mask: Any, x: Any) -> tuple[np.ndarray]:
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


def _parse_mask_string(mask_value: str) -> tuple[str, Any]:
    if mask_value.strip() in INPAINT_METHODS:
        return "inpaint", mask_value.strip()
    match = _BLUR.match(mask_value.strip())
    if match is None:
        raise ValueError(f"Unknown mask_value {mask_value!r}; {_MASK_VALUE_HELP}.")
    kernel = (int(match.group(1)), int(match.group(2)))
    if min(kernel) < 1:
        raise ValueError(f"The blur kernel must be at least 1x1; got {mask_value!r}.")
    return "blur", kernel


def _check_shape(shape: Any) -> tuple[int, int, int]:
    given = tuple(shape)
    shape = tuple(int(s) for s in given)
    if len(shape) != 3 or min(shape) < 1 or shape != given:
        raise ValueError(
            "The Image masker needs the shape of one image as (height, width, channels), three whole "
            f"numbers; got {given}. For grayscale images add a channel axis: X[..., None]."
        )
    return shape  # type: ignore[return-value]


def _cast_like(fill: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``fill`` in ``x``'s dtype (rounded for integer images), so the model sees one dtype."""
    fill = np.asarray(fill)
    if x.dtype.kind in "iu" and fill.dtype.kind == "f":
        info = np.iinfo(x.dtype)
        fill = np.clip(np.rint(fill), info.min, info.max)
    return np.ascontiguousarray(fill, dtype=x.dtype)


def _background_fill(background: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The background in ``x``'s dtype (rounded like every fill); values the dtype cannot hold are an
    error rather than a clipped fill."""
    low, high = background.min(), background.max()
    _check_fits(
        low,
        high,
        x,
        f"The background image holds values in [{low}, {high}], which do not",
        "clip it to that range",
    )
    image_low, image_high = float(x.min()), float(x.max())
    if x.dtype.kind in "iu" and background.dtype.kind == "f" and 0 < high <= 1 < image_high:
        mismatch = f"in [0, 1] while the images hold integers up to {image_high:g}"
    elif x.dtype.kind == "f" and 0 <= image_low and image_high <= 1 < high:
        mismatch = f"up to {high:g} while the images are in [0, 1]"
    else:
        return _cast_like(background, x)
    warnings.warn(
        f"The background image holds values {mismatch}; it is used as it is, which is probably not the "
        "picture meant: give the background in the images' own range.",
        stacklevel=2,
    )
    return _cast_like(background, x)


def _constant_fill(value: float, x: np.ndarray) -> np.ndarray:
    """An image of ``value`` in ``x``'s dtype (rounded like every fill); a value the dtype cannot hold is
    an error rather than a wrapped-around or clipped fill."""
    _check_fits(value, value, x, f"mask_value {value!r} does not", "pick a value in that range")
    return _cast_like(np.full(x.shape, value, dtype=np.float64), x)


def _check_fits(low: float, high: float, x: np.ndarray, subject: str, advice: str) -> None:
    """Raise unless fill values in [low, high], rounded, fit ``x``'s dtype: within an integer dtype's
    range, finite in a float dtype (1e5 is infinite in float16)."""
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        if round(float(low)) < info.min or round(float(high)) > info.max:
            raise ValueError(
                f"{subject} fit the images' dtype {x.dtype} ([{info.min}, {info.max}]); {advice} or pass "
                "float images."
            )
        return
    with np.errstate(over="ignore"):
        cast = np.array([low, high], dtype=np.float64).astype(x.dtype)
    if not np.all(np.isfinite(cast)):
        largest = np.finfo(x.dtype).max
        raise ValueError(
            f"{subject} fit the images' dtype {x.dtype} (largest {largest}); {advice} or pass images of "
            "a wider float dtype."
        )


def _blur(x: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """OpenCV's box blur of the whole image (the same call shap makes), in ``x``'s dtype."""
    import cv2

    native = x.dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64)
    source = x if native else x.astype(np.float64)
    channels = x.shape[-1]
    blurred = np.concatenate(  # OpenCV takes at most _OPENCV_MAX_CHANNELS channels at once
        [
            cv2.blur(np.ascontiguousarray(source[..., c : c + _OPENCV_MAX_CHANNELS]), kernel).reshape(
                *x.shape[:2], -1
            )
            for c in range(0, channels, _OPENCV_MAX_CHANNELS)
        ],
        axis=-1,
    )
    return _cast_like(blurred, x)


class _Fill:
    """What the fills share: the image ``x`` and a batch buffer that the explainer's batches live in."""

    x: np.ndarray
    _buffer: np.ndarray | None = None

    def reserve(self, batch_size: int, buffer: np.ndarray | None = None) -> np.ndarray:
        """Make room for batches of up to ``batch_size`` images; return the batch buffer.

        ``buffer`` (say, the one an earlier image used) is taken over when it fits, which spares the
        memory system a fresh allocation of a whole batch per image; its contents are overwritten.
        """
        if self._buffer is None or len(self._buffer) < batch_size:
            fits = (
                buffer is not None
                and len(buffer) >= batch_size
                and buffer.shape[1:] == self.x.shape
                and buffer.dtype == self.x.dtype
            )
            self._buffer = buffer if fits else np.empty((batch_size, *self.x.shape), dtype=self.x.dtype)
            self._new_buffer()
        return self._buffer

    def _new_buffer(self) -> None:
        """Hook: the batch buffer was just replaced."""


class ConstantFill(_Fill):
    """Masking with a fill that does not depend on the mask (blur, background, constant)."""

    def __init__(self, x: np.ndarray, fill: np.ndarray) -> None:
        self.x = x
        self.fill = fill
        self._held: list[Path | None] = []  # per buffer slot, the path of the image it holds
        self._input_kept: bool | None = None  # does the model leave its input as it was?
        self._probe: tuple[int, np.ndarray] | None = None  # one row of the last batch, as written

    def build(self, keep: np.ndarray) -> np.ndarray:
        """Masked images ``(B, H, W, C)`` for masks ``keep`` ``(B, H, W)`` in one vectorised pass."""
        return np.where(keep[..., None], self.x, self.fill)

    def _new_buffer(self) -> None:
        self._held = [None] * len(self._buffer)
        self._probe = None

    def images(self, tree: PartitionTree, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        """Masked images for root paths of ``tree`` (see :data:`Path`): ``(batch, slot)``, where
        ``batch[slot[i]]`` is the image of ``paths[i]``.

        The batch lives in one buffer reused from call to call. Images go to the slots holding the most
        similar images (:func:`~deepshap.maskers._paths.match_paths`), and each slot is brought to its new
        image the cheapest way: rewriting only the regions that differ from what it holds, or a whole copy
        of the fill (or the image) and then the kept (hidden) regions. Reuse relies on the model leaving
        its input as it found it: this is checked in full on the first reuse and on one row of every batch
        (a different row each time) after that; once the model is seen changing its input in place, every
        image is rebuilt. A change to part of the images from the second call on can go unseen, and the
        model must not keep its input after returning (see :class:`~deepshap.PartitionExplainer`).
        """
        if self._input_kept is None and any(path is not None for path in self._held):
            self._input_kept = self._slots_intact(tree)  # the first time there is an image to check
        elif self._input_kept and self._probe is not None:
            row, written = self._probe
            self._input_kept = np.array_equal(self._buffer[: len(written), row], written)
        self.reserve(len(paths))
        n = len(paths)
        held = self._held[:n] if self._input_kept is not False else [None] * n
        slot = np.empty(n, dtype=np.intp)
        for i, s in match_paths(paths, [path or () for path in held]):
            slot[i] = s
            self._write(tree, s, held[s], paths[i])
            self._held[s] = paths[i]
        height = self.x.shape[0]
        step = 97 if height % 97 else 1  # a step prime to the height visits every row in turn
        row = (self._probe[0] + step) % height if self._probe is not None else 0
        self._probe = (row, self._buffer[:n, row].copy())
        return self._buffer[:n], slot

    def _write(self, tree: PartitionTree, slot: int, before: Path | None, path: Path) -> None:
        """Bring buffer slot ``slot``, which holds the image of ``before``, to the image of ``path``."""
        image = self._buffer[slot]
        changes, cost = path_changes(tree.area, before, path) if before is not None else ([], np.inf)
        if cost > 1.0:  # a rebuild copies a whole image first: compare when the changes cost as much
            kept = [piece for piece in path if piece[1]]
            hidden = [piece for piece in path if not piece[1]]
            from_fill, from_image = 1 + copy_cost(tree.area, kept), 1 + copy_cost(tree.area, hidden)
            if from_fill <= from_image and from_fill < cost:
                image[...], changes = self.fill, kept
            elif from_image < cost:
                image[...], changes = self.x, hidden
        regions, sources = tree.regions, (self.fill, self.x)
        for node, keep in changes:
            region = regions[node]
            image[region] = sources[keep][region]

    def _slots_intact(self, tree: PartitionTree) -> bool:
        """Whether the buffer slots written so far still hold the images last written there."""
        written = [slot for slot, path in enumerate(self._held) if path is not None]
        expected = self.build(_path_masks(tree, [self._held[slot] for slot in written]))
        return np.array_equal(expected, self._buffer[written])


class InpaintFill(_Fill):
    """Masking by OpenCV inpainting, computed per distinct mask from the kept pixels only.

    OpenCV inpaints 8-bit images, so the image is mapped onto 0..255 for inpainting and the filled pixels
    are mapped back: 8-bit images (also as floats in [0, 255], or divided by 255) as they are, exactly as
    shap inpaints them, any other image from the value range of the kept pixels around each mask (see
    :func:`_byte_scale`); kept pixels are copied from the image itself, never from the 8-bit copy, and
    hidden pixels are blanked before inpainting (OpenCV would otherwise let some of them leak into the
    fill near the image border). Each mask is inpainted within the bounding box of its hidden pixels
    (plus the margin the method reads), and the masks of a batch run in parallel threads.
    """

    def __init__(self, x: np.ndarray, method: str) -> None:
        import cv2

        self.x = x
        self.flag = getattr(cv2, INPAINT_METHODS[method])
        # 8-bit images are mapped once; `bytes` None: per mask, from the kept pixels' range
        self.bytes: np.ndarray | None = None
        self.byte_values: np.ndarray | None = None  # byte -> image value; None: uint8 images are bytes
        scale = _byte_scale(x)
        if scale is not None:
            self.bytes = x if x.dtype == np.uint8 else np.rint(x.astype(np.float64) / scale).astype(np.uint8)
            self.byte_values = None if x.dtype == np.uint8 else _cast_like(np.arange(256) * scale, x)
        mean = x.astype(np.float64).mean(axis=(0, 1))
        self.all_hidden = _cast_like(np.broadcast_to(mean, x.shape), x)

    def images(self, tree: PartitionTree, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        """Masked images ``(B, H, W, C)`` for root paths of ``tree``, in order: ``(batch, arange(B))``."""
        keep = _path_masks(tree, paths)
        return self._build_into(keep, self.reserve(len(keep))[: len(keep)]), np.arange(len(paths))

    def build(self, keep: np.ndarray) -> np.ndarray:
        """Masked images ``(B, H, W, C)`` for masks ``keep`` ``(B, H, W)``; each distinct mask once."""
        return self._build_into(keep, np.empty((len(keep), *self.x.shape), dtype=self.x.dtype))

    def _build_into(self, keep: np.ndarray, out: np.ndarray) -> np.ndarray:
        first: dict[bytes, int] = {}
        todo = []
        for i, mask in enumerate(keep):
            key = np.packbits(mask).tobytes()
            if key in first:
                continue
            first[key] = i
            todo.append(i)
        if len(todo) > 1:
            list(_executor().map(lambda i: self.inpaint(keep[i], out[i]), todo))
        else:
            for i in todo:
                self.inpaint(keep[i], out[i])
        for i, mask in enumerate(keep):
            j = first[np.packbits(mask).tobytes()]
            if j != i:
                out[i] = out[j]
        return out

    def inpaint(self, keep: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """One masked image (into ``out`` if given): kept pixels exact, hidden ones inpainted from them."""
        import cv2

        out = np.empty_like(self.x) if out is None else out
        hidden = ~keep
        rows = np.flatnonzero(hidden.any(axis=1))
        if rows.size == 0:
            out[...] = self.x
            return out
        if rows.size == hidden.shape[0] and hidden.all():
            out[...] = self.all_hidden
            return out
        cols = np.flatnonzero(hidden.any(axis=0))
        height, width = hidden.shape
        y0, y1 = max(rows[0] - _CROP_MARGIN, 0), min(rows[-1] + 1 + _CROP_MARGIN, height)
        x0, x1 = max(cols[0] - _CROP_MARGIN, 0), min(cols[-1] + 1 + _CROP_MARGIN, width)
        mask8 = hidden[y0:y1, x0:x1].view(np.uint8)
        kept8 = keep[y0:y1, x0:x1].view(np.uint8)
        if self.bytes is not None:
            image_bytes, byte_values = self.bytes[y0:y1, x0:x1], self.byte_values
        else:
            image_bytes, byte_values = _kept_range_bytes(self.x[y0:y1, x0:x1], kept8.view(bool), self.x)
        # OpenCV reads some hidden pixels near the image border: blank them so they cannot leak
        source = _blank(image_bytes, kept8)
        channels = source.shape[-1]
        if channels in (1, 3):
            filled = cv2.inpaint(
                source[..., 0] if channels == 1 else source, mask8, INPAINT_RADIUS, self.flag
            )
        else:
            filled = np.stack(
                [
                    cv2.inpaint(np.ascontiguousarray(source[..., c]), mask8, INPAINT_RADIUS, self.flag)
                    for c in range(channels)
                ],
                axis=-1,
            )
        out[...] = self.x
        region = out[y0:y1, x0:x1]
        filled = filled.reshape(region.shape)
        if byte_values is not None:
            filled = _look_up(byte_values, filled)
        _copy_where(region, filled, mask8)
        return out


_OPENCV_DTYPES = frozenset(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)
)
"""Element types that every supported OpenCV version handles in its per-pixel array functions."""


def _opencv_can(array: np.ndarray) -> bool:
    """Whether OpenCV's copy and look-up functions take ``array`` ``(h, w, C)`` (numpy does the rest)."""
    return array.dtype in _OPENCV_DTYPES and array.shape[-1] <= 4


def _blank(image: np.ndarray, kept8: np.ndarray) -> np.ndarray:
    """A copy of ``image`` ``(h, w, C)`` with the pixels where the ``(h, w)`` uint8 mask ``kept8`` is 0 set
    to 0."""
    import cv2

    if _opencv_can(image):  # a masked copy into zeros, some 50x faster than np.where
        return cv2.copyTo(image, kept8).reshape(image.shape)
    return np.where(kept8.view(bool)[..., None], image, np.zeros((), image.dtype))


def _look_up(table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``table[indices]`` for a 256-entry table and uint8 ``indices`` ``(h, w, C)``."""
    import cv2

    if _opencv_can(indices) and table.dtype in _OPENCV_DTYPES:
        return cv2.LUT(indices, table).reshape(indices.shape)
    return np.take(table, indices)


def _copy_where(dst: np.ndarray, src: np.ndarray, mask8: np.ndarray) -> None:
    """``dst[mask] = src[mask]`` for ``(h, w, C)`` arrays (``dst`` may be a view) and an ``(h, w)`` uint8
    mask: OpenCV's masked copy where it writes into ``dst`` in place (some 30x faster), else numpy's."""
    import cv2

    if _opencv_can(dst) and np.may_share_memory(cv2.copyTo(src, mask8, dst), dst):
        return
    np.copyto(dst, src, where=mask8.view(bool)[..., None])


def _path_masks(tree: PartitionTree, paths: list[Path]) -> np.ndarray:
    """Keep-masks ``(B, H, W)`` of root paths: True on their kept regions."""
    return tree.masks([[node for node, kept in path if kept] for path in paths])


def _byte_scale(x: np.ndarray) -> float | None:
    """The step with ``x == step * byte`` for 8-bit images: integral images in [0, 255] (step 1) and float
    images in [0, 1] holding multiples of 1/255 (an 8-bit image divided by 255; step 1/255). They inpaint
    exactly as shap inpaints the 8-bit image. None for any other image (normalised, another range,
    fractional values): see :func:`_kept_range_bytes`."""
    low, high = float(x.min()), float(x.max())
    if low >= 0 and high <= 1 and x.dtype.kind == "f":
        scaled = x.astype(np.float64) * 255.0
        # within float16's rounding of k/255 (a quarter byte), for float32 and wider 1/1000 of a byte
        if np.allclose(scaled, np.rint(scaled), rtol=0.0, atol=max(1e-3, 255 * float(np.finfo(x.dtype).eps))):
            return 1.0 / 255.0
    if low >= 0 and high <= 255 and (x.dtype.kind in "iu" or np.array_equal(x, np.rint(x))):
        return 1.0
    return None


def _kept_range_bytes(crop: np.ndarray, kept: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A crop ``(h, w, C)`` of an image that is not 8-bit mapped onto 0..255 from the [min, max] of its
    kept pixels (``kept`` ``(h, w)``), and the image value of each byte.

    The range comes from the kept pixels alone, so that the fill does too, and it is the range the fill
    is made of, so that a dark image in [0, 0.003] keeps 256 levels instead of the 2 that a fixed
    [0, 1] -> 0..255 scaling leaves it.
    """
    values = crop.astype(np.float64)
    shown = values[kept]
    low, high = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 0.0)
    step = (high - low) / 255.0 if high > low else 1.0
    image_bytes = np.rint((np.clip(values, low, high) - low) / step).astype(np.uint8)
    return image_bytes, _cast_like(low + np.arange(256) * step, x)


@lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    """Threads for per-mask inpainting (OpenCV releases the GIL while it inpaints)."""
    try:
        workers = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        workers = os.cpu_count() or 1
    return ThreadPoolExecutor(max_workers=max(1, min(workers, 8)), thread_name_prefix="deepshap-inpaint")


if hasattr(os, "register_at_fork"):  # a forked child inherits the pool but not its threads: start afresh
    os.register_at_fork(after_in_child=_executor.cache_clear)

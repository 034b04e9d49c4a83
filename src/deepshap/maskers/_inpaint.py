"""Masking by OpenCV inpainting: each distinct mask's hidden pixels filled from its kept pixels only.

OpenCV inpaints 8-bit images; this module maps an image onto bytes (as it is for 8-bit images, from the
kept pixels' range for any other), inpaints only the box around the hidden pixels, maps the fill back to
the image's values and dtype, and spreads the masks of a batch over threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from deepshap.maskers._fill import _cast_like, _Fill, _path_masks
from deepshap.maskers._paths import Path
from deepshap.maskers._trees import PartitionTree

INPAINT_METHODS = {"inpaint_telea": "INPAINT_TELEA", "inpaint_ns": "INPAINT_NS"}
INPAINT_RADIUS = 3
# cv2.inpaint reads only pixels within radius + 1 of the hidden region; a wider crop is bit-identical.
_CROP_MARGIN = INPAINT_RADIUS + 3


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

"""Masking with a fill that does not depend on the mask: a blur, a background image or a constant.

The fill image is computed once per image, in the image's dtype; masked images are then written into the
reused batch buffer region by region, each slot rewritten only where it differs from the image it holds.
"""

from __future__ import annotations

import warnings

import numpy as np

from deepshap.maskers._fill import _cast_like, _Fill, _path_masks
from deepshap.maskers._paths import Path, copy_cost, match_paths, path_changes
from deepshap.maskers._trees import PartitionTree

_OPENCV_MAX_CHANNELS = 128  # CV_CN_MAX in OpenCV 5 (512 in OpenCV 4)


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

    def _new_buffer(self, buffer: np.ndarray) -> None:
        self._held = [None] * len(buffer)
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
        previous = self._buffer  # the last batch, as the model left it (None before the first)
        if previous is not None:
            if self._input_kept is None and any(path is not None for path in self._held):
                self._input_kept = self._slots_intact(tree, previous)  # the first time there is one
            elif self._input_kept and self._probe is not None:
                row, written = self._probe
                self._input_kept = np.array_equal(previous[: len(written), row], written)
        buffer = self.reserve(len(paths))
        n = len(paths)
        held = self._held[:n] if self._input_kept is not False else [None] * n
        slot = np.empty(n, dtype=np.intp)
        for i, s in match_paths(paths, [path or () for path in held]):
            slot[i] = s
            self._write(tree, buffer[s], held[s], paths[i])
            self._held[s] = paths[i]
        height = self.x.shape[0]
        step = 97 if height % 97 else 1  # a step prime to the height visits every row in turn
        row = (self._probe[0] + step) % height if self._probe is not None else 0
        self._probe = (row, buffer[:n, row].copy())
        return buffer[:n], slot

    def _write(self, tree: PartitionTree, image: np.ndarray, before: Path | None, path: Path) -> None:
        """Bring ``image`` (a buffer slot), which holds the image of ``before``, to the image of ``path``."""
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

    def _slots_intact(self, tree: PartitionTree, buffer: np.ndarray) -> bool:
        """Whether the slots of ``buffer`` written so far still hold the images last written there."""
        written = [(slot, path) for slot, path in enumerate(self._held) if path is not None]
        expected = self.build(_path_masks(tree, [path for _, path in written]))
        return np.array_equal(expected, buffer[[slot for slot, _ in written]])


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

"""Decode image files with Pillow into float32 ``(H, W, C)`` arrays in [0, 1], one error text per failure.

A corrupt or truncated file, or one of another size when resizing was not asked for, is an error for that
image only: the job records it and goes on.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import JSONObject

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

DECODE_THREADS = 2  # Pillow releases the GIL while decoding: two threads keep ahead of most models


class ImageDecoder:
    """Decodes files to ``size`` (width, height): exactly that size, or resized (``resize``) with an
    optional center crop to the target's aspect ratio (``crop``) first; ``mode`` "RGB" or "L"."""

    def __init__(
        self, size: tuple[int, int] | None = None, resize: bool = False, crop: bool = False, mode: str = "RGB"
    ) -> None:
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L'; got {mode!r}.")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.resize = resize
        self.crop = crop
        self.mode = mode
        self._pool: ThreadPoolExecutor | None = None

    def settings(self) -> JSONObject:
        return {"size": self.size, "resize": self.resize, "crop": self.crop, "mode": self.mode}

    def image_shape(self) -> tuple[int, int, int]:
        assert self.size is not None
        return (self.size[1], self.size[0], 3 if self.mode == "RGB" else 1)

    def natural_size(self, path: Path) -> tuple[int, int]:
        from PIL import Image

        with Image.open(path) as image:
            return image.size

    def decode(self, path: Path) -> np.ndarray:
        """One image as float32 ``(H, W, C)`` in [0, 1]; raises ValueError or OSError naming the problem."""
        from PIL import Image

        with Image.open(path) as opened:
            opened.load()  # a truncated file fails here, not later
            image = opened.convert(self.mode)
        if self.size is not None and image.size != self.size:
            if not self.resize:
                raise ValueError(
                    f"image is {image.size[0]}x{image.size[1]}, the job's images are "
                    f"{self.size[0]}x{self.size[1]}; pass --resize to resize it (and --image-size WxH "
                    "to choose the size)"
                )
            if self.crop:
                image = _center_crop(image, self.size[0] / self.size[1])
            image = image.resize(self.size, Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        return array[..., None] if array.ndim == 2 else array

    def decode_many(self, paths: list[Path]) -> tuple[list[np.ndarray | None], dict[int, str]]:
        """Decode ``paths`` in a few threads; returns the arrays (None where one failed) and the errors by
        position."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="deepshap-decode")
        results = list(self._pool.map(self._try_decode, paths))
        errors = {i: text for i, (_, text) in enumerate(results) if text is not None}
        return [array for array, _ in results], errors

    def _try_decode(self, path: Path) -> tuple[np.ndarray | None, str | None]:
        try:
            return self.decode(path), None
        except Exception as exc:  # whatever a bad file raises in Pillow is that image's error only
            return None, f"{type(exc).__name__}: {exc}"

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_pool": None}


def _center_crop(image: PILImage, aspect: float) -> PILImage:
    width, height = image.size
    if width / height > aspect:
        new_width = round(height * aspect)
        left = (width - new_width) // 2
        return image.crop((left, 0, left + new_width, height))
    new_height = round(width / aspect)
    top = (height - new_height) // 2
    return image.crop((0, top, width, top + new_height))


def to_channels_first(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` decoded images as ``(N, C, H, W)`` (the layout of most torch models)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(images), -1, 1))

"""What the Image masker's fills share: the batch buffer, the images' dtype, masks of root paths.

A fill (:class:`~deepshap.maskers._constant_fill.ConstantFill` or
:class:`~deepshap.maskers._inpaint.InpaintFill`) builds the masked images of one image into a batch
buffer that the explainer hands on from image to image; every fill value is given in the image's dtype.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from deepshap.maskers._paths import Path
from deepshap.maskers._trees import PartitionTree


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
            if (
                buffer is None
                or len(buffer) < batch_size
                or buffer.shape[1:] != self.x.shape
                or buffer.dtype != self.x.dtype
            ):
                buffer = np.empty((batch_size, *self.x.shape), dtype=self.x.dtype)
            self._buffer = buffer
            self._new_buffer(buffer)
        return self._buffer

    def _new_buffer(self, buffer: np.ndarray) -> None:
        """Hook: the batch buffer was just replaced by ``buffer``."""


def _cast_like(fill: npt.ArrayLike, x: np.ndarray) -> np.ndarray:
    """``fill`` in ``x``'s dtype (rounded for integer images), so the model sees one dtype."""
    fill = np.asarray(fill)
    if x.dtype.kind in "iu" and fill.dtype.kind == "f":
        info = np.iinfo(x.dtype)
        fill = np.clip(np.rint(fill), info.min, info.max)
    return np.ascontiguousarray(fill, dtype=x.dtype)


def _path_masks(tree: PartitionTree, paths: list[Path]) -> np.ndarray:
    """Keep-masks ``(B, H, W)`` of root paths: True on their kept regions."""
    return tree.masks([[node for node, kept in path if kept] for path in paths])

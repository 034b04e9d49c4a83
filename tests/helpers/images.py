"""Real photos from scikit-image (nothing downloaded) and random keep-masks shaped like partition masks."""

from __future__ import annotations

import cv2
import numpy as np


def photo(size: int = 48) -> np.ndarray:
    """A real photo (skimage's coffee), resized, float64 in [0, 255] with fractional values."""
    import skimage.data

    image = cv2.resize(skimage.data.coffee(), (size, size), interpolation=cv2.INTER_AREA)
    noisy = image.astype(np.float64) + np.random.default_rng(0).uniform(-0.4, 0.4, image.shape)
    return noisy.clip(0, 255)


def photos(n: int = 2, height: int = 24, width: int = 32) -> np.ndarray:
    """Real photos (skimage's coffee and chelsea) resized, float64 in [0, 255] with fractional values."""
    import skimage.data

    pictures = [skimage.data.coffee(), skimage.data.chelsea()][:n]
    images = np.stack([cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA) for p in pictures])
    return images.astype(np.float64) + np.random.default_rng(0).uniform(0, 0.5, images.shape)


def random_box_masks(n: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``n`` keep-masks made of a few random rectangles (the shape of partition masks)."""
    rng = np.random.default_rng(seed)
    keep = np.ones((n, *shape), dtype=bool)
    for mask in keep:
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            h, w = rng.integers(1, shape[0] // 2 + 2), rng.integers(1, shape[1] // 2 + 2)
            mask[y : y + h, x : x + w] = False
    return keep

"""Seeded random data shared by the tests (numpy only)."""

from __future__ import annotations

import numpy as np


def rng_data(shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 data of ``shape``."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)

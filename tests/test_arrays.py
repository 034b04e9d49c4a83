"""Array conversion: framework tensors to numpy, in a dtype numpy has."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.arrays import to_numpy


def test_to_numpy_reads_torch_bfloat16_as_float32() -> None:
    torch = pytest.importorskip("torch")
    assert to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    assert to_numpy(torch.ones(2, dtype=torch.float16)).dtype == np.float16


def test_to_numpy_reads_tensorflow_bfloat16_as_float32() -> None:
    tf = pytest.importorskip("tensorflow")
    assert to_numpy(tf.ones(2, dtype=tf.bfloat16)).dtype == np.float32

"""One conversion of numpy arrays, torch and TensorFlow tensors to numpy, importing no framework."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from deepshap._typing import NativeTensor

__all__ = ["to_numpy"]


def to_numpy(x: NativeTensor | npt.ArrayLike) -> np.ndarray:
    """``x`` (numpy, a torch or tf tensor, a nested sequence) as a numpy array on the host.

    Half-precision floats without a numpy dtype (bfloat16 in torch, TensorFlow's ml_dtypes bfloat16) come
    back as float32; float16 stays float16. A torch tensor is detached and moved to the CPU first.
    """
    if isinstance(x, np.ndarray):
        return x.astype(np.float32) if x.dtype.kind == "V" else x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        t = x.detach().cpu()
        if t.is_floating_point() and t.dtype.itemsize == 2 and str(t.dtype) != "torch.float16":
            t = t.float()
        return t.numpy()
    out = np.asarray(x.numpy()) if hasattr(x, "numpy") and callable(x.numpy) else np.asarray(x)
    return out.astype(np.float32) if out.dtype.kind == "V" else out

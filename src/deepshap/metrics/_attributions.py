"""Any explanation of image samples as one array ``(N, *sample_shape, R)`` with a trailing output axis.

Accepted: an :class:`~deepshap.Explanation` (deepshap's or shap's), shap's lists of one array per
output (shap <= 0.44), arrays with a trailing output axis (shap >= 0.45), a single output's array
without one, ``(values, indexes)`` from ``ranked_output``, and torch or tf tensors of any of these.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from deepshap._typing import Attributions, NativeTensor

__all__ = ["as_attributions"]


def _numpy(value: NativeTensor | npt.ArrayLike) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def as_attributions(
    explanation: Attributions, sample_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values (N, *sample_shape, R), output indexes (N, R) or None)`` for ``explanation``.

    The indexes are known when the explanation carries them (ranked outputs, ``output_indexes``);
    otherwise the caller says which outputs the R columns are.
    """
    indexes = None
    if isinstance(explanation, tuple) and len(explanation) == 2 and not np.isscalar(explanation[1]):
        explanation, indexes = explanation
        indexes = np.asarray(indexes, dtype=np.int64)
    if type(explanation).__name__ == "Explanation":
        found = getattr(explanation, "output_indexes", None)
        if found is not None and indexes is None:
            indexes = np.asarray(found, dtype=np.int64)
        explanation = explanation.values
    if isinstance(explanation, list):
        if len(explanation) == 0:
            raise ValueError("The explanation is an empty list.")
        if isinstance(explanation[0], list):
            raise ValueError(
                "deepshap.metrics measures explanations of one image input; got one list per input."
            )
        values = np.stack([_numpy(v) for v in explanation], axis=-1)
    else:
        values = _numpy(explanation)
    depth = len(sample_shape)
    if values.shape[1:] == tuple(sample_shape):
        values = values[..., None]
    if values.ndim != depth + 2 or values.shape[1 : depth + 1] != tuple(sample_shape):
        raise ValueError(
            f"The explanation has shape {values.shape}; expected (N, *{tuple(sample_shape)}) with an "
            "optional trailing output axis, a list of such arrays (one per output) or an Explanation."
        )
    if indexes is not None:
        indexes = (
            indexes.reshape(len(values), -1) if indexes.ndim == 2 else np.tile(indexes, (len(values), 1))
        )
    return values, indexes

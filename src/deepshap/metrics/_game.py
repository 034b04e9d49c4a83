"""The model as a batched function of composed images, on the framework's own tensors.

An image whose regions in a keep-mask come from ``x`` and the rest from a background row ``b`` is
``b + (x - b) * mask``; :class:`ModelRunner` builds such images ``batch_size`` at a time on the model's
device (torch, TensorFlow, or numpy for a plain function) and returns the outputs as numpy, so memory
is bounded by ``batch_size`` whatever the number of coalitions or background rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from deepshap._typing import InputData, NativeModel, NativeTensor

if TYPE_CHECKING:
    from tqdm import tqdm

    from deepshap.frameworks import ModelAdapter, TensorOps
    from deepshap.metrics._regions import Regions

__all__ = ["MeasuredModel", "ModelRunner", "RegionGame"]

#: A model to measure: a framework model, or a function of a numpy batch returning its outputs.
MeasuredModel = NativeModel | Callable[[np.ndarray], npt.ArrayLike]


class _NumpyOps:
    """The three tensor operations the runner needs, for a plain function of numpy batches."""

    def asarray(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(array, dtype=np.float32)

    def reshape(self, tensor: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return tensor.reshape(shape)

    def concat(self, tensors: list[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(tensors, axis=axis)


def _is_framework_model(model: object) -> bool:
    from deepshap.frameworks import detect_framework

    try:
        detect_framework(model)
    except TypeError:
        return False
    return True


class ModelRunner:
    """``model`` (a torch module, a Keras model, or a function of a numpy batch) as outputs ``(B, K)``.

    ``background`` fixes the input shape and, for a framework model, its adapter; the model must take a
    single input.
    """

    def __init__(self, model: MeasuredModel, background: InputData, batch_size: int = 256) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        if isinstance(background, list | tuple):
            raise ValueError(
                "deepshap.metrics measures models of one image input; give one background array."
            )
        self.batch_size = int(batch_size)
        self.adapter: ModelAdapter | None = None
        self.ops: TensorOps | _NumpyOps
        if _is_framework_model(model):
            from deepshap.frameworks import load_adapter

            self.adapter = load_adapter(model, background)
            if self.adapter.n_inputs != 1:
                raise ValueError("deepshap.metrics measures models of one image input.")
            self.ops = self.adapter.ops
        elif callable(model):
            self.ops = _NumpyOps()
            self._function: Callable[[np.ndarray], npt.ArrayLike] = model
        else:
            raise TypeError(
                f"model must be a torch module, a Keras model or a function of a numpy batch; got "
                f"{type(model).__name__}."
            )
        self.background = self.native(background)
        self.sample_shape = tuple(int(d) for d in self.background.shape[1:])
        self.n_outputs = int(self.outputs(self.background[:1]).shape[1])

    def native(self, array: InputData) -> NativeTensor:
        """A batch (numpy, torch or tf) as a native float tensor on the model's device."""
        if self.adapter is not None:
            return self.adapter.to_inputs(array)[0]
        return self.ops.asarray(_as_numpy(array))

    def outputs(self, batch: NativeTensor) -> np.ndarray:
        """Model outputs ``(B, K)`` as numpy for one native batch (no gradients)."""
        if self.adapter is not None:
            return self.adapter.predict([batch], batch_size=max(self.batch_size, int(batch.shape[0])))
        out = _as_numpy(self._function(batch))
        return out[:, None] if out.ndim == 1 else out.reshape(len(out), -1)

    def predict(self, images: InputData) -> np.ndarray:
        """Outputs ``(N, K)`` for a batch of images, ``batch_size`` at a time."""
        native = self.native(images)
        chunks = [
            self.outputs(native[i : i + self.batch_size]) for i in range(0, len(native), self.batch_size)
        ]
        return np.concatenate(chunks)

    def composed_outputs(
        self, x: NativeTensor, fills: NativeTensor, masks: np.ndarray, fill_rows: np.ndarray
    ) -> Iterator[np.ndarray]:
        """Outputs of ``fill[fill_rows[i]] + (x - fill[fill_rows[i]]) * masks[i]``, one chunk at a time.

        ``x`` is one native sample, ``fills`` native rows, ``masks`` float keep-masks over values
        ``(C, *sample_shape)``; yields ``(chunk, K)`` arrays in order, ``batch_size`` images per pass.
        """
        for start in range(0, len(masks), self.batch_size):
            rows = fill_rows[start : start + self.batch_size]
            mask = self.ops.asarray(masks[start : start + self.batch_size])
            fill = fills[rows[0] : rows[0] + 1] if np.all(rows == rows[0]) else _take(self, fills, rows)
            yield self.outputs(fill + (x[None] - fill) * mask)


class RegionGame:
    """The interventional game of one image: v(S) = mean over background rows b of f(x on S, b elsewhere).

    Coalitions are keep-masks over regions; each is composed with every background row, and the values
    are averaged over the rows. ``outputs`` picks the model outputs kept (the explained ones).
    """

    def __init__(
        self,
        runner: ModelRunner,
        x: NativeTensor,
        background: NativeTensor,
        regions: Regions,
        outputs: np.ndarray,
    ) -> None:
        self.runner = runner
        self.x = x
        self.background = background
        self.regions = regions
        self.outputs = np.asarray(outputs, dtype=np.int64)
        self.n_background = int(background.shape[0])
        self.n_evaluations = 0

    def values(self, coalitions: np.ndarray, progress: tqdm | None = None) -> np.ndarray:
        """v(S) for keep-masks over regions ``(C, M)``: ``(C, R)`` for the selected outputs."""
        n_coalitions, n_rows = len(coalitions), self.n_background
        totals = np.zeros((n_coalitions, len(self.outputs)))
        per_chunk = max(1, self.runner.batch_size // n_rows)
        for first in range(0, n_coalitions, per_chunk):
            chunk = coalitions[first : first + per_chunk]
            masks = np.repeat(self.regions.value_masks(chunk), n_rows, axis=0)
            rows = np.tile(np.arange(n_rows), len(chunk))
            done = 0
            for out in self.runner.composed_outputs(self.x, self.background, masks, rows):
                picked = out[:, self.outputs]
                owner = first + (done + np.arange(len(out))) // n_rows
                np.add.at(totals, owner, picked)
                done += len(out)
            self.n_evaluations += len(masks)
            if progress is not None:
                progress.update(len(masks))
        return totals / n_rows


def _take(runner: ModelRunner, tensor: NativeTensor, rows: np.ndarray) -> NativeTensor:
    if runner.adapter is None:
        return tensor[rows]
    ops = runner.adapter.ops
    return ops.take(tensor, ops.asarray(rows))


def _as_numpy(value: NativeTensor | npt.ArrayLike) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64 if np.asarray(value).dtype == np.float64 else np.float32)

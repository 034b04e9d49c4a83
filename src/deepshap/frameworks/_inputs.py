"""What both model adapters share: the checks and conversion of the background and of X.

:class:`AdapterBase` validates data the same way for every framework, so bad input gets the same error
messages whichever framework runs the model; each adapter supplies the conversion to its own tensors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from deepshap._typing import InputData, NativeDType, NativeTensor

__all__ = ["AdapterBase"]


class AdapterBase(ABC):
    """Input validation and batched prediction for an adapter of :class:`~deepshap.frameworks.ModelAdapter`.

    A subclass calls :meth:`_init_raw` on the background in its constructor and implements the
    conversion of one array to its native tensors (:meth:`_convert`), the finiteness check
    (:meth:`_all_finite`) and a forward pass without gradients (:meth:`_predict`).
    """

    def _init_raw(self, data: InputData) -> list[NativeTensor]:
        """Validate and convert the background; remember what X must look like. Returns raw tensors."""
        self._raw_multi = isinstance(data, list | tuple)
        items = list(data) if self._raw_multi else [data]
        if not items:
            raise ValueError("data is an empty list: give one background array per model input.")
        self._n_raw = len(items)
        self._raw_kinds = [_kind_of(x, _label("data", i, self._raw_multi)) for i, x in enumerate(items)]
        self._raw_shapes: list[tuple[int, ...]] | None = None
        raw = self._convert_all(items, "data", self._raw_kinds)
        self._raw_shapes = [tuple(int(d) for d in t.shape[1:]) for t in raw]
        return raw

    def to_inputs(self, X: InputData, name: str = "X") -> list[NativeTensor]:
        """Convert X (numpy, torch or tf; a list for several inputs) to validated native tensors.

        The number of inputs, the per-sample shapes and the kind of dtype must match the background;
        values must be finite and there must be at least one sample.
        """
        if self._raw_multi:
            if not isinstance(X, list | tuple):
                raise ValueError(
                    f"{name} must be a list of {self._n_raw} arrays (one per model input, like the "
                    f"background data); got a single {type(X).__name__}."
                )
            items = list(X)
            if len(items) != self._n_raw:
                raise ValueError(
                    f"{name} has {len(items)} inputs but the model was given background data for "
                    f"{self._n_raw}; pass one array per model input."
                )
        else:
            if isinstance(X, list | tuple):
                raise ValueError(
                    f"{name} is a list of {len(X)} arrays but the background data is a single array; "
                    "pass one array (or give the background as a list too for a multi-input model)."
                )
            items = [X]
        for i, x in enumerate(items):
            kind = _kind_of(x, _label(name, i, self._raw_multi))
            if kind != self._raw_kinds[i]:
                raise TypeError(
                    f"{_label(name, i, self._raw_multi)} has {kind} values but the background data has "
                    f"{self._raw_kinds[i]} values; convert both the same way (for images scaled to [0, 1] "
                    "in the background, scale X too)."
                )
        return self._convert_all(items, name, self._raw_kinds)

    def _convert_all(self, items: list[InputData], name: str, kinds: list[str]) -> list[NativeTensor]:
        tensors: list[NativeTensor] = []
        for i, x in enumerate(items):
            label = _label(name, i, self._raw_multi)
            tensor = self._convert(x, kinds[i])
            shape = tuple(int(d) for d in tensor.shape)
            if len(shape) < 1 or shape[0] == 0:
                what = "the background" if name == "data" else name
                raise ValueError(
                    f"{label} has shape {shape}: {what} needs at least one sample along the first axis."
                )
            if self._raw_shapes is not None and shape[1:] != self._raw_shapes[i]:
                raise ValueError(
                    f"{label} has samples of shape {shape[1:]} but the background data has samples of "
                    f"shape {self._raw_shapes[i]}; the shapes after the first (batch) axis must match."
                )
            if not self._all_finite(tensor):
                raise ValueError(f"{label} contains NaN or infinite values; replace them before explaining.")
            if tensors and shape[0] != int(tensors[0].shape[0]):
                raise ValueError(
                    f"{label} has {shape[0]} samples but {name}[0] has {int(tensors[0].shape[0])}; every "
                    "input needs the same number of samples."
                )
            tensors.append(tensor)
        return tensors

    @abstractmethod
    def _convert(self, x: InputData, kind: str) -> NativeTensor:
        """x (of dtype ``kind``) as a native tensor on the model's device, in the model's float dtype."""

    @abstractmethod
    def _all_finite(self, tensor: NativeTensor) -> bool:
        """Whether every value is finite."""

    def predict(self, inputs: list[NativeTensor], batch_size: int = 256) -> np.ndarray:
        """Model outputs ``(B, K)`` as numpy, without gradients, ``batch_size`` rows per forward pass."""
        n = int(inputs[0].shape[0])
        chunks = [self._predict([x[i : i + batch_size] for x in inputs]) for i in range(0, n, batch_size)]
        return np.concatenate(chunks, axis=0)

    @abstractmethod
    def _predict(self, inputs: list[NativeTensor]) -> np.ndarray:
        """The forward pass without recording gradients, as numpy."""


def _label(name: str, i: int, multi: bool) -> str:
    return f"{name}[{i}]" if multi else name


def _kind_of(x: InputData, label: str) -> str:
    """Classify x's dtype (numpy, torch or tf) as "float", "integer" or "boolean" without importing them.

    Anything else (strings, objects, complex numbers) cannot be explained and raises a TypeError.
    """
    dtype: NativeDType = getattr(x, "dtype", None)
    if dtype is None:
        dtype = np.asarray(x).dtype
    kind = "other"
    if hasattr(dtype, "is_floating_point"):  # torch.dtype
        if dtype.is_floating_point:
            kind = "float"
        elif str(dtype) == "torch.bool":
            kind = "boolean"
        elif not dtype.is_complex:
            kind = "integer"
    elif hasattr(dtype, "is_floating"):  # tf.DType
        flags = (dtype.is_floating, dtype.is_integer, dtype.is_bool)
        kind = {(True, False, False): "float", (False, True, False): "integer"}.get(flags, "other")
        kind = "boolean" if flags == (False, False, True) else kind
    else:
        try:
            kinds = {"f": "float", "i": "integer", "u": "integer", "b": "boolean"}
            kind = kinds.get(np.dtype(dtype).kind, "other")
        except TypeError:
            kind = "other"
    if kind == "other":
        raise TypeError(
            f"{label} has dtype {dtype}, which is not a real number type; give float arrays or tensors."
        )
    return kind

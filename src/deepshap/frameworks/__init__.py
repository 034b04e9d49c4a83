"""Framework adapters: turn "a model" into forward passes and gradients on native tensors.

This package is the only place that imports torch or tensorflow, and it imports them lazily:
:func:`load_adapter` recognises the framework from the model's class module (``torch.*``, ``keras.*``,
``tensorflow.*``) without importing a framework the user does not use.

Both adapters (:class:`~deepshap.frameworks.pytorch.model.TorchModel`,
:class:`~deepshap.frameworks.keras.model.KerasModel`) expose the same API, documented on
:class:`ModelAdapter`. The shared input validation lives here so both frameworks report bad input with
the same messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ModelAdapter", "TensorOps", "detect_framework", "load_adapter"]

_TORCH_PREFIXES = ("torch",)
_KERAS_PREFIXES = ("keras", "tensorflow", "tf_keras")


def _class_modules(obj: Any) -> list[str]:
    """Module names of ``obj``'s class and its bases (a user's nn.Module subclass lives in __main__)."""
    return [getattr(cls, "__module__", "") or "" for cls in type(obj).__mro__]


def _framework_of(obj: Any) -> str | None:
    for module in _class_modules(obj):
        root = module.partition(".")[0]
        if root in _TORCH_PREFIXES:
            return "torch"
        if root in _KERAS_PREFIXES:
            return "tensorflow"
    return None


def detect_framework(model: Any) -> str:
    """The framework, "torch" or "tensorflow", of a model, a ``(module, layer)`` pair or Keras pair."""
    candidates = [model]
    if isinstance(model, tuple | list) and model:
        first = model[0]
        candidates = [first[0] if isinstance(first, tuple | list) and first else first]
    for candidate in candidates:
        found = _framework_of(candidate)
        if found is not None:
            return found
    raise TypeError(
        f"Cannot explain a model of type {type(model).__name__}: expected a torch.nn.Module, a "
        "(torch module, layer) pair, a Keras/tf.keras model, or a Keras (layer.input, model.output) pair."
    )


def load_adapter(model: Any, data: Any) -> ModelAdapter:
    """Wrap ``model`` with background ``data`` in the adapter of its framework."""
    if detect_framework(model) == "torch":
        from deepshap.frameworks.pytorch.model import TorchModel

        return TorchModel(model, data)
    from deepshap.frameworks.keras.model import KerasModel

    return KerasModel(model, data)


class TensorOps(ABC):
    """The few native tensor operations a framework-neutral algorithm needs beyond + - * and indexing."""

    @abstractmethod
    def asarray(self, array: np.ndarray) -> Any:
        """A numpy array as a native tensor on the model's device (floats in the model's dtype)."""

    @abstractmethod
    def take(self, tensor: Any, index: Any) -> Any:
        """Rows ``index`` (native int tensor from :meth:`asarray`) of ``tensor``."""

    @abstractmethod
    def reshape(self, tensor: Any, shape: Sequence[int]) -> Any:
        """``tensor`` reshaped."""

    @abstractmethod
    def sum(self, tensor: Any, axis: int) -> Any:
        """Sum over one axis."""

    @abstractmethod
    def normal(self, shape: Sequence[int], std: float, seeds: np.ndarray) -> Any:
        """Gaussian noise N(0, std^2), ``(len(seeds), *shape)``: one array of ``shape`` per seed (``seeds``
        is a 1-D integer array), the same seed always giving the same array (so noise does not depend on
        how rows are batched)."""

    @abstractmethod
    def concat(self, tensors: Sequence[Any], axis: int) -> Any:
        """Tensors joined along an existing axis."""


class ModelAdapter(ABC):
    """A model seen at its explained level, with native forward passes and output gradients.

    Attributes (set by the constructor):
      ``framework``: "torch" or "tensorflow".
      ``multi_input``: the explained level takes a list of inputs (the user gave data as a list).
      ``n_inputs``: number of inputs at the explained level.
      ``background``: list (one per input) of native tensors at the explained level. For a torch
        ``(module, layer)`` pair the explained level is the layer's input, computed from the raw data.
      ``n_outputs`` / ``single_output``: model outputs are seen as ``(B, K)``; K == 1 is "single output".
      ``ops``: the :class:`TensorOps` of the framework.
    """

    framework: str
    multi_input: bool
    n_inputs: int
    background: list[Any]
    n_outputs: int
    single_output: bool
    ops: TensorOps

    def _init_raw(self, data: Any) -> list[Any]:
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

    def to_inputs(self, X: Any, name: str = "X") -> list[Any]:
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

    def _convert_all(self, items: list[Any], name: str, kinds: list[str]) -> list[Any]:
        tensors = []
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
    def _convert(self, x: Any, kind: str) -> Any:
        """x (of dtype ``kind``) as a native tensor on the model's device, in the model's float dtype."""

    @abstractmethod
    def _all_finite(self, tensor: Any) -> bool:
        """Whether every value is finite."""

    @abstractmethod
    def explained_inputs(self, raw: list[Any]) -> list[Any]:
        """Inputs at the explained level for raw inputs from :meth:`to_inputs` (identity unless a layer)."""

    @abstractmethod
    def forward(self, inputs: list[Any]) -> Any:
        """Model output ``(B, K)`` for inputs at the explained level (gradients flow if they require them)."""

    def predict(self, inputs: list[Any], batch_size: int = 256) -> np.ndarray:
        """Model outputs ``(B, K)`` as numpy, without gradients, ``batch_size`` rows per forward pass."""
        n = int(inputs[0].shape[0])
        chunks = [self._predict([x[i : i + batch_size] for x in inputs]) for i in range(0, n, batch_size)]
        return np.concatenate(chunks, axis=0)

    @abstractmethod
    def _predict(self, inputs: list[Any]) -> np.ndarray:
        """:meth:`forward` without recording gradients, as numpy."""

    @abstractmethod
    def output_gradients(self, inputs: list[Any], output_index: np.ndarray) -> list[Any]:
        """Gradients of the selected outputs: per input a native ``(B, R, *shape)`` tensor.

        ``output_index`` is ``(B, R)``: entry ``[b, r]`` names the output whose gradient with respect to
        row b fills ``[b, r]``. One forward pass and one vector-Jacobian product per column r.
        """

    @abstractmethod
    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A native tensor as a numpy array (on the host)."""


def _label(name: str, i: int, multi: bool) -> str:
    return f"{name}[{i}]" if multi else name


def _kind_of(x: Any, label: str) -> str:
    """Classify x's dtype (numpy, torch or tf) as "float", "integer" or "boolean" without importing them.

    Anything else (strings, objects, complex numbers) cannot be explained and raises a TypeError.
    """
    dtype = getattr(x, "dtype", None)
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


def output_matrix(shape: Sequence[int], where: str) -> tuple[int, bool]:
    """Check a model output shape ``(B,)`` or ``(B, K)``; return K (1 for ``(B,)``) and whether it was 1-D."""
    if len(shape) == 1:
        return 1, True
    if len(shape) == 2:
        return int(shape[1]), False
    raise ValueError(
        f"{where} returned an output of shape {tuple(shape)}; deepshap explains models whose output is "
        "(batch,) or (batch, n_outputs). Wrap the model to flatten or select its outputs."
    )

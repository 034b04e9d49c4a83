"""Framework adapters: turn "a model" into forward passes and gradients on native tensors.

This package is the only place that imports torch or tensorflow, and it imports them lazily:
:func:`load_adapter` recognises the framework from the model's class module (``torch.*``, ``keras.*``,
``tensorflow.*``) without importing a framework the user does not use.

Both adapters (:class:`~deepshap.frameworks.pytorch.model.TorchModel`,
:class:`~deepshap.frameworks.keras.model.KerasModel`) expose the same API, the :class:`ModelAdapter`
protocol, with their tensor operations behind the :class:`TensorOps` protocol. Their shared input
validation is :class:`~deepshap.frameworks._inputs.AdapterBase`, so both frameworks report bad input with
the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from deepshap._typing import InputData, NativeModel, NativeTensor

__all__ = ["ModelAdapter", "TensorOps", "detect_framework", "load_adapter"]

_TORCH_PREFIXES = ("torch",)
_KERAS_PREFIXES = ("keras", "tensorflow", "tf_keras")


def _class_modules(obj: object) -> list[str]:
    """Module names of ``obj``'s class and its bases (a user's nn.Module subclass lives in __main__)."""
    return [getattr(cls, "__module__", "") or "" for cls in type(obj).__mro__]


def _framework_of(obj: object) -> str | None:
    for module in _class_modules(obj):
        root = module.partition(".")[0]
        if root in _TORCH_PREFIXES:
            return "torch"
        if root in _KERAS_PREFIXES:
            return "tensorflow"
    return None


def detect_framework(model: object) -> str:
    """The framework, "torch" or "tensorflow", of a model, a ``(module, layer)`` pair or Keras pair; a
    TypeError for anything else."""
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


def load_adapter(model: NativeModel, data: InputData) -> ModelAdapter:
    """Wrap ``model`` with background ``data`` in the adapter of its framework."""
    if detect_framework(model) == "torch":
        from deepshap.frameworks.pytorch.model import TorchModel

        return TorchModel(model, data)
    from deepshap.frameworks.keras.model import KerasModel

    return KerasModel(model, data)


class TensorOps(Protocol):
    """The few native tensor operations a framework-neutral algorithm needs beyond + - * and indexing."""

    def asarray(self, array: np.ndarray) -> NativeTensor:
        """A numpy array as a native tensor on the model's device (floats in the model's dtype)."""
        ...

    def take(self, tensor: NativeTensor, index: NativeTensor) -> NativeTensor:
        """Rows ``index`` (native int tensor from :meth:`asarray`) of ``tensor``."""
        ...

    def reshape(self, tensor: NativeTensor, shape: Sequence[int]) -> NativeTensor:
        """``tensor`` reshaped."""
        ...

    def sum(self, tensor: NativeTensor, axis: int) -> NativeTensor:
        """Sum over one axis."""
        ...

    def normal(self, shape: Sequence[int], std: float, seeds: np.ndarray) -> NativeTensor:
        """Gaussian noise N(0, std^2), ``(len(seeds), *shape)``: one array of ``shape`` per seed (``seeds``
        is a 1-D integer array), the same seed always giving the same array (so noise does not depend on
        how rows are batched)."""
        ...

    def concat(self, tensors: Sequence[NativeTensor], axis: int) -> NativeTensor:
        """Tensors joined along an existing axis."""
        ...


class ModelAdapter(Protocol):
    """A model seen at its explained level, with native forward passes and output gradients.

    :class:`~deepshap.frameworks.pytorch.model.TorchModel` and
    :class:`~deepshap.frameworks.keras.model.KerasModel` implement it (structurally; their shared input
    validation is :class:`~deepshap.frameworks._inputs.AdapterBase`).
    """

    @property
    def framework(self) -> str:
        """The framework: "torch" or "tensorflow"."""
        ...

    @property
    def multi_input(self) -> bool:
        """Whether the explained level takes a list of inputs (the user gave data as a list)."""
        ...

    @property
    def n_inputs(self) -> int:
        """The number of inputs at the explained level."""
        ...

    @property
    def background(self) -> list[NativeTensor]:
        """One native tensor per input at the explained level. For a torch ``(module, layer)`` pair the
        explained level is the layer's input, computed from the raw data."""
        ...

    @property
    def n_outputs(self) -> int:
        """K: model outputs are seen as ``(B, K)``."""
        ...

    @property
    def single_output(self) -> bool:
        """Whether K == 1."""
        ...

    @property
    def ops(self) -> TensorOps:
        """The native tensor operations of the framework."""
        ...

    def to_inputs(self, X: InputData, name: str = "X") -> list[NativeTensor]:
        """Convert X (numpy, torch or tf; a list for several inputs) to validated native tensors.

        The number of inputs, the per-sample shapes and the kind of dtype must match the background;
        values must be finite and there must be at least one sample.
        """
        ...

    def explained_inputs(self, raw: list[NativeTensor]) -> list[NativeTensor]:
        """Inputs at the explained level for raw inputs from :meth:`to_inputs` (identity unless a layer)."""
        ...

    def forward(self, inputs: list[NativeTensor]) -> NativeTensor:
        """Model output ``(B, K)`` for inputs at the explained level (gradients flow if they require them)."""
        ...

    def predict(self, inputs: list[NativeTensor], batch_size: int = 256) -> np.ndarray:
        """Model outputs ``(B, K)`` as numpy, without gradients, ``batch_size`` rows per forward pass."""
        ...

    def output_gradients(self, inputs: list[NativeTensor], output_index: np.ndarray) -> list[NativeTensor]:
        """Gradients of the selected outputs: per input a native ``(B, R, *shape)`` tensor.

        ``output_index`` is ``(B, R)``: entry ``[b, r]`` names the output whose gradient with respect to
        row b fills ``[b, r]``. One forward pass and one vector-Jacobian product per column r.
        """
        ...

    def to_numpy(self, tensor: NativeTensor) -> np.ndarray:
        """A native tensor as a numpy array (on the host)."""
        ...


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

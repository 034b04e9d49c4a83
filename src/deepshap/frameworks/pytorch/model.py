"""PyTorch adapter: an ``nn.Module`` (one or several inputs) or a ``(module, layer)`` pair.

For ``(module, layer)`` the explained level is the input of ``layer`` (its first positional argument, at
its first call during ``module``'s forward). The background and X are given as raw model inputs; the
layer's inputs are captured with a forward pre-hook, and forward passes from the layer level replace
the layer's input with a pre-hook. Hooks live in context managers, so nothing stays registered when a
call fails.

The module is put in eval mode (``module.eval()``) by the constructor and left there, like shap: an
explanation of a model in training mode (dropout, batch statistics) would not be reproducible. A module
switched back to training afterwards runs in eval mode during each forward pass of an explainer, and is
left in the mode it was in.

A ``(module, layer)`` pair explains the output as a function of the layer's input alone, so every path
from the model's inputs to its output must go through the layer: a skip connection around it or a
second input is detected at construction and is an error (the attributions would not add up to f(x)).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from deepshap._typing import CallValue, InputData, NativeModel
from deepshap.arrays import to_numpy
from deepshap.frameworks import output_matrix
from deepshap.frameworks._inputs import AdapterBase

__all__ = ["TorchModel", "TorchOps"]

_CAPTURE_BATCH = 256

#: A forward pre-hook: called with the module and its positional arguments, it may return new ones.
PreHook = Callable[[nn.Module, tuple[CallValue, ...]], tuple[CallValue, ...] | None]


class _Captured(Exception):
    """Raised by the capture hook to stop a forward pass once the layer's input is known."""


class TorchOps:
    """:class:`~deepshap.frameworks.TensorOps` on torch tensors of one device and float dtype."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype

    def asarray(self, array: np.ndarray) -> torch.Tensor:
        array = np.asarray(array)
        dtype = self.dtype if array.dtype.kind == "f" else torch.int64
        return torch.as_tensor(array, device=self.device).to(dtype)

    def take(self, tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return tensor.index_select(0, index)

    def reshape(self, tensor: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return tensor.reshape(tuple(shape))

    def sum(self, tensor: torch.Tensor, axis: int) -> torch.Tensor:
        return tensor.sum(dim=axis)

    def normal(self, shape: Sequence[int], std: float, seeds: np.ndarray) -> torch.Tensor:
        noise = torch.empty((len(seeds), *shape), device=self.device, dtype=self.dtype)
        generator = torch.Generator(device=self.device)
        for row, seed in zip(noise, seeds, strict=True):
            row.normal_(0.0, std, generator=generator.manual_seed(int(seed)))
        return noise

    def concat(self, tensors: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.cat(list(tensors), dim=axis)


class TorchModel(AdapterBase):
    """A torch model, or the part of it after ``layer``, as a function of native tensors (a
    :class:`~deepshap.frameworks.ModelAdapter`)."""

    framework = "torch"

    def __init__(self, model: nn.Module | tuple[nn.Module, nn.Module], data: InputData) -> None:
        self.module, self.layer = _split_model(model)
        self.module.eval()
        self.device, self.dtype = _device_and_dtype(self.module)
        self.ops = TorchOps(self.device, self.dtype)
        raw = self._init_raw(data)
        self._raw_background = raw
        self.multi_input = self._raw_multi if self.layer is None else False
        self.background = self.explained_inputs(raw)
        self.n_inputs = len(self.background)
        self._one_row_carrier = False
        with torch.no_grad():
            probe = self._call([b[:1] for b in self.background])
            if self.layer is not None:
                self._check_no_bypass(self.layer)
                self._one_row_carrier = self._one_row_carrier_works(self.layer)
        self.n_outputs, _ = output_matrix(tuple(probe.shape), "the model")
        self.single_output = self.n_outputs == 1

    # conversion -----------------------------------------------------------------------------------
    def _convert(self, x: InputData, kind: str) -> torch.Tensor:
        """x on the model's device in its float dtype (integers kept for a layer pair: token ids)."""
        if isinstance(x, torch.Tensor):
            tensor = x.detach()
        elif isinstance(x, np.ndarray):
            tensor = torch.from_numpy(np.ascontiguousarray(x))
        elif hasattr(x, "numpy") and callable(x.numpy):  # tf.Tensor and other array libraries
            tensor = torch.from_numpy(np.ascontiguousarray(to_numpy(x)))
        else:
            tensor = torch.as_tensor(np.asarray(x))
        keep_integers = self.layer is not None and kind == "integer"
        return tensor.to(device=self.device, dtype=torch.int64 if keep_integers else self.dtype)

    def _all_finite(self, tensor: torch.Tensor) -> bool:
        return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())

    def to_numpy(self, tensor: torch.Tensor) -> np.ndarray:
        return to_numpy(tensor)

    # the explained level ------------------------------------------------------------------------
    def explained_inputs(self, raw: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.layer is None:
            return list(raw)
        n = int(raw[0].shape[0])
        starts = range(0, n, _CAPTURE_BATCH)
        chunks = [self._capture(self.layer, [r[i : i + _CAPTURE_BATCH] for r in raw]) for i in starts]
        return [torch.cat(chunks)]

    def _capture(self, layer: nn.Module, raw: list[torch.Tensor]) -> torch.Tensor:
        """The input of ``layer`` when the model runs on ``raw`` (the forward stops there)."""
        found: list[torch.Tensor] = []

        def hook(module: nn.Module, args: tuple[CallValue, ...]) -> None:
            found.append(_layer_input(args, module))
            raise _Captured

        with torch.no_grad(), _hooked(layer, hook), _evaluating(self.module):
            try:
                self.module(*raw)
            except _Captured:
                pass
        if not found:
            raise ValueError(
                f"the layer {type(layer).__name__} was not called during the model's forward pass; "
                "pass a (model, layer) pair where layer is used by model.forward."
            )
        return found[0].detach().to(self.dtype)

    # forward and gradients ----------------------------------------------------------------------
    def _call(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        with _evaluating(self.module):
            if self.layer is not None:
                out = self._layer_forward(self.layer, inputs[0])
            else:
                out = self.module(*inputs)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"the model returned a {type(out).__name__}; deepshap explains models returning one tensor "
                "of shape (batch,) or (batch, n_outputs)."
            )
        return out

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        out = self._call(inputs)
        _, one_dim = output_matrix(tuple(out.shape), "the model")
        return out.unsqueeze(1) if one_dim else out

    def _predict(self, inputs: list[torch.Tensor]) -> np.ndarray:
        with torch.no_grad():
            return self.to_numpy(self.forward(inputs))

    def _check_no_bypass(self, layer: nn.Module) -> None:
        """Raise if the output depends on the model's inputs other than through the layer: with the same
        layer input, two different carriers (raw inputs) must give the same output."""
        raw = self._raw_background
        if int(raw[0].shape[0]) >= 2 and any(not torch.equal(r[:1], r[1:2]) for r in raw):
            other = [r[1:2] for r in raw]
        elif all(r.is_floating_point() for r in raw):
            other = [r[:1] * 0.5 + 1.0 for r in raw]
        else:
            return  # one background row of token ids: no second carrier to compare with
        z = self.background[0][:1]
        try:
            with _evaluating(self.module):
                first = self._layer_forward(layer, z, one_row=True)
                second = self._layer_forward(layer, z, one_row=True, carrier=other)
        except Exception:  # noqa: BLE001 - a model that cannot run one row here: nothing to compare
            return
        if not torch.allclose(first, second, rtol=1e-5, atol=1e-6):
            raise ValueError(
                f"The model's output depends on its input through paths that bypass the layer "
                f"{type(layer).__name__} (a skip connection around it, or another input): its input "
                "alone does not determine the output, so attributions to it would not add up to f(x). "
                "Explain a layer that every path goes through (e.g. the block's first layer, not one inside "
                "a residual branch), or the model's inputs."
            )

    def _one_row_carrier_works(self, layer: nn.Module) -> bool:
        """Whether a one-row carrier gives the same outputs as a full-batch one (see _layer_forward)."""
        z = self.background[0][:2]
        if int(z.shape[0]) < 2:
            z = torch.cat([z, z * 0.5 + 1.0])
        full = self._layer_forward(layer, z, one_row=False)
        try:
            single = self._layer_forward(layer, z, one_row=True)
        except Exception:  # the model needs a full batch before the layer (it reads the batch size)
            return False
        return single.shape == full.shape and bool(torch.allclose(single, full, rtol=1e-5, atol=1e-6))

    def _layer_forward(
        self,
        layer: nn.Module,
        z: torch.Tensor,
        one_row: bool | None = None,
        carrier: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Run the model with ``z`` in place of ``layer``'s input (``carrier``: other raw inputs).

        The raw inputs only carry the forward pass up to the layer: the first background sample, run
        without autograd until the layer. It is one row when the model gives the same outputs that way
        (checked once, at construction; the part before the layer then costs one row per batch), else it
        is expanded (not copied) to the batch.
        """
        batch = 1 if (self._one_row_carrier if one_row is None else one_row) else int(z.shape[0])
        carrier = [r[:1].expand(batch, *r.shape[1:]) for r in (carrier or self._raw_background)]
        grad_wanted = torch.is_grad_enabled()
        calls = [0]

        def hook(module: nn.Module, args: tuple[CallValue, ...]) -> tuple[CallValue, ...] | None:
            calls[0] += 1
            if calls[0] > 1:
                return None
            _layer_input(args, module)
            torch.set_grad_enabled(grad_wanted)
            return (z, *args[1:])

        try:
            with _hooked(layer, hook):
                torch.set_grad_enabled(False)
                out = self.module(*carrier)
        finally:
            torch.set_grad_enabled(grad_wanted)
        if calls[0] == 0:
            raise ValueError(f"the layer {type(layer).__name__} was not called by the model's forward.")
        return out

    def output_gradients(self, inputs: list[torch.Tensor], output_index: np.ndarray) -> list[torch.Tensor]:
        require_autograd("GradientExplainer")
        index = torch.as_tensor(np.asarray(output_index, dtype=np.int64), device=self.device)
        leaves = [x.detach().requires_grad_(True) for x in inputs]
        with torch.enable_grad():
            selected = self.forward(leaves).gather(1, index)
            if not selected.requires_grad:
                raise ValueError(_NO_GRADIENT)
            n_cols = int(index.shape[1])
            columns = []
            for r in range(n_cols):
                grads = torch.autograd.grad(
                    selected[:, r].sum(), leaves, retain_graph=r < n_cols - 1, allow_unused=True
                )
                columns.append(grads)
        per_input = []
        for i in range(len(leaves)):
            if any(col[i] is None for col in columns):
                raise ValueError(f"{_NO_GRADIENT} (input {i} is not used by the explained outputs)")
            per_input.append(torch.stack([col[i] for col in columns], dim=1))
        return per_input


def require_autograd(explainer: str) -> None:
    """Raise a clear error inside ``torch.inference_mode()``, where autograd cannot be turned back on
    (the explainers enable it themselves under ``torch.no_grad()``)."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{explainer} needs autograd, which torch.inference_mode() turns off for the whole block; "
            "call the explainer outside it (inside torch.no_grad() is fine)."
        )


_NO_GRADIENT = (
    "the model output does not depend on its input through differentiable operations (no gradient); "
    "explain a model whose output is computed from the input with autograd enabled"
)


def _eager(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile``'d one wraps. Its compiled graphs run aten operations that the
    DeepLIFT rules do not see, and reject the repeated backward passes of both explainers; the original
    module computes the same function in eager mode, with the same parameters."""
    dynamo = sys.modules.get("torch._dynamo.eval_frame")  # loaded once anything was compiled
    if dynamo is not None and isinstance(module, dynamo.OptimizedModule):
        return module._orig_mod
    return module


def _split_model(model: NativeModel) -> tuple[nn.Module, nn.Module | None]:
    if isinstance(model, nn.Module):
        return _eager(model), None
    if isinstance(model, tuple | list) and len(model) == 2 and all(isinstance(m, nn.Module) for m in model):
        module, layer = _eager(model[0]), _eager(model[1])
        if not any(sub is layer for sub in module.modules()):
            raise ValueError(
                f"the layer {type(layer).__name__} is not a submodule of the model; pass (model, layer) "
                "with layer taken from model (for example model.features[7])."
            )
        return module, layer
    raise TypeError(
        f"expected a torch.nn.Module or a (module, layer) pair of modules; got {type(model).__name__}."
    )


def _device_and_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device of the first parameter (or buffer) and the floating dtype of the model's weights."""
    tensors = list(module.parameters()) + list(module.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    return device, floats[0] if floats else torch.get_default_dtype()


def _layer_input(args: tuple[CallValue, ...], layer: nn.Module) -> torch.Tensor:
    if not args or not isinstance(args[0], torch.Tensor):
        raise TypeError(
            f"the layer {type(layer).__name__} was called without a tensor as its first positional "
            "argument; choose a layer whose input is one tensor."
        )
    return args[0]


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration of the block; modules that were training are put back to it."""
    training = [m for m in module.modules() if m.training]
    try:
        for m in training:
            m.training = False
        yield
    finally:
        for m in training:
            m.training = True


@contextlib.contextmanager
def _hooked(layer: nn.Module, hook: PreHook) -> Iterator[None]:
    """Register a forward pre-hook for the duration of the block only."""
    handle = layer.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()

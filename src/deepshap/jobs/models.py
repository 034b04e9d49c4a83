"""Load a job's model from what a user can name on a command line, and fingerprint it.

Accepted: an entry point ``package.module:function`` (returning the model, or ``(model, preprocess)``), a
Keras ``.keras`` file (loaded with ``safe_mode=True``), a ``torch.export`` ``.pt2`` file or a TorchScript
file (``.pt``, ``.pth``, ``.ts``). Nothing is ever unpickled: formats that need pickle are refused.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepshap._typing import CallValue, InputData, JSONObject, NativeModel

if TYPE_CHECKING:
    import torch

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
MODEL_FILE_SUFFIXES = (".keras", ".pt2", *TORCHSCRIPT_SUFFIXES)

#: Turns decoded images into model input.
Preprocess = Callable[[np.ndarray], InputData]
#: What an entry point returns: the model, or ``(model, preprocess)``.
EntryPointResult = NativeModel | tuple[NativeModel, Preprocess | None]


@dataclass
class LoadedModel:
    model: NativeModel
    preprocess: Preprocess | None = None
    graph_file: bool = False
    """A TorchScript or torch.export graph: its layers are hidden, so DeepExplainer's rules cannot apply."""


def load_model(source: str | Path | EntryPointResult) -> LoadedModel:
    """The model named by ``source`` (see the module docstring), or ``source`` itself when it is a model."""
    if not isinstance(source, str | Path):
        return _split(source)
    text = str(source)
    path = Path(text).expanduser()
    if path.suffix == ".keras":
        return LoadedModel(_load_keras(path))
    if path.suffix == ".pt2":
        return LoadedModel(_load_exported(path), graph_file=True)
    if path.suffix in TORCHSCRIPT_SUFFIXES:
        return LoadedModel(_load_torchscript(path), graph_file=True)
    if ":" in text and not path.exists():
        return _split(_call_entry_point(text))
    raise ValueError(
        f"--model {text!r}: expected MODULE:FUNCTION, a .keras file, a torch.export .pt2 file or a "
        f"TorchScript file ({', '.join(TORCHSCRIPT_SUFFIXES)})."
    )


def model_fingerprint(source: str | Path | EntryPointResult) -> JSONObject:
    """What identifies a model without building it: the source and the bytes of its file (for an entry
    point, of its module's file); for a model object, its class and weights."""
    if isinstance(source, str | Path):
        text = str(source)
        path = Path(text).expanduser()
        if path.is_file():
            return {"source": text, "sha256": _file_digest(path)}
        if path.suffix in MODEL_FILE_SUFFIXES or ":" not in text:
            raise FileNotFoundError(f"--model {text!r}: no such file.")
        module_name = text.partition(":")[0]
        try:
            spec = importlib.util.find_spec(module_name) if module_name else None
        except ImportError as exc:
            raise ValueError(f"--model {text!r}: cannot import {module_name!r} ({exc}).") from exc
        if spec is None:
            raise ValueError(f"--model {text!r}: no module {module_name!r} (is its folder on PYTHONPATH?).")
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        digest = _file_digest(origin) if origin is not None and origin.is_file() else None
        return {"source": text, "module_sha256": digest}
    model = source[0] if isinstance(source, tuple) else source
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "name": getattr(model, "__qualname__", None),
        "weights": weights_digest(model),
    }


def _split(result: EntryPointResult) -> LoadedModel:
    if isinstance(result, tuple) and len(result) == 2 and (result[1] is None or callable(result[1])):
        return LoadedModel(result[0], result[1])
    return LoadedModel(result)


def _call_entry_point(text: str) -> EntryPointResult:
    module_name, _, function_name = text.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--model {text!r}: cannot import {module_name!r} ({exc}).") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"--model {text!r}: {module_name} has no function {function_name!r}.")
    return function()


def _load_keras(path: Path) -> NativeModel:
    import keras

    return keras.saving.load_model(path, safe_mode=True)


def _load_exported(path: Path) -> torch.nn.Module:
    """The exported program as a module; wrapped because it refuses ``eval()`` (it is exported in the mode
    it runs in), which explainers call on every torch model."""
    import torch

    graph = torch.export.load(str(path)).module()

    class ExportedModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.__dict__["graph"] = graph  # not a submodule: train()/eval() must not reach it

        def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]:
            return graph.parameters(recurse)

        def forward(self, *inputs: torch.Tensor) -> CallValue:
            try:
                return graph(*inputs)
            except (AssertionError, RuntimeError) as exc:
                if "Guard failed" not in str(exc) and "guard" not in str(exc).lower():
                    raise
                shapes = ", ".join(str(tuple(x.shape)) for x in inputs if hasattr(x, "shape"))
                raise ValueError(
                    f"--model {str(path)!r} was exported for other input shapes than {shapes} (a static "
                    "batch size?): export it with a dynamic batch dimension, e.g. torch.export.export("
                    "model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},))."
                ) from exc

    return ExportedModel()


def _load_torchscript(path: Path) -> torch.jit.ScriptModule:
    import torch

    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as exc:  # torch.save's pickles (a whole model or a state_dict) land here
        raise ValueError(
            f"--model {str(path)!r} is not a TorchScript file ({str(exc).splitlines()[0]}). A model saved "
            "with torch.save is a pickle, and pickled models are refused (unpickling runs arbitrary code): "
            "give a MODULE:FUNCTION entry point that builds the model and loads its weights, or save it "
            "with torch.jit.save or torch.export."
        ) from exc


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model: NativeModel) -> str | None:
    """sha256 over a torch module's state_dict or a Keras model's weights; None for a plain function.

    The worker takes it of the model it built: an entry point's module can stay the same while the
    checkpoint it loads changes."""
    digest = hashlib.sha256()
    if hasattr(model, "state_dict"):
        for name, tensor in model.state_dict().items():
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
        return digest.hexdigest()
    if hasattr(model, "get_weights"):
        for array in model.get_weights():
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()
    return None

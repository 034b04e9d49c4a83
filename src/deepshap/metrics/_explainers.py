"""The explainers :func:`deepshap.metrics.compare` can run, by name, each as
``explain(model, images, background, outputs) -> values (N, *sample_shape, R)``.

Names: ``deepshap.deep``, ``deepshap.gradient``, ``shap.deep``, ``shap.gradient`` (shap, if installed),
``captum.deepliftshap``, ``captum.gradientshap`` (Captum, PyTorch models only). ``outputs`` is the
``(N, R)`` table of model outputs to explain: deepshap's and shap's explainers are asked for each
image's R most likely outputs (all outputs when the table names others), Captum's for each column.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deepshap._typing import Attributions, NativeModel, NativeTensor
from deepshap.metrics._attributions import as_attributions

__all__ = ["EXPLAINERS", "resolve_explainer"]

#: ``explain(model, images, background, outputs) -> values (N, *sample_shape, R)``.
Explain = Callable[[NativeModel, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _selected(
    explain: Callable[[int | None], Attributions], images: np.ndarray, outputs: np.ndarray
) -> np.ndarray:
    """The columns ``outputs[i]`` of each image's explanation.

    ``explain(ranked)`` runs the explainer on the ``ranked`` most likely outputs (None: all of them).
    It is first asked for as many outputs as the table has per image, which covers the usual table of
    each image's top classes without explaining, say, all 1000 ImageNet classes; if the table names
    other outputs, everything is explained.
    """
    values, indexes = as_attributions(explain(outputs.shape[1]), images.shape[1:])
    if indexes is None or any(set(row) - set(ranked) for row, ranked in zip(outputs, indexes, strict=True)):
        values, indexes = as_attributions(explain(None), images.shape[1:])
    if indexes is None:
        return np.stack([values[i][..., outputs[i]] for i in range(len(values))])
    columns = [
        [int(np.flatnonzero(ranked == k)[0]) for k in row]
        for row, ranked in zip(outputs, indexes, strict=True)
    ]
    return np.stack([values[i][..., columns[i]] for i in range(len(values))])


def _ranked(
    call: Callable[..., Attributions], name: str, ranked: int | None, **kwargs: object
) -> Attributions:
    return call(**kwargs) if ranked is None else call(**{name: ranked}, **kwargs)


def _deepshap_deep(
    model: NativeModel, images: np.ndarray, background: np.ndarray, outputs: np.ndarray
) -> np.ndarray:
    import deepshap

    explainer = deepshap.DeepExplainer(model, background)
    return _selected(lambda r: _ranked(explainer.shap_values, "ranked_output", r, X=images), images, outputs)


def _deepshap_gradient(
    model: NativeModel, images: np.ndarray, background: np.ndarray, outputs: np.ndarray
) -> np.ndarray:
    import deepshap

    explainer = deepshap.GradientExplainer(model, background)

    def explain(ranked: int | None) -> Attributions:
        return _ranked(explainer.shap_values, "ranked_output", ranked, X=images, nsamples=200, rseed=0)

    return _selected(explain, images, outputs)


def _shap(kind: str) -> Explain:
    def explain(
        model: NativeModel, images: np.ndarray, background: np.ndarray, outputs: np.ndarray
    ) -> np.ndarray:
        import shap

        data, inputs = _framework_array(model, background), _framework_array(model, images)
        if kind == "deep":
            explainer = shap.DeepExplainer(model, data)
            options: dict[str, object] = {"check_additivity": False}
        else:
            explainer = shap.GradientExplainer(model, data)
            options = {"nsamples": 200, "rseed": 0}

        def run(ranked: int | None) -> Attributions:
            return _ranked(explainer.shap_values, "ranked_outputs", ranked, X=inputs, **options)

        return _selected(run, images, outputs)

    return explain


def _captum(kind: str) -> Explain:
    def explain(
        model: NativeModel, images: np.ndarray, background: np.ndarray, outputs: np.ndarray
    ) -> np.ndarray:
        import torch
        from captum.attr import DeepLiftShap, GradientShap

        if not isinstance(model, torch.nn.Module):
            raise TypeError("Captum explains PyTorch modules only.")
        inputs = torch.as_tensor(images, dtype=torch.float32)
        baselines = torch.as_tensor(background, dtype=torch.float32)
        columns = []
        for r in range(outputs.shape[1]):
            target = torch.as_tensor(outputs[:, r])
            if kind == "deepliftshap":
                attributions = DeepLiftShap(model).attribute(inputs, baselines=baselines, target=target)
            else:
                torch.manual_seed(0)
                attributions = GradientShap(model).attribute(
                    inputs, baselines=baselines, target=target, n_samples=200, stdevs=0.0
                )
            columns.append(attributions.detach().numpy())
        return np.stack(columns, axis=-1)

    return explain


def _framework_array(model: NativeModel, array: np.ndarray) -> NativeTensor | np.ndarray:
    """shap's PyTorch explainers take torch tensors; its TensorFlow ones take numpy arrays."""
    from deepshap.frameworks import detect_framework

    if detect_framework(model) == "torch":
        import torch

        return torch.as_tensor(array, dtype=torch.float32)
    return array


EXPLAINERS: dict[str, Explain] = {
    "deepshap.deep": _deepshap_deep,
    "deepshap.gradient": _deepshap_gradient,
    "shap.deep": _shap("deep"),
    "shap.gradient": _shap("gradient"),
    "captum.deepliftshap": _captum("deepliftshap"),
    "captum.gradientshap": _captum("gradientshap"),
}


def resolve_explainer(spec: str | tuple[str, Explain]) -> tuple[str, Explain]:
    """``(name, explain)`` for a registered name or a ``(name, function)`` pair."""
    if isinstance(spec, tuple):
        name, function = spec
        if not callable(function):
            raise TypeError(
                f"The explainer {name!r} must be a function (model, images, background, outputs)."
            )
        return name, function
    if spec not in EXPLAINERS:
        raise ValueError(
            f"Unknown explainer {spec!r}; choose from {sorted(EXPLAINERS)} or pass (name, function)."
        )
    return spec, EXPLAINERS[spec]


def available(spec: str | tuple[str, Explain], model: object) -> str | None:
    """Why ``spec`` cannot run here (its library is missing, or the model's framework), else None."""
    if isinstance(spec, tuple):
        return None
    library = spec.split(".")[0]
    if library in ("shap", "captum"):
        import importlib.util

        if importlib.util.find_spec(library) is None:
            return f"{library} is not installed"
    framework = _framework(model)
    if framework is None:
        return "it explains torch or Keras models, not a plain function"
    if library == "captum" and framework != "torch":
        return "Captum explains PyTorch models only"
    return None


def _framework(model: object) -> str | None:
    """ "torch" or "tensorflow" for a framework model, None for a plain function."""
    from deepshap.frameworks import detect_framework

    try:
        return detect_framework(model)
    except TypeError:
        return None

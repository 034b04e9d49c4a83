"""The model-randomisation sanity check (Adebayo et al. 2018): re-initialise the top layers of a model,
explain again, and compare. An explanation that barely changes does not depend on what the model learnt.

The model is copied first (the user's model is left untouched). PyTorch modules get their layers'
own ``reset_parameters()``; Keras layers get fresh values from their ``kernel_initializer`` and
``bias_initializer`` (other weights are drawn from a normal distribution of the same standard deviation).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deepshap._typing import Attributions, NativeModel
from deepshap.metrics._attributions import as_attributions

__all__ = ["RandomisationReport", "randomisation_check", "randomise_top_layers"]


@dataclass
class RandomisationReport:
    """Spearman rank correlations ``(N, R)`` between the explanations of the trained and randomised model,
    of the signed values and of their absolute values. Near 1 means the explanation ignored the change."""

    spearman: np.ndarray
    spearman_abs: np.ndarray
    layers: list[str]

    def __str__(self) -> str:
        return (
            f"rank correlation after re-initialising {len(self.layers)} top layer(s): "
            f"{np.mean(self.spearman):.3f} (absolute values {np.mean(self.spearman_abs):.3f})"
        )


def _torch_randomise(model: NativeModel, n_layers: int, seed: int) -> tuple[NativeModel, list[str]]:
    import torch

    copied = copy.deepcopy(model)
    with_params = [
        (name, module)
        for name, module in copied.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    ]
    chosen = with_params[-n_layers:]
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for name, module in chosen:
            if not hasattr(module, "reset_parameters"):
                raise TypeError(f"The layer {name} ({type(module).__name__}) has no reset_parameters().")
            module.reset_parameters()
    finally:
        torch.random.set_rng_state(generator_state)
    return copied, [name for name, _ in chosen]


def _keras_randomise(model: NativeModel, n_layers: int, seed: int) -> tuple[NativeModel, list[str]]:
    import keras

    copied = keras.models.clone_model(model)
    copied.set_weights(model.get_weights())
    chosen = [layer for layer in copied.layers if layer.weights][-n_layers:]
    rng = np.random.default_rng(seed)
    for layer in chosen:
        for variable in layer.weights:
            shape, dtype = tuple(variable.shape), variable.dtype
            kind = variable.path.rsplit("/", 1)[-1] if hasattr(variable, "path") else variable.name
            initializer = getattr(layer, f"{kind}_initializer", None)
            if initializer is not None:
                config = initializer.get_config()
                if "seed" in config:  # the given seed, so that the new weights are reproducible
                    initializer = type(initializer).from_config({**config, "seed": int(rng.integers(2**31))})
                fresh = keras.ops.convert_to_numpy(initializer(shape, dtype=dtype))
            else:
                spread = float(np.std(keras.ops.convert_to_numpy(variable))) or 0.05
                fresh = rng.normal(0.0, spread, shape)
            variable.assign(fresh.astype(np.dtype(dtype)))
    return copied, [layer.name for layer in chosen]


def randomise_top_layers(
    model: NativeModel, n_layers: int = 1, seed: int | None = None
) -> tuple[NativeModel, list[str]]:
    """A copy of ``model`` with its last ``n_layers`` layers with parameters re-initialised, and their
    names."""
    from deepshap.frameworks import detect_framework

    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1; got {n_layers}.")
    if seed is None:  # a fixed default could be the seed the model was built with, redrawing the same weights
        seed = int(np.random.default_rng().integers(2**31))
    if detect_framework(model) == "torch":
        return _torch_randomise(model, n_layers, seed)
    return _keras_randomise(model, n_layers, seed)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def randomisation_check(
    model: NativeModel,
    explain: Callable[[NativeModel], Attributions],
    n_layers: int = 1,
    seed: int | None = None,
    sample_shape: tuple[int, ...] | None = None,
) -> RandomisationReport:
    """Explain ``model`` and a copy with its top ``n_layers`` re-initialised; compare the two by rank.

    ``seed`` fixes the new weights (by default they are fresh: a fixed seed equal to the one the model
    was built with would draw the same weights again). ``explain(model)`` returns an explanation of
    the same images in any form ``as_attributions`` takes, e.g.
    ``lambda m: deepshap.DeepExplainer(m, background).shap_values(images)``. ``sample_shape`` (one
    image's shape) is read from the explanation, assumed to have an output axis, unless given.
    """
    randomised, names = randomise_top_layers(model, n_layers, seed)
    first = explain(model)
    shape = _sample_shape(first) if sample_shape is None else tuple(sample_shape)
    trained, _ = as_attributions(first, shape)
    changed, _ = as_attributions(explain(randomised), shape)
    n, r = trained.shape[0], trained.shape[-1]
    flat_a = trained.reshape(n, -1, r)
    flat_b = changed.reshape(n, -1, r)
    signed = np.array([[_spearman(flat_a[i, :, j], flat_b[i, :, j]) for j in range(r)] for i in range(n)])
    absolute = np.array(
        [[_spearman(np.abs(flat_a[i, :, j]), np.abs(flat_b[i, :, j])) for j in range(r)] for i in range(n)]
    )
    return RandomisationReport(signed, absolute, names)


def _sample_shape(explanation: Attributions) -> tuple[int, ...]:
    """The sample shape of an explanation whose output axis is trailing (or a list per output)."""
    if isinstance(explanation, tuple):
        explanation = explanation[0]
    values = explanation.values if type(explanation).__name__ == "Explanation" else explanation
    if isinstance(values, list):
        return tuple(np.shape(values[0])[1:])
    shape = tuple(np.shape(values))
    return shape[1:-1]

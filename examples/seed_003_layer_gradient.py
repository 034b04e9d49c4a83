"""Seed 003, explaining a VGG16 transfer model at an intermediate layer, run with ``import deepshap as shap``.

The walkthrough puts a 10-class head (Flatten + Dense softmax) on a frozen VGG16 and explains the
input of ``model.layers[layer_check]`` with ``GradientExplainer((model.layers[k].input,
model.layers[-1].output), map2layer(...))`` and ``ranked_outputs=2``. Offline changes: VGG16 with
``weights=None`` at a small input size (the ImageNet weights and the monkey photos need a download),
photos from ``deepshap.datasets.sample_images()`` as background and images to explain, and the head
left untrained. ``--size`` and ``--nsamples`` keep it quick on a CPU.

    python examples/seed_003_layer_gradient.py --out seed003
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def main(
    out: str = "seed003-output", size: int = 32, nsamples: int = 200, layer_check: int = 7
) -> dict[str, Any]:
    """Run the walkthrough; return what it computed (for tests)."""
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    from keras.applications.vgg16 import VGG16, preprocess_input
    from keras.layers import Dense, Flatten

    import deepshap as shap
    from deepshap.datasets import sample_images

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)

    # include_top=False: we replace the ImageNet classifier by our own 10-class head
    based_model = VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    x = based_model.output
    x = Flatten()(x)
    prediction = Dense(10, activation="softmax")(x)
    model = keras.Model(based_model.input, prediction)
    for layer in based_model.layers:
        layer.trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    photos, _ = sample_images(size=size)
    X = photos  # the background: "how many rows does not matter much"
    to_explain = photos[[1, 2]]  # chelsea (a cat) and coffee
    class_names = {str(i): [f"n{i}", f"monkey species {i}"] for i in range(10)}

    # explain the input of the chosen conv layer
    def map2layer(x: np.ndarray, layer: int) -> np.ndarray:
        return np.asarray(keras.Model(model.inputs[0], model.layers[layer].input)(preprocess_input(x.copy())))

    e = shap.GradientExplainer(
        (model.layers[layer_check].input, model.layers[-1].output), map2layer(X, layer_check)
    )
    shap_values, indexes = e.shap_values(
        map2layer(to_explain, layer_check), ranked_outputs=2, nsamples=nsamples
    )

    # get the names for the classes
    index_names = np.vectorize(lambda x: class_names[str(x)][1])(indexes)

    # plot the explanations
    shap.image_plot(shap_values, to_explain, index_names)
    plt.gcf().savefig(out_dir / f"layer_{layer_check}.png")
    plt.close("all")

    outputs = np.asarray(model(preprocess_input(to_explain.copy()), training=False))
    totals = np.stack([v.reshape(len(v), -1).sum(1) for v in shap_values], axis=1)
    expected = np.asarray(e.expected_value)[indexes]
    gap = np.abs(totals - (np.take_along_axis(outputs, indexes, 1) - expected)).max()
    print(f"layer {model.layers[layer_check].name}: explained outputs {indexes.tolist()}")
    print(f"largest additivity gap |sum(phi) - (f(x) - E f)|: {gap:.4f}")
    return {
        "shap_values": shap_values,
        "indexes": indexes,
        "outputs": outputs,
        "additivity_gap": gap,
        "layer_name": model.layers[layer_check].name,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="seed003-output", help="folder for the figure")
    parser.add_argument("--size", type=int, default=32, help="input size (VGG16 needs at least 32)")
    parser.add_argument("--nsamples", type=int, default=200, help="expected-gradients samples per image")
    parser.add_argument("--layer", type=int, default=7, help="explain the input of model.layers[LAYER]")
    args = parser.parse_args()
    main(args.out, args.size, args.nsamples, args.layer)

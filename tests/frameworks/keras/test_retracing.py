"""No "triggered tf.function retracing" warnings from TensorFlow when explainers are created one after
another (each traces its own functions once; TensorFlow groups traces by code and warned after five)."""

from __future__ import annotations

import numpy as np
import pytest

import deepshap as shap
from tests.helpers.keras_models import keras_mlp
from tests.helpers.tf_retracing import tf_retracing_warnings


@pytest.mark.usefixtures("no_tf_retracing")
def test_explainers_created_in_a_loop_do_not_warn_of_retracing() -> None:
    model = keras_mlp(n_outputs=3)
    rng = np.random.default_rng(0)
    for i in range(7):
        background = rng.normal(size=(8 + i, 6)).astype(np.float32)
        x = rng.normal(size=(2 + i, 6)).astype(np.float32)
        shap.DeepExplainer(model, background).shap_values(x)
        shap.DeepExplainer((model.inputs, model.outputs[0]), background).shap_values(x, ranked_outputs=2)
        shap.GradientExplainer(model, background).shap_values(x, nsamples=4)


def test_the_check_sees_a_warning() -> None:
    """The check finds TensorFlow's warning where there is one (one function traced for 7 shapes)."""
    tf = pytest.importorskip("tensorflow")

    traced = tf.function(lambda x: x * 2)
    with tf_retracing_warnings() as messages:
        for n in range(7):
            traced(tf.zeros([n + 1]))
    assert messages and "retracing" in messages[0]

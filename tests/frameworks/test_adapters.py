"""The framework adapters of both backends: which framework a model form belongs to, and input
validation with errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.frameworks import detect_framework, load_adapter
from tests.helpers.data import rng_data
from tests.helpers.keras_models import keras_cnn, keras_linear
from tests.helpers.torch_models import torch_cnn, torch_linear

X6 = rng_data((5, 6), seed=1)
BG6 = rng_data((7, 6), seed=2)


def test_detects_frameworks_from_model_forms():
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    cnn = torch_cnn()
    assert detect_framework(cnn) == "torch"
    assert detect_framework((cnn, cnn[2])) == "torch"
    kcnn = keras_cnn()
    assert detect_framework(kcnn) == "tensorflow"
    assert detect_framework((kcnn.layers[2].input, kcnn.layers[-1].output)) == "tensorflow"
    with pytest.raises(TypeError, match="Cannot explain a model of type"):
        detect_framework(lambda x: x)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_bad_inputs_are_named(framework):
    pytest.importorskip(framework)
    linear = torch_linear if framework == "torch" else keras_linear
    adapter = load_adapter(linear(), BG6)
    with pytest.raises(ValueError, match=r"samples of shape \(5,\).*\(6,\)"):
        adapter.to_inputs(X6[:, :5])
    bad = X6.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinite"):
        adapter.to_inputs(bad)
    with pytest.raises(ValueError, match="list of 2 arrays"):
        adapter.to_inputs([X6, X6])
    with pytest.raises(TypeError, match="integer values but the background data has float"):
        adapter.to_inputs((X6 * 100).astype(np.uint8))
    with pytest.raises(ValueError, match="at least one sample"):
        adapter.to_inputs(X6[:0])
    with pytest.raises(ValueError, match="the background needs at least one sample"):
        load_adapter(linear(), BG6[:0])
    inf_bg = BG6.copy()
    inf_bg[0, 0] = np.inf
    with pytest.raises(ValueError, match="data contains NaN or infinite"):
        load_adapter(linear(), inf_bg)
    with pytest.raises(TypeError, match="not a real number type"):
        adapter.to_inputs(X6.astype(str))

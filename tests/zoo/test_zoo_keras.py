"""The Keras zoo: keras.applications networks, random weights with batch-norm statistics fitted on photos
and a classifier scaled so the logits spread, each explained by DeepExplainer and additive within 1e-4 of
its output change. ConvNeXtTiny's depthwise 7x7 runs as a grouped Conv2D through a nested tf.function.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.helpers.zoo import check, explain

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tests.helpers import zoo_keras as B  # noqa: E402

#: Fast enough for every run on two shared cores (under half a minute each); the others trace graphs of
#: thousands of ops for a minute or more and are marked slow (CI runs them too).
_FAST = {"VGG16", "VGG19", "MobileNet"}


def _params() -> list[Any]:
    return [
        pytest.param(name, id=name, marks=[] if name in _FAST else [pytest.mark.slow])
        for name in B.APPLICATIONS
    ]


@pytest.fixture(autouse=True)
def _fresh_keras_session() -> Iterator[None]:
    """Each network's graph and variables go when its test ends (the zoo would otherwise pile them up)."""
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("name", _params())
def test_keras_application_is_additive(name: str) -> None:
    case = B.APPLICATIONS[name]()

    def forward(x: np.ndarray) -> np.ndarray:
        return np.asarray(case.model(x, training=False))

    check(explain(case.model, case.background, case.X, forward))

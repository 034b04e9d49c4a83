"""Test-wide settings: a headless plotting backend and quiet, deterministic frameworks.

Nothing here imports an optional package (torch, TensorFlow, shap, ...): a test that needs one skips
itself with ``pytest.importorskip`` (see CONTRIBUTING.md), and collection must work without any of them.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.helpers.tf_retracing import tf_retracing_warnings  # noqa: E402


@pytest.fixture
def no_tf_retracing() -> Iterator[None]:
    """Fail the test if TensorFlow warns of tf.function retracing while it runs."""
    pytest.importorskip("tensorflow")
    with tf_retracing_warnings() as messages:
        yield
    assert not messages, messages[0]

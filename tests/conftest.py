"""Test-wide settings: a headless plotting backend and quiet, deterministic frameworks."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import contextlib  # noqa: E402
import logging  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@contextlib.contextmanager
def tf_retracing_warnings() -> Iterator[list[str]]:
    """Collect TensorFlow's "triggered tf.function retracing" warnings logged inside the block.

    TensorFlow warns at most twice per traced code object and process, so its record of past traces is
    cleared first: a warning already given by an earlier test would otherwise hide a new one.
    """
    import tensorflow as tf
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    polymorphic_function._frequent_tracing_detector_manager._detectors.clear()
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = tf.get_logger()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        messages[:] = [m for m in messages if "retracing" in m]


@pytest.fixture
def no_tf_retracing() -> Iterator[None]:
    """Fail the test if TensorFlow warns of tf.function retracing while it runs."""
    with tf_retracing_warnings() as messages:
        yield
    assert not messages, messages[0]

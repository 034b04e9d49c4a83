"""TensorFlow's "triggered tf.function retracing" warnings, collected so a test can assert there are none.

TensorFlow is imported when a block starts, so importing this module needs no TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


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

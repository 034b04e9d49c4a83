"""Keras 3 / tf.keras adapter (imports tensorflow; load it through ``load_adapter``)."""

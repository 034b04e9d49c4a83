"""The errors deepshap raises, one class each, the same for every framework.

Each subclasses the built-in exception that code written for shap or for an earlier deepshap catches:
``UnsupportedOperationError`` is both a ``TypeError`` (the PyTorch backend's) and a
``NotImplementedError`` (the TensorFlow backend's), ``AdditivityError`` an ``AssertionError`` (shap's
additivity check is an ``assert``).
"""

from __future__ import annotations

__all__ = ["AdditivityError", "UnsupportedOperationError"]


class UnsupportedOperationError(TypeError, NotImplementedError):
    """The model applies an operation that has no DeepLIFT/Shapley rule to a value computed from its
    input. The message names the operation; :func:`deepshap.rules.register` gives an operation a rule."""


class AdditivityError(AssertionError):
    """The attributions do not add up to f(x) - E f(background)."""

"""Maskers hide parts of an input for the model-agnostic Partition explainer."""

from deepshap.maskers._image import Image

__all__ = ["Image"]

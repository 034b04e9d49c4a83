"""Plots for image explanations."""

from .image import image, red_transparent_blue

image_plot = image

__all__ = ["image", "image_plot", "red_transparent_blue"]

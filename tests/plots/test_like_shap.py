"""image_plot draws what shap's image_plot draws (same colour map, panels, colour bar), and refuses
what shap would draw as nonsense without a word."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import deepshap
from deepshap.plots.image import red_transparent_blue


def _blocks(rng: np.random.Generator, shape: tuple[int, ...], cell: int = 8) -> np.ndarray:
    """Random values constant over cell x cell squares (so a half-pixel offset changes few pixels)."""
    small = rng.normal(size=(shape[0], shape[1] // cell, shape[2] // cell, shape[3]))
    return small.repeat(cell, 1).repeat(cell, 2)


def _render(image_plot, shap_values, pixels) -> np.ndarray:
    plt.close("all")
    image_plot(shap_values, pixels, show=False)
    figure = plt.gcf()
    figure.set_dpi(40)
    figure.canvas.draw()
    rgb = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(np.float64)
    plt.close(figure)
    return rgb


def test_rendered_figure_matches_shaps_pixel_by_pixel() -> None:
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(0)
    pixels = _blocks(rng, (2, 64, 64, 3))
    pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min())
    values = [_blocks(rng, (2, 64, 64, 3)) * (j + 1) for j in range(3)]
    ours, theirs = _render(deepshap.image_plot, values, pixels), _render(shap.image_plot, values, pixels)
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs).max(axis=-1)
    # shap stretches its grey overlay over one pixel more than the image; deepshap aligns it, which moves
    # the edges of the cells by half a pixel and nothing else
    assert np.sqrt((difference**2).mean()) < 1.5
    assert (difference > 8).mean() < 0.005


def test_colour_map_fades_in_transparency_not_colour() -> None:
    colours = red_transparent_blue(np.linspace(0, 1, 256))
    blue, red = colours[:127], colours[129:]  # the two entries around zero blend the two, transparent
    np.testing.assert_allclose(blue[:, :3], np.tile([30 / 255, 136 / 255, 229 / 255], (127, 1)), atol=1e-6)
    np.testing.assert_allclose(red[:, :3], np.tile([1.0, 13 / 255, 87 / 255], (127, 1)), atol=1e-6)
    assert colours[0, 3] == 1.0 and colours[-1, 3] == 1.0
    assert colours[127, 3] < 0.01 and colours[128, 3] < 0.01
    assert np.all(np.diff(blue[:, 3]) <= 0) and np.all(np.diff(red[:, 3]) >= 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_values_are_an_error(bad: float) -> None:
    values = np.ones((1, 8, 8, 1))
    values[0, 2, 3, 0] = bad
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        deepshap.image_plot(values, np.zeros((1, 8, 8, 1)), show=False)
    with pytest.raises(ValueError, match="pixel_values contains"):
        deepshap.image_plot(np.ones((1, 8, 8, 1)), values, show=False)


@pytest.mark.parametrize(
    "map_shape, image_shape",
    [((1, 28, 28, 1), (1, 32, 32, 1)), ((1, 28, 28, 1), (1, 14, 28, 1)), ((1, 16, 16, 3), (1, 8, 8, 3))],
)
def test_maps_that_do_not_fit_the_images_are_an_error(map_shape, image_shape) -> None:
    with pytest.raises(ValueError, match="do not belong to these images"):
        deepshap.image_plot(np.ones(map_shape), np.zeros(image_shape), show=False)


def test_a_layers_smaller_map_is_still_stretched_over_the_image() -> None:
    figure = deepshap.image_plot(np.ones((1, 7, 7, 16)), np.zeros((1, 224, 224, 3)), show=False)
    assert figure.axes[1].images[-1].get_array().shape == (224, 224)
    plt.close(figure)

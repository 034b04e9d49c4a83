"""Regions: grids over either channel layout, superpixels, sums per region, and a lazy import."""

import subprocess
import sys

import numpy as np
import pytest

from deepshap import metrics


def test_grid_over_channels_last_and_first():
    last = metrics.grid((6, 5, 3), 2)
    first = metrics.grid((3, 6, 5), 2)
    assert last.n_regions == first.n_regions == 9  # 3 rows of blocks x 3 columns (the last one narrower)
    np.testing.assert_array_equal(last.labels[..., 0], first.labels[0])
    assert np.all(last.labels[..., 0] == last.labels[..., 2])  # channels move together
    assert metrics.pixels((4, 4)).n_regions == 16


def test_sum_values_and_value_masks():
    regions = metrics.grid((4, 4, 1), 2)
    values = np.arange(16, dtype=float).reshape(1, 4, 4, 1, 1)
    np.testing.assert_allclose(
        regions.sum_values(values)[0, :, 0],
        [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15],
    )
    masks = regions.value_masks(np.array([[True, False, False, True]]))
    assert (
        masks.shape == (1, 4, 4, 1) and masks.sum() == 8 and masks[0, 0, 0, 0] == 1 and masks[0, 0, 3, 0] == 0
    )


def test_superpixels_cover_the_image():
    image = np.zeros((20, 20, 3), dtype=np.float32)
    image[:, 10:] = 1.0
    regions = metrics.superpixels(image, n_segments=4)
    assert regions.sample_shape == (20, 20, 3) and regions.n_regions >= 2
    assert len(np.unique(regions.labels[:, :10, 0])) + len(np.unique(regions.labels[:, 10:, 0])) >= 2


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="0..M-1"):
        metrics.Regions(np.array([[0, 2], [2, 0]]))


def test_importing_metrics_loads_no_framework():
    code = (
        "import sys, deepshap; deepshap.metrics.grid((4, 4), 2); "
        "print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]

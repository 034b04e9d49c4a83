"""The Image masker's partition trees: shap's axis-aligned tree, superpixel trees that follow the picture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from deepshap.maskers._trees import axis_tree, superpixel_tree, tree_from_segments
from tests.helpers.images import photo


def node_pixels(tree, node: int) -> np.ndarray:
    mask = np.zeros(tree.image_shape[0] * tree.image_shape[1], dtype=bool)
    tree.paint(mask, node)
    return mask


@pytest.mark.parametrize("shape", [(7, 5), (9, 13), (16, 12), (1, 6)])
def test_axis_tree_has_the_pixel_sets_of_shaps_tree(shape):
    """Every node of deepshap's tree is a node of shap's tree (shap's nodes over whole pixels)."""
    pytest.importorskip("shap")
    from shap.maskers import Image as ShapImage
    from shap.utils import make_masks

    height, width, channels = *shape, 3
    shap_masks = make_masks(ShapImage(0.0, (height, width, channels)).clustering)
    shap_sets = set()
    for node in range(shap_masks.shape[0]):
        features = shap_masks[node].indices
        pixels = np.unique(features // channels)
        if len(features) == len(pixels) * channels:
            shap_sets.add(tuple(pixels))
    tree = axis_tree(height, width)
    ours = {tuple(np.flatnonzero(node_pixels(tree, n))) for n in range(len(tree.left))}
    assert ours == shap_sets


def test_axis_tree_is_a_valid_linkage_of_nested_boxes():
    from scipy.cluster.hierarchy import is_valid_linkage

    tree = axis_tree(11, 6)
    assert is_valid_linkage(tree.clustering())
    assert tree.size[tree.root] == 66
    for node in range(tree.n_leaves, len(tree.left)):
        left, right = tree.left[node], tree.right[node]
        assert left < node and right < node
        parent, a, b = node_pixels(tree, node), node_pixels(tree, left), node_pixels(tree, right)
        assert not (a & b).any() and np.array_equal(a | b, parent)
        assert tree.size[node] == parent.sum() == tree.size[left] + tree.size[right]
    for leaf in range(tree.n_leaves):
        assert np.flatnonzero(node_pixels(tree, leaf)).tolist() == [leaf]


def test_superpixel_tree_merges_adjacent_segments_into_connected_regions():
    image = photo(64)
    tree = superpixel_tree(image, n_segments=40)
    assert 10 <= tree.n_leaves <= 80
    assert tree.size[tree.root] == 64 * 64
    for node in range(len(tree.left)):
        region = node_pixels(tree, node)
        assert region.sum() == tree.size[node]
        # every node, leaf or merged, is one connected piece of the image
        assert ndimage.label(region.reshape(64, 64))[1] == 1
        if not tree.is_leaf(node):
            a, b = node_pixels(tree, tree.left[node]), node_pixels(tree, tree.right[node])
            assert not (a & b).any() and np.array_equal(a | b, region)


def test_the_superpixel_linkage_counts_segments():
    from scipy.cluster.hierarchy import is_valid_linkage, to_tree

    tree = superpixel_tree(photo(64), n_segments=40)
    linkage = tree.clustering()
    assert is_valid_linkage(linkage)
    assert to_tree(linkage).get_count() == tree.n_leaves
    assert linkage[-1, 2] == 64 * 64  # the height is the node's pixel count


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_superpixels_follow_the_picture_whatever_the_channel_count(channels):
    """A bright disk on a dark ground, with a little noise: segments stay on one side of its edge. With
    SLIC's compactness on the wrong scale (all but 3 channels) they formed a grid across it."""
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 30.5) ** 2 + (xx - 35.5) ** 2 < 19**2
    image = np.where(disk, 0.8, 0.2) + np.random.default_rng(0).normal(0, 0.02, disk.shape)
    tree = superpixel_tree(np.repeat(image[..., None], channels, axis=-1), n_segments=30)
    straddling = 0
    for leaf in range(tree.n_leaves):
        inside = disk.ravel()[node_pixels(tree, leaf)]
        straddling += min(inside.sum(), (~inside).sum())
    assert straddling <= 0.03 * disk.size  # 87 pixels of 4096 for 3 channels, about 300 on a grid


def test_superpixels_survive_pixel_noise():
    """SLIC without smoothing breaks a noisy photo into fragments that it then merges into a few
    regions (one, at this noise level); with its 1-pixel Gaussian the segment count holds up."""
    image = photo(96) / 255
    noisy = image + np.random.default_rng(0).normal(0, 0.2, image.shape)
    assert superpixel_tree(noisy, n_segments=100).n_leaves >= 0.5 * superpixel_tree(image, 100).n_leaves


def test_segments_merge_by_colour_not_by_position():
    """Four vertical strips red | blue | blue | red: the two blue strips merge first (an axis split would
    pair the strips by position), and a red strip only joins once the blue pair is one region."""
    labels = np.repeat(np.arange(4)[None, :], 8, axis=0).repeat(4, axis=1)  # (8, 16), strips of width 4
    colours = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 0.9], [0.9, 0, 0]])
    tree = tree_from_segments(labels, colours[labels] * 100)
    first_merge = tree.n_leaves
    assert {int(tree.left[first_merge]), int(tree.right[first_merge])} == {1, 2}
    root_children = {int(tree.left[tree.root]), int(tree.right[tree.root])}
    assert root_children & {0, 3}  # a red strip is the last to join

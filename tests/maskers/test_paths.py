"""Masking along the partition tree's paths: regions painted as per-pixel masks would, paths rewritten
exactly, and the right images even for a model that changes its input in place."""

from __future__ import annotations

import numpy as np
import pytest

from deepshap.maskers import Image
from tests.helpers.images import photo


def random_paths(tree, n: int, rng, walks: list | None = None) -> list[tuple[tuple[int, bool], ...]]:
    """``n`` root paths of the tree, what the Owen recursion asks the masker for.

    A path walks down from the root, keeping or hiding the sibling of each node it enters, and ends with
    the region it stops at. Most walks start from a prefix of an earlier one (with a flag or two
    flipped), so paths share prefixes like those of an Owen batch and every way of turning one image
    into another is taken. ``walks`` carries the walks from call to call.
    """
    walks = [] if walks is None else walks
    paths = []
    for _ in range(n):
        nodes, pieces = [tree.root], []
        if walks and rng.random() < 0.8:
            nodes, pieces = walks[rng.integers(len(walks))]
            cut = int(rng.integers(len(pieces) + 1))
            flipped = [(node, kept ^ (rng.random() < 0.2)) for node, kept in pieces[:cut]]
            nodes, pieces = nodes[: cut + 1], flipped
        for _ in range(rng.integers(0, 12)):
            if tree.is_leaf(nodes[-1]):
                break
            children = [int(tree.left[nodes[-1]]), int(tree.right[nodes[-1]])]
            side = int(rng.integers(2))
            pieces.append((children[1 - side], bool(rng.random() < 0.5)))
            nodes.append(children[side])
        walks.append((nodes, pieces))
        paths.append((*pieces, (nodes[-1], bool(rng.random() < 0.5))))
    return paths


def path_masks(tree, paths) -> np.ndarray:
    return tree.masks([[node for node, kept in path if kept] for path in paths])


@pytest.mark.parametrize("partition", ["axis", "superpixels"])
def test_region_painting_matches_per_pixel_masking(partition):
    """The block-copy path (its reused, partly rewritten buffer and slot order) gives a per-pixel
    select's images."""
    image = photo(40)
    masker = Image("blur(8,8)", image.shape, partition=partition, n_segments=20)
    tree, filler = masker.tree(image), masker.filler(image)
    rng, walks = np.random.default_rng(1), []
    for size in (2, 7, 7, 5, 9, 9, 30, 30, 30):  # reuse, shrink, grow: every way a slot can be updated
        paths = random_paths(tree, size, rng, walks)
        batch, slot = filler.images(tree, paths)
        assert sorted(slot.tolist()) == list(range(size))
        np.testing.assert_array_equal(batch[slot], filler.build(path_masks(tree, paths)))


def test_paths_that_part_anywhere_are_rewritten_exactly():
    """Every pair of related paths: the changes from one to the other give the other's image."""
    from deepshap.maskers._paths import path_changes

    image = photo(16)
    masker = Image("blur(4,4)", image.shape)
    tree, filler = masker.tree(image), masker.filler(image)
    paths = random_paths(tree, 60, np.random.default_rng(4))
    sources = (filler.fill, image)
    for old, new in zip(paths, paths[1:] + paths[:1], strict=True):
        out = filler.build(path_masks(tree, [old]))[0]
        changes, cost = path_changes(tree.area, old, new)
        for node, kept in changes:
            tree.copy(out, sources[kept], node)
        np.testing.assert_array_equal(out, filler.build(path_masks(tree, [new]))[0])
        assert cost <= 1.0 + 0.05 * len(changes)


@pytest.mark.parametrize("reserved", [False, True])
def test_a_model_that_changes_its_input_in_place_still_gets_the_right_images(reserved):
    image = photo(40)
    masker = Image("blur(8,8)", image.shape)
    tree, filler = masker.tree(image), masker.filler(image)
    if reserved:  # as the explainer does: the buffer exists before the first image is written
        filler.reserve(8)
    rng, walks = np.random.default_rng(2), []
    for _ in range(4):
        paths = random_paths(tree, 6, rng, walks)
        batch, slot = filler.images(tree, paths)
        np.testing.assert_array_equal(batch[slot], filler.build(path_masks(tree, paths)))
        batch -= 100.0  # what `preprocess_input(x)` without a copy does


@pytest.mark.parametrize("height", [97, 194, 50])
def test_the_row_checked_after_each_batch_moves_on_whatever_the_height(height):
    """One row of the last batch is compared before its images are reused, a different row each batch:
    a step of 97 rows stood still on images 97 or 194 rows high."""
    image = np.random.default_rng(0).random((height, 4, 3))
    masker = Image("blur(3,3)", image.shape)
    tree, filler = masker.tree(image), masker.filler(image)
    rng, rows = np.random.default_rng(1), set()
    for _ in range(6):
        filler.images(tree, random_paths(tree, 4, rng))
        rows.add(filler._probe[0])
    assert len(rows) == 6

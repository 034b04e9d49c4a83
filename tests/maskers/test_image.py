"""The Image masker and its partition trees: shap's tree, superpixels, exact kept pixels, right fills."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from scipy import ndimage

from deepshap.maskers import Image
from deepshap.maskers._image import InpaintFill
from deepshap.maskers._trees import axis_tree, superpixel_tree, tree_from_segments


def node_pixels(tree, node: int) -> np.ndarray:
    mask = np.zeros(tree.image_shape[0] * tree.image_shape[1], dtype=bool)
    tree.paint(mask, node)
    return mask


def photo(size: int = 48) -> np.ndarray:
    """A real photo (skimage's coffee), resized, float64 in [0, 255] with fractional values."""
    import skimage.data

    image = cv2.resize(skimage.data.coffee(), (size, size), interpolation=cv2.INTER_AREA)
    noisy = image.astype(np.float64) + np.random.default_rng(0).uniform(-0.4, 0.4, image.shape)
    return noisy.clip(0, 255)


def random_box_masks(n: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``n`` keep-masks made of a few random rectangles (the shape of partition masks)."""
    rng = np.random.default_rng(seed)
    keep = np.ones((n, *shape), dtype=bool)
    for mask in keep:
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            h, w = rng.integers(1, shape[0] // 2 + 2), rng.integers(1, shape[1] // 2 + 2)
            mask[y : y + h, x : x + w] = False
    return keep


# ---------------------------------------------------------------------------------------------- trees
@pytest.mark.parametrize("shape", [(7, 5), (9, 13), (16, 12), (1, 6)])
def test_axis_tree_has_the_pixel_sets_of_shaps_tree(shape):
    """Every node of deepshap's tree is a node of shap's tree (shap's nodes over whole pixels)."""
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


# ---------------------------------------------------------------------------------------------- fills
def test_blur_of_more_channels_than_opencv_takes_at_once():
    image = np.random.default_rng(0).random((9, 7, 300)).astype(np.float32)
    fill = Image("blur(3,3)", image.shape).filler(image).fill
    expected = np.stack([cv2.blur(np.ascontiguousarray(image[..., c]), (3, 3)) for c in range(300)], -1)
    np.testing.assert_array_equal(fill, expected)


def test_blur_is_computed_once_and_kept_pixels_are_exact():
    image = photo()
    masker = Image("blur(9,5)", image.shape)
    filler = masker.filler(image)
    np.testing.assert_array_equal(filler.fill, cv2.blur(image, (9, 5)))
    keep = random_box_masks(6, image.shape[:2])
    out = filler.build(keep)
    assert out.shape == (6, *image.shape) and out.dtype == image.dtype
    np.testing.assert_array_equal(
        out[np.broadcast_to(keep[..., None], out.shape)],
        np.broadcast_to(image, out.shape)[np.broadcast_to(keep[..., None], out.shape)],
    )
    np.testing.assert_array_equal(out, np.where(keep[..., None], image, filler.fill))


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


@pytest.mark.parametrize("method", ["inpaint_telea", "inpaint_ns"])
def test_inpainting_in_a_crop_equals_opencv_on_the_whole_image(method):
    """The same fill as OpenCV on the whole image (with the hidden pixels blanked, see the next test)."""
    image = np.rint(photo()).clip(0, 255).astype(np.uint8)
    filler = Image(method, image.shape).filler(image)
    flag = cv2.INPAINT_TELEA if method == "inpaint_telea" else cv2.INPAINT_NS
    for keep in random_box_masks(25, image.shape[:2], seed=3):
        blanked = np.where(keep[..., None], image, 0).astype(np.uint8)
        expected = np.where(keep[..., None], image, cv2.inpaint(blanked, (~keep).astype(np.uint8), 3, flag))
        np.testing.assert_array_equal(filler.inpaint(keep), expected)


def plain_inpainting(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The masked image computed plainly: channel by channel, bytes of the whole image (8-bit images) or
    of the crop the hidden pixels and their margin span, mapped from its kept pixels' range."""
    from deepshap.maskers._image import _CROP_MARGIN, _byte_scale, _cast_like

    step = _byte_scale(image)
    values = image.astype(np.float64)
    if step is None:  # the crop around the hidden pixels, its bytes from its kept pixels' range
        rows, cols = np.flatnonzero((~keep).any(1)), np.flatnonzero((~keep).any(0))
        y0, x0 = max(rows[0] - _CROP_MARGIN, 0), max(cols[0] - _CROP_MARGIN, 0)
        y1, x1 = rows[-1] + 1 + _CROP_MARGIN, cols[-1] + 1 + _CROP_MARGIN
        values, keep = values[y0:y1, x0:x1], keep[y0:y1, x0:x1]
        low, high = values[keep].min(), values[keep].max()
        step = (high - low) / 255
    else:
        low, y0, x0 = 0.0, 0, 0
    image_bytes = np.rint((values.clip(low, low + 255 * step) - low) / step).astype(np.uint8)
    blanked = np.where(keep[..., None], image_bytes, 0).astype(np.uint8)
    hidden = (~keep).astype(np.uint8)
    filled = np.stack(
        [
            cv2.inpaint(np.ascontiguousarray(blanked[..., c]), hidden, 3, cv2.INPAINT_TELEA)
            for c in range(image.shape[-1])
        ],
        axis=-1,
    )
    out = image.copy()
    region = out[y0 : y0 + keep.shape[0], x0 : x0 + keep.shape[1]]
    region[...] = np.where(keep[..., None], region, _cast_like(low + filled * step, image))
    return out


@pytest.mark.parametrize(
    "dtype, channels, scale",
    [
        (np.float32, 3, 1 / 255),  # OpenCV does the blanking, the byte look-up and the masked copy
        (np.int16, 1, 1.0),
        (np.float64, 4, 0.01),  # four channels: inpainted one by one; not 8-bit: from the kept range
        (np.int64, 3, 7.0),  # types and channel counts OpenCV's array functions may lack: numpy's
        (np.float16, 3, 1 / 255),
        (np.float32, 5, 1.0),
    ],
)
def test_inpainting_of_every_image_type_equals_the_plain_computation(dtype, channels, scale):
    """Kept pixels exact, hidden ones OpenCV's fill of the blanked byte image mapped back, whichever of
    OpenCV's or numpy's array functions a type gets."""
    colour = photo()
    image = np.concatenate([colour] * 2, axis=-1)[..., :channels]
    image = (np.rint(image) * scale).astype(dtype)
    keep = random_box_masks(6, image.shape[:2], seed=11)
    out = Image("inpaint_telea", image.shape).filler(image).build(keep)
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, np.stack([plain_inpainting(image, mask) for mask in keep]))


@pytest.mark.parametrize("method", ["inpaint_telea", "inpaint_ns"])
def test_hidden_pixels_do_not_leak_into_the_fill(method):
    """OpenCV alone lets hidden pixels near the border change the fill; deepshap's fill never sees them."""
    image = np.rint(photo()).clip(0, 255).astype(np.uint8)
    keep = np.ones(image.shape[:2], dtype=bool)
    keep[0:10, 5:20] = False
    scrambled = image.copy()
    scrambled[~keep] = 255 - image[~keep]
    flag = cv2.INPAINT_TELEA if method == "inpaint_telea" else cv2.INPAINT_NS
    hidden = (~keep).astype(np.uint8)
    assert not np.array_equal(cv2.inpaint(image, hidden, 3, flag), cv2.inpaint(scrambled, hidden, 3, flag))
    masker = Image(method, image.shape)
    np.testing.assert_array_equal(masker.filler(image).inpaint(keep), masker.filler(scrambled).inpaint(keep))


def test_inpainting_keeps_exact_pixels_and_uses_only_kept_ones():
    image = photo() / 255.0  # floats in [0, 1], not multiples of 1/255
    masker = Image("inpaint_telea", image.shape)
    keep = random_box_masks(4, image.shape[:2], seed=5)
    out = masker.filler(image).build(keep)
    kept = np.broadcast_to(keep[..., None], out.shape)
    np.testing.assert_array_equal(out[kept], np.broadcast_to(image, out.shape)[kept])
    # filled in the image's own range [0, 1], not 0..255 and not cut to 0/1 by a uint8 cast
    hidden = out[~kept]
    assert 0 <= hidden.min() and hidden.max() <= 1 and len(np.unique(hidden)) > 20
    # the hidden pixels' own values play no part
    scrambled = image.copy()
    scrambled[~keep[0]] = np.random.default_rng(0).uniform(0, 1, (int((~keep[0]).sum()), 3))
    np.testing.assert_array_equal(masker.filler(scrambled).build(keep[:1]), out[:1])


def test_a_dark_float_image_is_inpainted_on_its_own_range():
    """A float image in [0, 0.003] is not cut to bytes 0 and 1 by the [0, 1] -> 0..255 scaling (its fill
    had 4 levels, up to 4x the image's maximum); an 8-bit image divided by 255 still is."""
    from deepshap.maskers._image import _byte_scale

    eight_bit = np.rint(photo()).clip(0, 255)
    dark = photo() / 255.0 * 0.003
    assert _byte_scale(eight_bit / 255.0) == 1.0 / 255.0
    assert _byte_scale((eight_bit / 255.0).astype(np.float16)) == 1.0 / 255.0
    assert _byte_scale(dark) is None
    keep = random_box_masks(3, dark.shape[:2], seed=4)
    hidden = Image("inpaint_telea", dark.shape).filler(dark).build(keep)[~keep]
    spread = dark.max() - dark.min()
    assert len(np.unique(hidden)) > 50
    assert dark.min() - 0.05 * spread <= hidden.min() and hidden.max() <= dark.max() + 0.05 * spread
    # the same picture at 1000x the scale gets the same fill, scaled
    scaled = Image("inpaint_telea", dark.shape).filler(dark * 1000).build(keep)[~keep]
    np.testing.assert_allclose(scaled, hidden * 1000, rtol=1e-9, atol=1e-9)


def test_inpainting_follows_the_images_value_range():
    """The same picture in [0, 1] and in [0, 255] gets the same fill, rescaled; standardised or in another
    range, it is mapped onto bytes from the kept pixels' own range (not rint(x)), so its fill is the same
    up to that rounding (NS passes a byte's difference on more than Telea)."""
    image = np.rint(photo()).clip(0, 255)
    keep = random_box_masks(3, image.shape[:2], seed=7)
    hidden = np.broadcast_to(~keep[..., None], (*keep.shape, 3))
    mean, std = image.mean(), image.std()
    for method, most in (("inpaint_telea", 4.0), ("inpaint_ns", 10.0)):
        reference = Image(method, image.shape).filler(image).build(keep)
        unit = Image(method, image.shape).filler(image / 255).build(keep)
        np.testing.assert_allclose(unit * 255, reference, atol=1e-9)
        for scale, shift in ((1 / std, -mean / std), (1.02 / 255, 0.01), (10 / 255, 0.0)):
            other = Image(method, image.shape).filler(image * scale + shift).build(keep)
            gap = np.abs((other - shift) / scale - reference)[hidden]
            assert gap.mean() < 1.0 and gap.max() < most, (method, scale, gap.mean(), gap.max())
            np.testing.assert_array_equal(other[~hidden], (image * scale + shift)[None].repeat(3, 0)[~hidden])


def test_a_constant_image_inpaints_to_itself_without_warnings():
    image = np.full((12, 12, 3), -0.5)
    keep = random_box_masks(3, image.shape[:2], seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filled = Image("inpaint_telea", image.shape).filler(image).build(keep)
    np.testing.assert_array_equal(filled, np.broadcast_to(image, filled.shape))


def _inpaint_once() -> np.ndarray:
    image = photo(16)
    return Image("inpaint_telea", image.shape).filler(image).build(random_box_masks(4, (16, 16), seed=2))


def test_inpainting_works_in_a_forked_child_after_the_parent_inpainted():
    """The thread pool does not survive a fork: the child must not wait forever on the parent's pool."""
    import multiprocessing

    expected = _inpaint_once()  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        np.testing.assert_array_equal(pool.apply_async(_inpaint_once).get(timeout=120), expected)


def test_fully_hidden_and_fully_kept_images():
    image = photo()
    filler = InpaintFill(image, "inpaint_telea")
    np.testing.assert_allclose(
        filler.inpaint(np.zeros(image.shape[:2], bool)), np.broadcast_to(image.mean((0, 1)), image.shape)
    )
    np.testing.assert_array_equal(filler.inpaint(np.ones(image.shape[:2], bool)), image)


def test_uint8_images_stay_uint8_and_duplicate_masks_are_inpainted_once(monkeypatch):
    image = np.rint(photo()).clip(0, 255).astype(np.uint8)
    filler = Image("inpaint_telea", image.shape).filler(image)
    calls = []
    original = filler.inpaint
    monkeypatch.setattr(filler, "inpaint", lambda keep, out: calls.append(1) or original(keep, out))
    keep = random_box_masks(2, image.shape[:2])
    out = filler.build(np.concatenate([keep, keep[:1]]))
    assert out.dtype == np.uint8 and len(calls) == 2
    np.testing.assert_array_equal(out[2], out[0])


def test_blur_of_images_taking_turns_through_one_masker():
    """Each call blurs its own image. (shap keys its blur cache by the id() of a temporary view: with
    two images taking turns through one masker it returned the other image's blur every second call.)"""
    images = np.stack([photo(16), photo(16)[::-1].copy()])
    masker = Image("blur(3,3)", images[0].shape)
    hidden = np.zeros(16 * 16, dtype=bool)
    for turn in range(6):
        image = images[turn % 2]
        (masked,) = masker(hidden, image)
        np.testing.assert_array_equal(masked[0], cv2.blur(image, (3, 3)))


def test_constant_background_and_call_forms():
    image = photo(8)
    background = np.full(image.shape, 7.0)
    mask = np.zeros(8 * 8, dtype=bool)
    mask[:20] = True
    for masker in (Image(7.0, image.shape), Image(background)):
        (masked,) = masker(mask, image)
        assert masked.shape == (1, *image.shape)
        np.testing.assert_array_equal(masked[0].reshape(64, 3)[:20], image.reshape(64, 3)[:20])
        assert np.all(masked[0].reshape(64, 3)[20:] == 7.0)
    # a mask over values keeps a pixel only where all its channels are kept
    values_mask = np.repeat(mask, 3)
    values_mask[0] = False
    (masked,) = Image(7.0, image.shape)(values_mask, image)
    assert np.all(masked[0, 0, 0] == 7.0) and np.array_equal(masked[0, 0, 1], image[0, 1])


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("inpaint_fast", (8, 8, 3)), ValueError, "Unknown mask_value 'inpaint_fast'"),
        (("blur(3)", (8, 8, 3)), ValueError, "blur\\(kx,ky\\)"),
        (("blur(0,3)", (8, 8, 3)), ValueError, "at least 1x1"),
        (("inpaint_telea",), TypeError, "needs the image shape"),
        ((0.5,), TypeError, "needs the image shape"),
        ((np.nan, (8, 8, 3)), ValueError, "finite"),
        (("blur(3,3)", (8, 8)), ValueError, "add a channel axis"),
        ((np.zeros((8, 8, 3)), (8, 8, 1)), ValueError, "background image has shape"),
        ((np.full((8, 8, 3), np.nan),), ValueError, "background image must hold finite numbers"),
        ((None, (8, 8, 3)), TypeError, "must be a string, a number or a background image; got None"),
        ((True, (8, 8, 3)), TypeError, "must be a string, a number or a background image; got True"),
        ((1 + 2j, (8, 8, 3)), TypeError, "must be a string, a number or a background image"),
        (("blur(3,3)", (6.7, 8, 3)), ValueError, r"three whole numbers; got \(6.7, 8, 3\)"),
    ],
)
def test_bad_masker_arguments(args, error, message):
    with pytest.raises(error, match=message):
        Image(*args)


def test_bad_images_and_options():
    masker = Image("blur(3,3)", (8, 8, 3))
    with pytest.raises(ValueError, match=r"has shape \(8, 9, 3\) but the masker was built for \(8, 8, 3\)"):
        masker.filler(np.zeros((8, 9, 3)))
    bad = np.zeros((8, 8, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        masker.filler(bad)
    with pytest.raises(ValueError, match="partition must be one of"):
        Image("blur(3,3)", (8, 8, 3), partition="quadtree")
    with pytest.raises(ValueError, match="one per pixel"):
        masker(np.ones(5, bool), np.zeros((8, 8, 3)))
    with pytest.raises(TypeError, match="Boolean images are not supported"):
        masker.filler(np.zeros((8, 8, 3), bool))
    with pytest.raises(ValueError, match=r"mask_value -1 does not fit the images' dtype uint8"):
        Image(-1, (8, 8, 3)).filler(np.zeros((8, 8, 3), np.uint8))


def test_mask_strings_may_carry_spaces():
    image = photo(16)
    keep = random_box_masks(2, image.shape[:2], seed=1)
    spaced = Image(" inpaint_telea ", image.shape).filler(image).build(keep)
    np.testing.assert_array_equal(spaced, Image("inpaint_telea", image.shape).filler(image).build(keep))


def test_a_fill_a_float_dtype_cannot_hold_is_an_error():
    image = np.zeros((4, 4, 3), np.float16)
    with pytest.raises(ValueError, match=r"mask_value 100000.0 does not fit the images' dtype float16"):
        Image(1e5, image.shape).filler(image)
    with pytest.raises(ValueError, match="which do not fit the images' dtype float16"):
        Image(np.full(image.shape, -7e4)).filler(image)
    assert np.all(Image(6e4, image.shape).filler(image).fill == np.float16(6e4))  # within float16's range


def test_a_background_in_another_value_range_is_warned_about():
    photo_u8 = np.rint(photo(8)).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"values in \[0, 1\] while the images hold integers up to"):
        Image(photo_u8 / 255.0).filler(photo_u8)
    with pytest.warns(UserWarning, match=r"values up to 2\d\d while the images are in \[0, 1\]"):
        Image(photo_u8).filler(photo_u8 / 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Image(np.zeros(photo_u8.shape)).filler(photo_u8)  # black: the same in any range
        Image(photo_u8 / 255.0).filler(photo_u8 / 255.0)
        Image(photo_u8.astype(float)).filler(photo_u8)


def test_a_background_the_images_dtype_cannot_hold_is_an_error():
    image = np.full((4, 4, 3), 9, np.uint8)
    with pytest.raises(ValueError, match=r"\[-300.0, -300.0\], which do not fit the images' dtype uint8"):
        Image(np.full(image.shape, -300.0)).filler(image)
    edge = Image(np.full(image.shape, 255.4)).filler(image).build(np.zeros((1, 4, 4), bool))
    assert np.all(edge == 255)  # rounds into the range: not an error


def test_a_channels_first_shape_is_warned_about():
    with pytest.warns(UserWarning, match=r"looks channels-first.*X.transpose\(0, 2, 3, 1\)"):
        Image("blur(3,3)", (3, 32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Image("blur(3,3)", (32, 32, 3))
        Image("blur(3,3)", (3, 32, 4))  # 4 channels: nothing says it is wrong


def test_superpixels_that_find_one_region_are_an_error():
    with pytest.raises(ValueError, match="single superpixel.*n_segments=2"):
        superpixel_tree(photo(32), n_segments=2)
    assert superpixel_tree(photo(32), n_segments=20).n_leaves >= 5


def test_a_constant_fill_is_rounded_like_a_background_on_integer_images():
    image = np.zeros((4, 4, 3), np.uint8)
    keep = np.zeros((1, 4, 4), bool)
    constant = Image(127.5, image.shape).filler(image).build(keep)
    background = Image(np.full(image.shape, 127.5)).filler(image).build(keep)
    np.testing.assert_array_equal(constant, background)
    assert constant.dtype == np.uint8 and np.all(constant == 128)

"""The Image masker: blur and constant fills with exact kept pixels, its call forms, and the arguments and
images it refuses or warns about."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from deepshap.maskers import Image
from deepshap.maskers._trees import superpixel_tree
from tests.helpers.images import photo, random_box_masks


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

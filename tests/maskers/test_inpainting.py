"""The inpainting fills: OpenCV's result computed in a crop, for every image type and value range, kept
pixels exact and hidden ones never leaking into the fill."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from deepshap.maskers import Image
from deepshap.maskers._inpaint import InpaintFill
from tests.helpers.images import photo, random_box_masks


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
    from deepshap.maskers._fill import _cast_like
    from deepshap.maskers._inpaint import _CROP_MARGIN, _byte_scale

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
    from deepshap.maskers._inpaint import _byte_scale

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

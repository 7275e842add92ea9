"""Skull removal on a synthetic head: a soft-tissue disk (brain) inside a bright ring (bone) inside scalp."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.preprocess.skull import brain_mask, head_mask, largest_component, strip_skull


@pytest.fixture(scope="module")
def head():
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(yy - 64, xx - 64)
    hu = np.full((128, 128), -1000.0, np.float32)      # air
    hu[r < 53] = 40.0                                   # scalp
    hu[r < 50] = 1000.0                                 # skull
    hu[r < 44] = 35.0                                   # brain
    hu[(r < 8)] = 5.0                                   # ventricle (CSF)
    hu[(np.abs(yy - 40) < 4) & (np.abs(xx - 64) < 4)] = 70.0  # a bleed
    regions = {"brain": r < 44, "skull": (r >= 44) & (r < 50), "outside": r >= 50}
    return hu, regions


def test_brain_mask_keeps_brain_and_removes_bone_hu(head):
    hu, reg = head
    m = brain_mask(hu)
    assert m[reg["brain"]].mean() > 0.99
    assert m[reg["skull"]].sum() == 0 and m[reg["outside"]].sum() == 0


def test_brain_mask_on_eight_bit_brain_window(head):
    hu, reg = head
    u8 = np.clip(hu / 80.0 * 255.0, 0, 255)  # brain window 40/80 as 8-bit
    m = brain_mask(u8, has_hu=False)
    assert m[reg["brain"]].mean() > 0.99
    assert m[reg["skull"]].sum() == 0 and m[reg["outside"]].sum() == 0


def test_strip_skull_zeroes_bone_and_keeps_brain_values(head):
    hu, reg = head
    out = strip_skull(hu, brain_mask(hu), fill=-1000.0)
    assert (out[reg["skull"]] == -1000.0).all()
    np.testing.assert_array_equal(out[reg["brain"]], hu[reg["brain"]])


def test_head_mask_covers_scalp_skull_and_brain(head):
    hu, reg = head
    m = head_mask(hu)
    yy, xx = np.mgrid[:128, :128]
    inside = np.hypot(yy - 64, xx - 64) < 52
    assert m[inside].all() and m.sum() < inside.sum() * 1.1


def test_largest_component_drops_specks():
    m = np.zeros((20, 20), bool)
    m[2:10, 2:10] = True
    m[15, 15] = True
    assert largest_component(m).sum() == 64


def test_head_square_centres_a_margined_square_and_crop_pads_beyond_the_edge():
    from medsift.preprocess.skull import crop_square, head_square

    head = np.zeros((20, 30), bool)
    head[0:10, 2:22] = True  # 10 x 20 box touching the top edge
    y0, x0, side = head_square(head, margin=0.05)
    assert side == 22 and (x0, y0) == (1, -6)
    crop = crop_square(np.ones((20, 30), np.float32), (y0, x0, side), fill=-1.0)
    assert crop.shape == (22, 22)
    assert (crop[:6] == -1).all() and (crop[6:] == 1).all()  # rows above the image are padding
    assert head_square(np.zeros((5, 5), bool)) is None
    stacked = crop_square(np.stack([head, ~head]).astype(np.uint8), (y0, x0, side))
    assert stacked.shape == (2, 22, 22) and stacked[0].sum() == head.sum()


def test_the_cache_finds_the_same_head_square_as_the_full_head_mask(head):
    """``find_head_square`` skips the closing and hole filling: on a head with dark holes, a notch and a speck of
    noise apart from it, the square is the one of ``head_mask``."""
    from medsift.preprocess.cache import find_head_square
    from medsift.preprocess.skull import head_square
    from medsift.preprocess.windowing import stack_windows

    hu = head[0].copy()
    hu[60:70, 10:16] = -1000.0   # a notch of air into the scalp and skull
    hu[50:58, 50:58] = -1000.0   # air inside the head (a sinus)
    hu[2:4, 120:122] = 40.0      # a speck outside the head
    chans = stack_windows(hu, ("brain",), has_hu=True)
    expected = head_square(head_mask(np.rint(chans[0] * 255.0), has_hu=False))
    assert expected is not None
    assert find_head_square(chans) == expected

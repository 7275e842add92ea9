"""Display rendering: windows on HU data, 8-bit passthrough, overlays."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.errors import ConfigError
from medsift.review.render import Overlay, compose, parse_overlays, to_display, window_names


def test_hu_windows_map_by_hand():
    hu = np.array([[-1000.0, 0.0, 40.0, 80.0, 2000.0]], np.float32)
    # brain 40/80: 0 HU -> 0, 40 -> 127.5 -> 127, 80 -> 255
    np.testing.assert_array_equal(to_display(hu, has_hu=True, window="brain")[0], [0, 0, 127, 255, 255])
    # bone 600/2800: low -800 HU; 0 HU -> 800/2800*255 = 72.86 -> 72; 2000 -> 255
    assert to_display(hu, has_hu=True, window="bone")[0].tolist() == [0, 72, 76, 80, 255]


def test_stored_window_comes_from_the_row():
    hu = np.array([[0.0, 100.0, 200.0]], np.float32)
    out = to_display(hu, has_hu=True, window="stored", row={"window_center": 100.0, "window_width": 200.0})
    assert out[0].tolist() == [0, 127, 255]


def test_8bit_data_is_not_rewindowed():
    px = np.array([[0.0, 12.0, 255.0]], np.float32)
    for w in ("brain", "bone", "stored"):
        assert to_display(px, has_hu=False, window=w)[0].tolist() == [0, 12, 255]


def test_unknown_window_and_overlay_fail_listing_valid_ones():
    with pytest.raises(ConfigError, match="brain"):
        to_display(np.zeros((2, 2), np.float32), has_hu=True, window="lung")
    with pytest.raises(ConfigError, match="mask"):
        parse_overlays("mask,heat")
    assert window_names()[0] == "brain"


def test_box_is_outlined_inside_the_image():
    gray = np.zeros((20, 20), np.uint8)
    rgb = compose(gray, mask=None, boxes=[[2, 2, 12, 12, "a"], [-5, -5, 50, 50, "b"]], overlays=(Overlay.BOXES,))
    yellow = np.all(rgb == (255, 215, 0), axis=2)
    # lines ceil(1.5) = 2 px wide at native size: rows/cols 2-3 and 10-11 (x2/y2 = 12 is exclusive)
    assert yellow[2:4, 2:12].all() and yellow[10:12, 2:12].all() and yellow[2:12, 2:4].all()
    assert not yellow[4:10, 4:10].any()
    assert yellow[0, :].all() and yellow[19, :].all()  # the out-of-range box is clipped to the border

"""Masks: connected components -> boxes (x2/y2 = last pixel + 1), slice labels, PNG read/write."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medsift.errors import FormatError
from medsift.formats.masks import boxes_to_label, mask_to_boxes, read_mask_png, write_mask_png


def _square() -> np.ndarray:
    m = np.zeros((10, 10), dtype=bool)
    m[2:5, 3:7] = True  # rows 2..4, columns 3..6
    return m


def test_one_square_gives_one_box_with_exclusive_far_edge():
    assert mask_to_boxes(_square()) == [[3, 2, 7, 5, "hemorrhage"]]


def test_single_pixel_box_has_width_one():
    m = np.zeros((8, 8), dtype=bool)
    m[5, 3] = True
    assert mask_to_boxes(m, label="x") == [[3, 5, 4, 6, "x"]]


def test_two_components_give_two_boxes_sorted_top_to_bottom():
    m = np.zeros((10, 10), dtype=bool)
    m[6:9, 0:2] = True
    m[1:3, 5:10] = True
    assert mask_to_boxes(m, label="a") == [[5, 1, 10, 3, "a"], [0, 6, 2, 9, "a"]]


def test_min_area_drops_small_components():
    m = _square()
    m[8, 8] = True  # 1-pixel speck
    assert mask_to_boxes(m, min_area=2) == [[3, 2, 7, 5, "hemorrhage"]]


def test_diagonal_pixels_join_with_8_connectivity_only():
    m = np.zeros((4, 4), dtype=bool)
    m[0, 0] = m[1, 1] = True
    assert mask_to_boxes(m) == [[0, 0, 2, 2, "hemorrhage"]]
    assert len(mask_to_boxes(m, connectivity=1)) == 2


def test_empty_mask_gives_no_boxes_and_label_zero():
    assert mask_to_boxes(np.zeros((5, 5), bool)) == []
    assert boxes_to_label([]) == 0


def test_boxes_to_label_filters_by_label():
    boxes = [[0, 0, 1, 1, "edema"]]
    assert boxes_to_label(boxes) == 1
    assert boxes_to_label(boxes, labels=["hemorrhage"]) == 0


def test_mask_must_be_2d():
    with pytest.raises(FormatError, match="2D"):
        mask_to_boxes(np.zeros((2, 3, 3), bool))


@pytest.mark.parametrize("value", [1, 255])
def test_mask_png_round_trip_and_stored_value(tmp_path, value):
    path = write_mask_png(tmp_path / "m.png", _square(), value=value)
    raw = np.asarray(Image.open(path))
    assert raw.dtype == np.uint8 and set(np.unique(raw)) == {0, value}
    assert np.array_equal(read_mask_png(path), _square())


def test_rgb_mask_counts_any_channel(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1, 2, 1] = 200
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    expected = np.zeros((4, 4), bool)
    expected[1, 2] = True
    assert np.array_equal(read_mask_png(tmp_path / "rgb.png"), expected)


def test_unreadable_mask_raises_format_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(FormatError, match="bad.png"):
        read_mask_png(tmp_path / "bad.png")


def test_mask_bbox_spans_every_component_with_exclusive_ends():
    from medsift.formats.masks import mask_bbox, mask_to_boxes

    m = np.zeros((12, 10), bool)
    m[2:5, 3:7] = True
    m[9, 1] = True  # a second component: the bbox covers both, mask_to_boxes gives one box each
    assert mask_bbox(m) == [1, 2, 7, 10]
    assert len(mask_to_boxes(m)) == 2
    one = np.zeros((8, 8), np.uint8)
    one[5, 3] = 255
    assert mask_bbox(one) == [3, 5, 4, 6]  # one pixel: width and height 1, as the box convention says
    assert mask_bbox(np.zeros((4, 4))) is None

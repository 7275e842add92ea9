"""YOLO: normalised conversions, label text, reader errors, data.yaml, and the VOC -> COCO -> YOLO -> COCO trip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsift.errors import FormatError
from medsift.formats.coco import CocoImage, build_coco, read_coco, write_coco, xyxy_to_xywh
from medsift.formats.voc import read_voc, write_voc
from medsift.formats.yolo import (data_yaml_text, parse_yolo_label, read_data_yaml, read_yolo_dir, xyxy_to_yolo,
                                  yolo_label_text, yolo_to_xyxy)

NAMES = ["hemorrhage", "lesion"]


def test_hand_computed_normalised_box():
    # box columns 3..6, rows 2..4 of a 10x10 image: centre (5, 3.5), size 4x3 pixels
    assert xyxy_to_yolo([3, 2, 7, 5, "a"], width=10, height=10) == (0.5, 0.35, 0.4, 0.3)
    assert yolo_to_xyxy((0.5, 0.35, 0.4, 0.3), "a", width=10, height=10) == pytest.approx([3, 2, 7, 5, "a"])


def test_label_text_lines():
    text = yolo_label_text([[3, 2, 7, 5, "lesion"]], names=NAMES, width=10, height=10)
    assert text == "1 0.500000 0.350000 0.400000 0.300000\n"
    assert yolo_label_text([], names=NAMES, width=10, height=10) == ""


@pytest.mark.parametrize("line, message", [
    ("2 0.5 0.5 0.1 0.1", "class 2 out of range"),
    ("-1 0.5 0.5 0.1 0.1", "class -1 out of range"),
    ("a 0.5 0.5 0.1 0.1", "integer"),
    ("0 nan 0.5 0.1 0.1", "finite"),
    ("0 0.5 0.5 -0.1 0.1", "width/height must be >= 0"),
    ("0 1.5 0.5 0.1 0.1", "normalised"),
    ("0 0.5 0.5 0.1", "5 fields"),
    ("0 0.5 0.5 0.1 0.1 0.2 0.3", "5 fields"),
])
def test_bad_label_lines_raise_with_line_number(line, message):
    with pytest.raises(FormatError, match=f"x.txt:2: .*{message}"):
        parse_yolo_label("0 0.5 0.5 0.2 0.2\n" + line, names=NAMES, width=10, height=10, source="x.txt")


def test_read_yolo_dir_uses_image_sizes_and_lists_background_images(tmp_path):
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    out = read_yolo_dir(tmp_path, names=NAMES, image_sizes={"a": (20, 10), "b": (20, 10)})
    assert out == {"a": [[5.0, 2.5, 15.0, 7.5, "hemorrhage"]], "b": []}


def test_read_yolo_dir_needs_a_size_for_every_label(tmp_path):
    (tmp_path / "c.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    with pytest.raises(FormatError, match="'c'"):
        read_yolo_dir(tmp_path, names=NAMES, image_sizes={"a": (20, 10)})


def test_data_yaml_round_trip(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text(data_yaml_text(names=NAMES, splits={"train": "images/train", "val": "images/val"}))
    data = read_data_yaml(path)
    assert data.names == NAMES
    assert data.splits == {"train": tmp_path / "images/train", "val": tmp_path / "images/val"}
    assert "path:" not in path.read_text()


def test_data_yaml_with_id_map_and_wrong_nc(tmp_path):
    (tmp_path / "ok.yaml").write_text("train: t\nnames: {0: a, 1: b}\n")
    assert read_data_yaml(tmp_path / "ok.yaml").names == ["a", "b"]
    (tmp_path / "bad.yaml").write_text("train: t\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(FormatError, match="nc = 3"):
        read_data_yaml(tmp_path / "bad.yaml")


@st.composite
def _image_with_boxes(draw):
    w = draw(st.integers(16, 1024))
    h = draw(st.integers(16, 1024))
    boxes = []
    for _ in range(draw(st.integers(1, 5))):
        x1 = draw(st.integers(0, w - 1))
        y1 = draw(st.integers(0, h - 1))
        x2 = draw(st.integers(x1 + 1, w))
        y2 = draw(st.integers(y1 + 1, h))
        boxes.append([x1, y1, x2, y2, draw(st.sampled_from(NAMES))])
    return w, h, boxes


@settings(max_examples=60, deadline=None)
@given(_image_with_boxes())
def test_voc_to_coco_to_yolo_to_coco_keeps_boxes_within_one_pixel(sample):
    w, h, boxes = sample
    with tempfile.TemporaryDirectory() as tmp:
        voc = read_voc(write_voc(Path(tmp) / "a.xml", filename="a.png", width=w, height=h, boxes=boxes))
        coco_path = write_coco(Path(tmp) / "c.json", build_coco([CocoImage("a.png", w, h, voc.boxes)],
                                                                   categories=NAMES))
        from_coco = read_coco(coco_path)["a.png"]
        text = yolo_label_text(from_coco, names=NAMES, width=w, height=h)
        back = parse_yolo_label(text, names=NAMES, width=w, height=h)
        final = build_coco([CocoImage("a.png", w, h, back)], categories=NAMES)
    got = [(a["bbox"], NAMES[a["category_id"] - 1]) for a in final["annotations"]]
    want = [(xyxy_to_xywh(b), b[4]) for b in boxes]
    assert len(got) == len(want)
    for (gb, gl), (wb, wl) in zip(got, want):
        assert gl == wl
        assert max(abs(g - x) for g, x in zip(gb, wb)) <= 1.0

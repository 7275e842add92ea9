"""Property-based round trips (hypothesis): manifest Parquet/CSV, VOC XML, YOLO and COCO boxes, COCO RLE, mask PNG."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medsift.manifest import SPLITS, new_manifest, read_manifest, write_manifest

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a user may put in ids, paths and labels: unicode, commas, quotes, newlines (hard for CSV).
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from([",", '"', "\n", ";"]),
               min_size=1, max_size=12)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32).map(float)


@st.composite
def manifest_rows(draw):
    n = draw(st.integers(1, 6))
    ids = draw(st.lists(text, min_size=n, max_size=n, unique=True))
    rows = []
    for image_id in ids:
        rows.append({
            "image_id": image_id,
            "patient_id": draw(text),
            "image_path": "/data/" + draw(text),
            "format": draw(st.sampled_from(["png", "jpg", "dicom", "nifti"])),
            "width": draw(st.none() | st.integers(1, 4096)),
            "slice_index": draw(st.none() | st.integers(0, 500)),
            "spacing_mm": draw(st.none() | st.floats(0.01, 10, allow_nan=False)),
            "has_hu": draw(st.none() | st.booleans()),
            "boxes": draw(st.lists(st.tuples(finite, finite, finite, finite, text).map(list), max_size=3)),
            "label_hemorrhage": draw(st.none() | st.integers(0, 1)),
            "split": draw(st.none() | st.sampled_from(SPLITS)),
            "excluded": draw(st.booleans()),
            "status": draw(st.sampled_from(["ok", "unreadable", "bad_name"])),
            "status_detail": draw(st.none() | text),
        })
    return rows


TRICKY_ROW = {"image_id": "NA", "patient_id": "007", "image_path": "/data/nan", "format": "png", "width": None,
              "slice_index": 0, "spacing_mm": None, "has_hu": None, "boxes": [[1.5, 2.0, 3.0, 4.0, "NA"]],
              "label_hemorrhage": None, "split": None, "excluded": False, "status": "ok", "status_detail": "1"}
"""Texts pandas would read as missing or as numbers ("NA", "007", "1"): a CSV manifest must keep them."""


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@FAST
@given(rows=manifest_rows())
@example(rows=[TRICKY_ROW, {**TRICKY_ROW, "image_id": "nan", "status_detail": "2.50", "patient_id": "N/A"}])
def test_manifest_round_trips_through_disk(rows, suffix):
    df = new_manifest(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_manifest(df, Path(tmp) / f"manifest{suffix}")
        back = read_manifest(path)
    for col in ("image_id", "patient_id", "image_path", "format", "split", "status", "status_detail"):
        assert [None if pd.isna(v) else str(v) for v in back[col]] == \
               [None if pd.isna(v) else str(v) for v in df[col]], col
    for col in ("width", "slice_index", "label_hemorrhage"):
        assert [None if pd.isna(v) else int(v) for v in back[col]] == \
               [None if pd.isna(v) else int(v) for v in df[col]], col
    assert [None if pd.isna(v) else bool(v) for v in back["has_hu"]] == \
           [None if pd.isna(v) else bool(v) for v in df["has_hu"]]
    assert [bool(v) for v in back["excluded"]] == [bool(v) for v in df["excluded"]]
    np.testing.assert_allclose(back["spacing_mm"].astype(float).to_numpy(), df["spacing_mm"].astype(float).to_numpy())
    assert [[list(b) for b in bs] for bs in back["boxes"]] == [[list(b) for b in bs] for bs in df["boxes"]]


xml_label = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="_-&<>'\""),
                    min_size=1, max_size=10)


@FAST
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(1, 200), st.integers(1, 200),
                          xml_label), max_size=5),
       st.integers(1, 2048), st.integers(1, 2048))
def test_voc_round_trip_keeps_integer_boxes_and_labels(raw, width, height):
    from medsift.formats.voc import read_voc, write_voc

    boxes = [[float(x), float(y), float(x + w), float(y + h), label] for x, y, w, h, label in raw]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_voc(Path(tmp) / "a.xml", filename="a.png", width=width, height=height, boxes=boxes)
        ann = read_voc(path)
    assert ann.boxes == boxes
    assert (ann.width, ann.height, ann.filename) == (width, height, "a.png")


@FAST
@given(st.floats(0, 500), st.floats(0, 500), st.floats(0.5, 300), st.floats(0.5, 300),
       st.integers(1, 2048), st.integers(1, 2048))
def test_yolo_and_coco_box_conversions_invert(x, y, w, h, width, height):
    from medsift.formats.coco import xywh_to_xyxy, xyxy_to_xywh
    from medsift.formats.yolo import xyxy_to_yolo, yolo_to_xyxy

    box = [x, y, x + w, y + h, "a"]
    back = yolo_to_xyxy(xyxy_to_yolo(box, width=width, height=height), "a", width=width, height=height)
    np.testing.assert_allclose(back[:4], box[:4], rtol=1e-9, atol=1e-9)
    assert back[4] == "a"
    again = xywh_to_xyxy(xyxy_to_xywh(box), "a")
    np.testing.assert_allclose(again[:4], box[:4], rtol=1e-12, atol=1e-9)


@FAST
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_coco_rle_round_trip_is_exact(mask):
    from medsift.formats.coco import mask_to_rle, rle_to_mask

    rle = mask_to_rle(mask)
    assert rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(rle_to_mask(rle), mask)


@FAST
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_mask_png_round_trip_is_exact(mask):
    from medsift.formats.masks import read_mask_png, write_mask_png

    with tempfile.TemporaryDirectory() as tmp:
        back = read_mask_png(write_mask_png(Path(tmp) / "m.png", mask))
    np.testing.assert_array_equal(back, mask)

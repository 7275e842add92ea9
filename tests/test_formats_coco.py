"""COCO: box conversions, RLE against hand-computed run lengths, pycocotools loading, reader errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from medsift.errors import FormatError
from medsift.formats.coco import (CocoImage, build_coco, mask_to_rle, read_coco, rle_to_mask, write_coco,
                                  xywh_to_xyxy, xyxy_to_xywh)


def _square() -> np.ndarray:
    m = np.zeros((10, 10), dtype=bool)
    m[2:5, 3:7] = True
    return m


# Column-major runs of _square(): 3 empty columns + 2 rows = 32 zeros, then 4 x (3 ones, 7 zeros) ending
# with 5 + 30 = 35 zeros.
SQUARE_COUNTS = [32, 3, 7, 3, 7, 3, 7, 3, 35]


def test_box_conversion_is_exact_both_ways():
    assert xyxy_to_xywh([3, 2, 7, 5, "a"]) == [3.0, 2.0, 4.0, 3.0]
    assert xywh_to_xyxy([3, 2, 4, 3], "a") == [3.0, 2.0, 7.0, 5.0, "a"]


def test_hand_computed_run_lengths_decode_to_the_square():
    assert np.array_equal(rle_to_mask({"size": [10, 10], "counts": SQUARE_COUNTS}), _square())


def test_mask_to_rle_matches_pycocotools_compression_of_hand_counts():
    rle = mask_to_rle(_square())
    expected = mask_utils.frPyObjects({"size": [10, 10], "counts": SQUARE_COUNTS}, 10, 10)
    assert rle == {"size": [10, 10], "counts": expected["counts"].decode("ascii")}
    assert np.array_equal(rle_to_mask(rle), _square())
    json.dumps(rle)  # JSON-ready


def test_bad_uncompressed_rle_is_rejected():
    with pytest.raises(FormatError, match="sum"):
        rle_to_mask({"size": [10, 10], "counts": [5, 5]})


def _dataset() -> dict:
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:7] = True
    mask[7:9, 9:12] = True
    images = [CocoImage("a.png", 12, 10, [[1, 1, 4, 6, "hemorrhage"]], mask, {"patient_id": "p1"}),
              CocoImage("b.png", 12, 10, [], None)]
    return build_coco(images, categories=["hemorrhage", "lesion"])


def test_coco_json_loads_with_pycocotools_and_masks_decode(tmp_path):
    path = write_coco(tmp_path / "instances.json", _dataset())
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["hemorrhage", "lesion"]
    lesion_anns = coco.loadAnns(coco.getAnnIds(imgIds=[1], catIds=[2]))
    union = np.zeros((10, 12), dtype=bool)
    for ann in lesion_anns:
        union |= coco.annToMask(ann).astype(bool)
    expected = np.zeros((10, 12), dtype=bool)
    expected[2:5, 3:7] = True
    expected[7:9, 9:12] = True
    assert len(lesion_anns) == 2 and np.array_equal(union, expected)
    assert sorted(a["bbox"] for a in lesion_anns) == [[3.0, 2.0, 4.0, 3.0], [9.0, 7.0, 3.0, 2.0]]
    assert sorted(a["area"] for a in lesion_anns) == [6.0, 12.0]


def test_read_coco_returns_pixel_boxes_for_every_image(tmp_path):
    boxes = read_coco(write_coco(tmp_path / "i.json", _dataset()))
    assert boxes["b.png"] == []
    assert boxes["a.png"][0] == [1.0, 1.0, 4.0, 6.0, "hemorrhage"]
    assert sorted(b[:4] for b in boxes["a.png"][1:]) == [[3.0, 2.0, 7.0, 5.0], [9.0, 7.0, 12.0, 9.0]]


def test_unknown_box_label_is_rejected():
    with pytest.raises(FormatError, match="'edema'.*not a category"):
        build_coco([CocoImage("a.png", 5, 5, [[0, 0, 1, 1, "edema"]])], categories=["hemorrhage"])


def _bad(tmp_path, mutate) -> str:
    data = _dataset()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["annotations"][0].update(bbox=[float("nan"), 0, 1, 1]), "finite"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, -2, 1]), "negative"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, 1]), "4 finite"),
    (lambda d: d["annotations"][0].update(category_id=9), "category_id 9"),
    (lambda d: d["annotations"][0].update(image_id=77), "image_id 77"),
    (lambda d: d["annotations"][0].pop("bbox"), r"lacks keys \['bbox'\]"),
    (lambda d: d.pop("categories"), r"lacks keys \['categories'\]"),
    (lambda d: d["images"].append(dict(d["images"][0])), "appears twice"),
])
def test_read_coco_rejects_bad_input(tmp_path, mutate, message):
    with pytest.raises(FormatError, match=message):
        read_coco(_bad(tmp_path, mutate))


def test_read_coco_rejects_non_json(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(FormatError, match="JSON"):
        read_coco(tmp_path / "x.json")


def test_predicted_masks_and_boxes_score_perfectly_against_their_own_ground_truth(tmp_path):
    from pycocotools.cocoeval import COCOeval

    from medsift.formats.coco import box_result, mask_result

    gt = COCO(str(write_coco(tmp_path / "gt.json", _dataset())))
    lesion = [a for a in gt.dataset["annotations"] if a["category_id"] == 2]
    segm = [mask_result(image_id=1, category_id=2, mask=gt.annToMask(a), score=0.9) for a in lesion]
    bbox = [box_result(image_id=1, category_id=2, box=[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                      a["bbox"][1] + a["bbox"][3]], score=0.9) for a in lesion]
    for iou_type, results in (("segm", segm), ("bbox", bbox)):
        dt = gt.loadRes(str(write_coco(tmp_path / f"{iou_type}.json", results)))
        ev = COCOeval(gt, dt, iou_type)
        ev.params.catIds = [2]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0)  # AP@[.5:.95] of exact predictions

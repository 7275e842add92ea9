"""`medsift export`: every target on a tiny real-PNG manifest, read back with the target tool's own loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medsift.errors import ConfigError
from medsift.export import EXPORTERS, MARKER, BoxSource, ExportOptions, ImageFormat, export
from medsift.manifest import new_manifest

H, W = 24, 32
MASKS = {  # image_id -> list of (row slice, col slice) foreground rectangles
    "P1_00": [(slice(3, 12), slice(2, 10)), (slice(18, 20), slice(25, 30))],
    "P1_01": [],
    "P2_00": [(slice(5, 8), slice(5, 8))],
    "P3_00": [(slice(10, 15), slice(12, 20))],
    "P4_00": [(slice(0, 4), slice(0, 4))],
    "P5_00": [(slice(0, 2), slice(0, 2))],
}
BOXES = {
    "P1_00": [[2.0, 3.0, 10.0, 12.0, "hemorrhage"]],
    "P1_01": [],
    "P2_00": [[5.0, 5.0, 8.0, 8.0, "hemorrhage"], [20.0, 1.0, 30.0, 6.0, "edema"]],
    "P3_00": [[12.0, 10.0, 20.0, 15.0, "hemorrhage"]],
    "P4_00": [[0.0, 0.0, 4.0, 4.0, "hemorrhage"]],
    "P5_00": [],
}
SPLIT = {"P1_00": ("train", 0), "P1_01": ("train", 0), "P2_00": ("train", 1), "P3_00": ("val", 2),
         "P4_00": ("test", None), "P5_00": ("train", 1)}


def _mask(image_id: str) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    for rows, cols in MASKS[image_id]:
        m[rows, cols] = True
    return m


def _image(image_id: str) -> np.ndarray:
    return np.random.default_rng(sum(map(ord, image_id))).integers(0, 256, (H, W), dtype=np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    (src / "images").mkdir()
    (src / "masks").mkdir()
    for image_id in MASKS:
        Image.fromarray(_image(image_id)).save(src / "images" / f"{image_id}.png")
        Image.fromarray(_mask(image_id).astype(np.uint8) * 255).save(src / "masks" / f"{image_id}.png")
    (src / "images" / "P6_00.png").write_bytes(b"broken")
    return src


def _rows(src: Path) -> list[dict]:
    rows = []
    for image_id in MASKS:
        split, fold = SPLIT[image_id]
        rows.append({"image_id": image_id, "patient_id": image_id[:2], "image_path": str(src / "images" /
                     f"{image_id}.png"), "mask_path": str(src / "masks" / f"{image_id}.png"), "format": "png",
                     "width": W, "height": H, "has_hu": False, "boxes": BOXES[image_id],
                     "label_hemorrhage": int(bool(BOXES[image_id])), "split": split, "fold": fold,
                     "excluded": image_id == "P5_00", "status": "ok"})
    rows.append({"image_id": "P6_00", "patient_id": "P6", "image_path": str(src / "images" / "P6_00.png"),
                 "format": "png", "status": "unreadable", "split": "train", "excluded": False})
    return rows


@pytest.fixture(scope="module")
def manifest(source) -> pd.DataFrame:
    return new_manifest(_rows(source))


@pytest.fixture(scope="module")
def exported(manifest, tmp_path_factory):
    """One export per target, made once for the module: {target: (out_dir, summary)}."""
    cache: dict = {}

    def get(target: str):
        if target not in cache:
            out = tmp_path_factory.mktemp("exports") / target
            cache[target] = (out, export(manifest, out, target=target))
        return cache[target]

    return get


def test_registry_lists_every_target_and_unknown_fails_listing_them(manifest, tmp_path):
    assert EXPORTERS.names() == ["coco", "monai", "nnunet", "voc", "yolo"]
    with pytest.raises(ConfigError, match="unknown export target 'cvat'; valid: coco, monai, nnunet, voc, yolo"):
        export(manifest, tmp_path / "o", target="cvat")


def test_excluded_and_broken_rows_are_skipped(exported):
    _, summary = exported("coco")
    assert summary.images == {"train": 3, "val": 1, "test": 1}
    assert summary.skipped == {"excluded_or_not_ok": 2}


def test_coco_loads_with_pycocotools_and_masks_and_boxes_match(exported):
    from pycocotools.coco import COCO

    out, _ = exported("coco")
    coco = COCO(str(out / "annotations" / "instances_train.json"))
    cats = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    assert sorted(cats) == ["edema", "hemorrhage", "lesion"]
    for img in coco.loadImgs(coco.getImgIds()):
        image_id = img["medsift_image_id"]
        assert np.array_equal(np.asarray(Image.open(out / "images" / "train" / img["file_name"])), _image(image_id))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        union = np.zeros((H, W), dtype=bool)
        for ann in anns:
            if ann["category_id"] == cats["lesion"]:
                union |= coco.annToMask(ann).astype(bool)
        assert np.array_equal(union, _mask(image_id))
        boxes = sorted(a["bbox"] for a in anns if a["category_id"] != cats["lesion"])
        assert boxes == sorted([b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in BOXES[image_id])


def test_coco_writes_one_json_per_split(exported):
    out, summary = exported("coco")
    names = sorted(p.name for p in (out / "annotations").iterdir())
    assert names == ["instances_test.json", "instances_train.json", "instances_val.json"]
    val = json.loads((out / "annotations" / "instances_val.json").read_text())
    assert [i["file_name"] for i in val["images"]] == ["P3_00.png"]


def test_yolo_data_yaml_and_labels_parse_back(exported):
    from medsift.formats.yolo import image_sizes_from_dir, read_data_yaml, read_yolo_dir

    out, _ = exported("yolo")
    data = read_data_yaml(out / "data.yaml")
    assert data.names == ["edema", "hemorrhage"]
    assert data.splits == {s: out / "images" / s for s in ("train", "val", "test")}
    labels = read_yolo_dir(out / "labels" / "train", names=data.names,
                           image_sizes=image_sizes_from_dir(out / "images" / "train"))
    assert sorted(labels) == ["P1_00", "P1_01", "P2_00"]
    for image_id, boxes in labels.items():
        assert len(boxes) == len(BOXES[image_id])
        for got, want in zip(sorted(boxes, key=str), sorted(BOXES[image_id], key=str)):
            assert got[4] == want[4] and np.allclose(got[:4], want[:4], atol=1e-3)


def test_yolo_boxes_from_mask_components(manifest, tmp_path):
    summary = export(manifest, tmp_path / "y", target="yolo", options=ExportOptions(box_source=BoxSource.MASK))
    lines = (tmp_path / "y" / "labels" / "train" / "P1_00.txt").read_text().splitlines()
    # components: rows 3..11 x cols 2..9 and rows 18..19 x cols 25..29 of a 32x24 image
    assert lines == ["0 0.187500 0.312500 0.250000 0.375000", "0 0.859375 0.791667 0.156250 0.083333"]
    assert summary.boxes == 2 + 0 + 1 + 1 + 1


def test_voc_annotations_read_back_with_the_voc_reader(exported):
    from medsift.formats.voc import read_voc

    out, _ = exported("voc")
    ann = read_voc(out / "VOCdevkit" / "VOC2012" / "Annotations" / "P2_00.xml")
    assert (ann.filename, ann.width, ann.height) == ("P2_00.png", W, H)
    assert ann.boxes == BOXES["P2_00"]
    main = out / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    assert (main / "trainval.txt").read_text().split() == ["P1_00", "P1_01", "P2_00", "P3_00"]


def test_voc_jpeg_export_loads_with_torchvision(manifest, tmp_path):
    from torchvision.datasets import VOCDetection

    summary = export(manifest, tmp_path / "v", target="voc", options=ExportOptions(image_format=ImageFormat.JPG))
    ds = VOCDetection(str(tmp_path / "v"), year="2012", image_set="train")
    image, target = ds[2]
    objects = target["annotation"]["object"]
    assert image.size == (W, H) and target["annotation"]["filename"] == "P2_00.jpg"
    assert [(o["name"], o["bndbox"]["xmin"], o["bndbox"]["ymax"]) for o in objects] == [
        ("hemorrhage", "5", "8"), ("edema", "20", "6")]
    assert any("lossy JPEG" in n for n in summary.notes)


def test_nnunet_refuses_jpeg(manifest, tmp_path):
    with pytest.raises(ConfigError, match="lossless"):
        export(manifest, tmp_path / "j", target="nnunet", options=ExportOptions(image_format=ImageFormat.JPG))


def test_nnunet_layout_dataset_json_and_labels(exported):
    out, summary = exported("nnunet")
    raw = out / "nnUNet_raw" / "Dataset501_medsift"
    meta = json.loads((raw / "dataset.json").read_text())
    assert {"channel_names", "labels", "numTraining", "file_ending"} <= set(meta)
    assert meta["channel_names"] == {"0": "zscore"} and meta["labels"] == {"background": 0, "lesion": 1}
    assert meta["file_ending"] == ".png" and meta["numTraining"] == 4
    assert sorted(p.name for p in (raw / "imagesTr").iterdir()) == [
        "P1_00_0000.png", "P1_01_0000.png", "P2_00_0000.png", "P3_00_0000.png"]
    assert sorted(p.name for p in (raw / "labelsTr").iterdir()) == ["P1_00.png", "P1_01.png", "P2_00.png",
                                                                   "P3_00.png"]
    assert [p.name for p in (raw / "imagesTs").iterdir()] == ["P4_00_0000.png"]
    label = np.asarray(Image.open(raw / "labelsTr" / "P1_00.png"))
    assert label.dtype == np.uint8 and np.array_equal(label, _mask("P1_00").astype(np.uint8))


def test_nnunet_splits_final_follow_manifest_folds(exported):
    out, _ = exported("nnunet")
    splits = json.loads((out / "nnUNet_preprocessed" / "Dataset501_medsift" / "splits_final.json").read_text())
    assert splits == [{"train": ["P2_00", "P3_00"], "val": ["P1_00", "P1_01"]},
                      {"train": ["P1_00", "P1_01", "P3_00"], "val": ["P2_00"]},
                      {"train": ["P1_00", "P1_01", "P2_00"], "val": ["P3_00"]}]


def test_monai_datalist_loads_and_load_imaged_reads_an_item(exported):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    out, _ = exported("monai")
    training = load_decathlon_datalist(str(out / "datalist.json"), data_list_key="training")
    assert [(Path(t["image"]).name, t["fold"]) for t in training] == [
        ("P1_00.png", 0), ("P1_01.png", 0), ("P2_00.png", 1)]
    test = load_decathlon_datalist(str(out / "datalist.json"), data_list_key="test")
    assert [Path(t["image"]).name for t in test] == ["P4_00.png"] and "fold" not in test[0]
    item = LoadImaged(keys=["image", "label"], image_only=True)(training[0])
    # MONAI's PIL reader returns spatial (W, H)
    assert tuple(item["image"].shape) == (W, H)
    assert np.array_equal(np.asarray(item["label"]).T, _mask("P1_00").astype(np.float32))
    assert np.array_equal(np.asarray(item["image"]).T, _image("P1_00").astype(np.float32))
    assert training[0]["label_hemorrhage"] == 1


def test_non_empty_out_needs_overwrite_and_overwrite_replaces(manifest, tmp_path):
    out = tmp_path / "o"
    export(manifest, out, target="voc")
    (out / "stale.txt").write_text("old")
    with pytest.raises(ConfigError, match="not empty; pass --overwrite"):
        export(manifest, out, target="yolo")
    export(manifest, out, target="yolo", overwrite=True)
    assert (out / "data.yaml").is_file() and not (out / "stale.txt").exists()
    assert json.loads((out / MARKER).read_text())["target"] == "yolo"


def test_overwrite_refuses_a_folder_that_is_not_an_export(manifest, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match="holds no medsift export"):
        export(manifest, tmp_path / "mine", target="coco", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "x"


def test_refuses_to_write_into_a_source_folder(manifest, source):
    with pytest.raises(ConfigError, match="source folder"):
        export(manifest, source / "images" / "coco", target="coco")
    with pytest.raises(ConfigError, match="contains the source folder"):
        export(manifest, source, target="coco", overwrite=True)


def test_rows_without_split_are_exported_as_train_with_a_note(source, tmp_path):
    rows = [r for r in _rows(source) if r["image_id"] in ("P1_00", "P2_00")]
    for r in rows:
        r["split"], r["fold"] = None, None
    summary = export(new_manifest(rows), tmp_path / "c", target="coco")
    assert summary.images == {"train": 2}
    assert any("2 rows without a split" in n for n in summary.notes)


def test_nnunet_without_masks_is_refused(source, tmp_path):
    rows = _rows(source)[:2]
    for r in rows:
        r.pop("mask_path")
    with pytest.raises(ConfigError, match="needs segmentation masks"):
        export(new_manifest(rows), tmp_path / "n", target="nnunet")
    assert not (tmp_path / "n").exists() and not list(tmp_path.glob(".n.partial-*"))

"""End to end: synthetic phantoms -> ingest -> split -> export, read back with the target tools' loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medsift.export import export
from medsift.ingest import ingest
from medsift.manifest import active
from medsift.split import assign_splits


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from medsift.synth.testing import tiny_dataset

    return tiny_dataset(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def phe_manifest(synth, tmp_path_factory):
    df = ingest(synth.phe_sich, layout="phe-sich", workspace=tmp_path_factory.mktemp("ws_phe"), source="phe",
                n_jobs=1)
    return assign_splits(df, test=0.34, val=0.0, folds=2, seed=0)


def test_phe_sich_to_coco_keeps_every_active_row_and_its_boxes(phe_manifest, tmp_path):
    from pycocotools.coco import COCO

    summary = export(phe_manifest, tmp_path / "coco", target="coco")
    act = active(phe_manifest)
    assert summary.n_images + summary.skipped.get("image_unreadable", 0) == len(act)
    n_boxes = 0
    for split in summary.images:
        coco = COCO(str(tmp_path / "coco" / "annotations" / f"instances_{split}.json"))
        lesion = [c["id"] for c in coco.loadCats(coco.getCatIds()) if c["name"] == "lesion"]
        n_boxes += len([a for a in coco.dataset["annotations"] if a["category_id"] not in lesion])
    assert n_boxes == summary.boxes == sum(len(b) for b in act["boxes"])


def test_phe_sich_to_nnunet_pairs_every_image_with_a_same_size_label(phe_manifest, tmp_path):
    summary = export(phe_manifest, tmp_path / "nn", target="nnunet")
    raw = tmp_path / "nn" / "nnUNet_raw" / "Dataset501_medsift"
    meta = json.loads((raw / "dataset.json").read_text())
    images = sorted((raw / "imagesTr").iterdir())
    assert meta["numTraining"] == len(images) == len(list((raw / "labelsTr").iterdir())) > 0
    for img in images:
        label = raw / "labelsTr" / img.name.replace("_0000.png", ".png")
        pixels, lab = np.asarray(Image.open(img)), np.asarray(Image.open(label))
        assert pixels.shape == lab.shape and set(np.unique(lab)) <= {0, 1}
    splits = json.loads((tmp_path / "nn" / summary.files["splits_final"]).read_text())
    assert len(splits) == 2
    cases = {p.name[:-len("_0000.png")] for p in images}
    for fold in splits:
        assert set(fold["train"]) | set(fold["val"]) == cases and not set(fold["train"]) & set(fold["val"])


def test_nifti_layout_to_monai_keeps_hu(synth, tmp_path):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    import medsift.io as mio

    df = ingest(synth.nifti, layout="nifti", workspace=tmp_path / "ws", source="nii", n_jobs=1)
    df = assign_splits(df, test=0.34, val=0.0, folds=0, seed=0)
    export(df, tmp_path / "monai", target="monai")
    items = load_decathlon_datalist(str(tmp_path / "monai" / "datalist.json"), data_list_key="training")
    assert items and items[0]["image"].endswith(".nii.gz")
    loaded = LoadImaged(keys=["image"], image_only=True)(items[0])
    row = df.set_index("image_id").loc[items[0]["image_id"]]
    expected = mio.load_slice(row.to_dict())
    assert np.allclose(np.asarray(loaded["image"])[:, :, 0].T, expected)

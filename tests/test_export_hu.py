"""Export of HU data: NIfTI per slice for nnU-Net/MONAI (channel CT), stored or default window for PNG targets."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medsift.errors import ConfigError
from medsift.export import ExportOptions, ImageFormat, export
from medsift.manifest import new_manifest

H, W = 12, 16


def _hu() -> np.ndarray:
    """Two (H, W) HU slices: 40 HU everywhere except 0, 80 and 1000 HU in the first row."""
    vol = np.full((2, H, W), 40.0, dtype=np.float32)
    vol[:, 0, :3] = [0.0, 80.0, 1000.0]
    return vol


def _label() -> np.ndarray:
    lab = np.zeros((2, H, W), dtype=np.uint8)
    lab[0, 4:8, 5:9] = 1
    lab[1, 2:4, 2:4] = 1
    return lab


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> pd.DataFrame:
    src = tmp_path_factory.mktemp("hu_src")
    aff = np.diag([0.5, 0.5, 5.0, 1.0])
    # medsift.io reads slice k of a NIfTI volume as data[:, :, k].T, so store (W, H, Z)
    nib.save(nib.Nifti1Image(_hu().transpose(2, 1, 0), aff), src / "ct.nii.gz")
    nib.save(nib.Nifti1Image(_label().transpose(2, 1, 0), aff), src / "seg.nii.gz")
    rows = []
    for k, (split, fold, window) in enumerate([("train", 0, (40.0, 80.0)), ("val", 1, (None, None))]):
        rows.append({"image_id": f"case1_{k:03d}", "patient_id": "case1" if k == 0 else "case2",
                     "image_path": str(src / "ct.nii.gz"), "volume_index": k, "format": "nifti",
                     "mask_path": str(src / "seg.nii.gz"), "mask_volume_index": k, "width": W, "height": H,
                     "spacing_mm": 0.5, "slice_thickness_mm": 5.0, "has_hu": True,
                     "window_center": window[0], "window_width": window[1], "split": split, "fold": fold,
                     "excluded": False, "status": "ok"})
    return new_manifest(rows)


def test_nnunet_writes_hu_nifti_with_ct_channel(manifest, tmp_path):
    export(manifest, tmp_path / "n", target="nnunet")
    raw = tmp_path / "n" / "nnUNet_raw" / "Dataset501_medsift"
    meta = json.loads((raw / "dataset.json").read_text())
    assert meta["file_ending"] == ".nii.gz" and meta["channel_names"] == {"0": "CT"}
    img = nib.load(raw / "imagesTr" / "case1_000_0000.nii.gz")
    assert np.array_equal(np.asarray(img.dataobj)[:, :, 0].T, _hu()[0])
    assert np.allclose(img.header.get_zooms(), (0.5, 0.5, 5.0))
    lab = np.asarray(nib.load(raw / "labelsTr" / "case1_001.nii.gz").dataobj)[:, :, 0].T
    assert lab.dtype == np.uint8 and np.array_equal(lab, _label()[1])


def test_monai_nifti_item_reads_back_in_hu(manifest, tmp_path):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    export(manifest, tmp_path / "m", target="monai")
    items = load_decathlon_datalist(str(tmp_path / "m" / "datalist.json"), data_list_key="validation")
    assert [Path(i["image"]).name for i in items] == ["case1_001.nii.gz"]
    loaded = LoadImaged(keys=["image", "label"], image_only=True)(items[0])
    assert np.array_equal(np.asarray(loaded["image"])[:, :, 0].T, _hu()[1])
    assert np.array_equal(np.asarray(loaded["label"])[:, :, 0].T, _label()[1].astype(np.float32))


def test_png_targets_window_hu_with_stored_or_default_window(manifest, tmp_path):
    summary = export(manifest, tmp_path / "c", target="coco")
    # 40/80 window: 0 HU -> 0, 80 HU -> 255, 1000 HU -> 255 (clipped), 40 HU -> 127.5 -> 128
    for split, image_id in (("train", "case1_000"), ("val", "case1_001")):
        png = np.asarray(Image.open(tmp_path / "c" / "images" / split / f"{image_id}.png"))
        assert png[0, :4].tolist() == [0, 255, 255, 128] and png.dtype == np.uint8
    assert any("1 with their stored window, 1 with the default 40/80 HU" in n for n in summary.notes)


def test_forced_png_for_nnunet_windows_hu(manifest, tmp_path):
    export(manifest, tmp_path / "p", target="nnunet", options=ExportOptions(image_format=ImageFormat.PNG))
    raw = tmp_path / "p" / "nnUNet_raw" / "Dataset501_medsift"
    assert json.loads((raw / "dataset.json").read_text())["channel_names"] == {"0": "zscore"}
    assert np.asarray(Image.open(raw / "imagesTr" / "case1_000_0000.png"))[0, :3].tolist() == [0, 255, 255]


def test_mixed_hu_and_8bit_needs_an_explicit_format(manifest, tmp_path):
    mixed = manifest.copy()
    mixed.loc[1, "has_hu"] = False
    with pytest.raises(ConfigError, match="1 of 2 rows are in HU.*--image-format"):
        export(mixed, tmp_path / "x", target="monai")

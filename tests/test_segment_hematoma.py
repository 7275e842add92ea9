"""Hematoma masks derived from the edema rim agree with the phantoms' true IPH label."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medsift.label.hematoma import compare_masks, derive_hematoma_mask


@pytest.fixture(scope="session")
def phantom_slices(tmp_path_factory):
    """(image, edema rim, iph boxes, true IPH mask) of every defect-free PHE-layout phantom slice."""
    import nibabel as nib
    from PIL import Image

    from medsift.synth.lesions import LABEL_MAP
    from medsift.synth.testing import tiny_dataset

    ds = tiny_dataset(tmp_path_factory.mktemp("hema"))
    truth = pd.read_csv(ds.truth_slices, dtype={"image_id": str, "patient_id": str})
    defective = set(pd.read_csv(ds.truth_defects, dtype={"image_id": str})["image_id"])
    vols: dict[str, np.ndarray] = {}
    out = []
    for r in truth.itertuples():
        if r.image_id in defective or r.content_id != r.image_id or not isinstance(r.nifti_path, str):
            continue
        path = str(ds.nifti / r.nifti_path.replace(".nii.gz", "_label.nii.gz"))
        if path not in vols:
            vols[path] = np.asarray(nib.load(path).dataobj).transpose(2, 1, 0)  # (Z, H, W) label codes
        img = np.asarray(Image.open(ds.phe_sich / "images" / f"{r.image_id}.png").convert("L"))
        rim = np.asarray(Image.open(ds.phe_sich / "masks" / f"{r.image_id}.png").convert("L")) > 0
        boxes = [b for b in json.loads(r.boxes) if b[4] == "iph"]
        out.append((img, rim, boxes, vols[path][int(r.nifti_index)] == LABEL_MAP["iph"]))
    return out


def test_phantoms_have_iph_slices(phantom_slices):
    assert sum(t.any() for *_, t in phantom_slices) >= 3


def test_rim_derived_hematoma_matches_true_iph(phantom_slices):
    derived = [derive_hematoma_mask(img, rim=rim, region="rim") for img, rim, _, _ in phantom_slices]
    out = compare_masks(derived, [t for *_, t in phantom_slices])
    assert out["dice_global"] >= 0.9


def test_box_derived_hematoma_matches_true_iph(phantom_slices):
    derived = [derive_hematoma_mask(img, rim=rim, boxes=b, region="box") for img, rim, b, _ in phantom_slices]
    out = compare_masks(derived, [t for *_, t in phantom_slices])
    assert out["dice_global"] >= 0.9


def test_edema_rim_itself_is_not_the_hematoma(phantom_slices):
    # the point of the derivation: the PHE label and the hematoma barely overlap
    rims = [rim for _, rim, _, _ in phantom_slices]
    out = compare_masks(rims, [t for *_, t in phantom_slices])
    assert out["dice_global"] < 0.2
    for img, rim, _, _ in phantom_slices:
        assert not (derive_hematoma_mask(img, rim=rim) & rim).any()

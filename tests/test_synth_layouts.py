"""generate(): every layout reads back equal to the generated volume, truth tables agree, bytes are reproducible."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medsift.errors import ConfigError
from medsift.formats.voc import read_voc
from medsift.synth import LABEL_MAP, generate, read_truth_defects, read_truth_slices
from medsift.synth.testing import TINY, tiny_dataset
from synth_fixtures import ALL_SUBTYPES, clean_volume, expected_png, tiny


def _clean_ids() -> list[str]:
    ds = tiny()
    truth = read_truth_slices(ds.truth_slices)
    defects = read_truth_defects(ds.truth_defects)
    touched = set(defects["image_id"]) | set(defects["related_id"])
    return [i for i in truth["image_id"] if i not in touched and i == truth.set_index("image_id").loc[i, "content_id"]]


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    again = tiny_dataset(tmp_path / "again")
    assert _tree_digest(again.root) == _tree_digest(tiny().root)


def test_other_seed_gives_other_images(tmp_path):
    other = generate(tmp_path, n_patients=1, seed=5, size=64, slices=(4, 4), layouts=("phe-sich",), defects=False)
    mine = generate(tmp_path / "b", n_patients=1, seed=6, size=64, slices=(4, 4), layouts=("phe-sich",),
                    defects=False)
    assert (other.phe_sich / "images" / "0001_02.png").read_bytes() != (mine.phe_sich / "images" / "0001_02.png").read_bytes()


def test_dataset_paths_point_at_the_layouts():
    ds = tiny()
    assert ds.phe_sich == ds.root / "phe-sich" and ds.dicom == ds.root / "dicom"
    assert ds.nifti == ds.root / "nifti" and ds.folder_labels == ds.root / "folder" / "labels.csv"
    assert not list(ds.root.glob(".synth-staging-*"))


def test_truth_covers_every_subtype_and_patient():
    truth = read_truth_slices(tiny().truth_slices)
    assert sorted(truth["patient_id"].unique()) == ["0001", "0002", "0003"]
    for s in ALL_SUBTYPES:
        assert truth[f"label_{s}"].sum() > 0, s
    any_sub = truth[[f"label_{s}" for s in ALL_SUBTYPES]].max(axis=1)
    assert (truth["label_hemorrhage"] == any_sub).all()
    assert 0 < truth["label_hemorrhage"].mean() < 1


def test_slice_counts_follow_the_requested_range():
    truth = read_truth_slices(tiny().truth_slices)
    lo, hi = TINY["slices"]
    for pid, group in truth.groupby("patient_id"):
        n = len(clean_volume(pid)[0])
        assert lo <= n <= hi
        assert set(range(n)) <= set(group["slice_index"])


def test_phe_sich_images_are_brain_windowed_8bit():
    ds = tiny()
    for iid in _clean_ids()[:12]:
        with Image.open(ds.phe_sich / "images" / f"{iid}.png") as im:
            assert im.mode == "L" and im.size == (128, 128)
            assert np.array_equal(np.asarray(im), expected_png(iid))


def test_phe_sich_masks_are_0_255_edema():
    ds = tiny()
    ids = _clean_ids()
    for iid in ids:
        pid, s = iid.split("_")
        _, labels = clean_volume(pid)
        mask = np.asarray(Image.open(ds.phe_sich / "masks" / f"{iid}.png"))
        assert set(np.unique(mask).tolist()) <= {0, 255}
        assert np.array_equal(mask == 255, labels["label"][int(s)] == LABEL_MAP["edema"])
    assert any(np.asarray(Image.open(ds.phe_sich / "masks" / f"{i}.png")).any() for i in ids)


def test_voc_boxes_match_truth_and_cover_the_blood():
    ds = tiny()
    truth = read_truth_slices(ds.truth_slices).set_index("image_id")
    blood_codes = [LABEL_MAP[s] for s in ALL_SUBTYPES]
    n_boxes = 0
    for iid in _clean_ids():
        ann = read_voc(ds.phe_sich / "annotations" / f"{iid}.xml")
        assert ann.filename == f"{iid}.png" and (ann.width, ann.height) == (128, 128)
        want = truth.loc[iid, "boxes"]
        assert [b[:4] for b in ann.boxes] == [[float(v) for v in b[:4]] for b in want]
        assert all(b[4] == "hemorrhage" for b in ann.boxes)
        pid, s = iid.split("_")
        blood = np.isin(clean_volume(pid)[1]["label"][int(s)], blood_codes)
        covered = np.zeros_like(blood)
        for x1, y1, x2, y2, _ in ann.boxes:
            covered[int(y1):int(y2), int(x1):int(x2)] = True
        assert not (blood & ~covered).any(), iid
        assert bool(blood.any()) == bool(ann.boxes)
        n_boxes += len(ann.boxes)
    assert n_boxes > 0


def test_dicom_series_reads_back_as_the_hu_volume():
    import pydicom

    ds = tiny()
    hu, labels = clean_volume("0001")
    files = sorted((ds.dicom / "0001").rglob("*.dcm"))
    assert len(files) == hu.shape[0]
    dsets = [pydicom.dcmread(f) for f in files]
    order = np.argsort([float(d.ImagePositionPatient[2]) for d in dsets])
    vol = np.stack([dsets[i].pixel_array * float(dsets[i].RescaleSlope) + float(dsets[i].RescaleIntercept)
                    for i in order])
    assert np.abs(vol - hu).max() <= 1.0
    first = dsets[0]
    assert first.Modality == "CT" and first.PatientID == "0001"
    assert float(first.RescaleIntercept) == -1024.0 and float(first.RescaleSlope) == 1.0
    assert [float(v) for v in first.PixelSpacing] == pytest.approx(list(labels["spacing_mm"][1:]), abs=1e-5)
    assert float(first.SliceThickness) == labels["spacing_mm"][0]
    assert len({d.SeriesInstanceUID for d in dsets}) == 1 and len({d.SOPInstanceUID for d in dsets}) == len(dsets)
    assert files[0].parent.name == first.SeriesInstanceUID


def test_dicom_order_needs_the_position_not_names_or_instance_numbers():
    import pydicom

    files = sorted((tiny().dicom / "0002").rglob("*.dcm"))
    dsets = [pydicom.dcmread(f) for f in files]
    by_position = list(np.argsort([float(d.ImagePositionPatient[2]) for d in dsets]))
    by_instance = list(np.argsort([int(d.InstanceNumber) for d in dsets]))
    assert by_position != list(range(len(files)))
    assert by_position != by_instance


def test_nifti_reads_back_as_volume_and_labels():
    import nibabel as nib

    ds = tiny()
    hu, labels = clean_volume("0003")
    img = nib.load(ds.nifti / "0003.nii.gz")
    lab = nib.load(ds.nifti / "0003_label.nii.gz")
    data = np.asarray(img.dataobj)
    assert data.shape == (128, 128, hu.shape[0])
    for k in (0, hu.shape[0] // 2):
        assert np.array_equal(data[:, :, k].T, hu[k])
    assert np.array_equal(np.asarray(lab.dataobj).transpose(2, 1, 0), labels["label"])
    assert np.allclose(img.header.get_zooms(), (labels["spacing_mm"][2], labels["spacing_mm"][1], labels["spacing_mm"][0]))


def test_folder_labels_are_rsna_like_and_match_truth():
    ds = tiny()
    table = pd.read_csv(ds.folder_labels)
    for col in ("filename", "any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural",
                "patient_id", "study_instance_uid", "series_instance_uid", "image_position", "pixel_spacing",
                "window_center", "window_width", "rescale_intercept", "rescale_slope"):
        assert col in table.columns, col
    truth = read_truth_slices(ds.truth_slices)
    truth = truth[truth["folder_filename"] != ""]
    assert len(table) == len(truth)
    # label_* describe the PHE-SICH file; swapped (out_of_sequence) files show another slice's content
    truth = truth[truth["content_id"] == truth["image_id"]]
    merged = table.merge(truth, left_on="filename", right_on="folder_filename", suffixes=("", "_truth"))
    names = {"epidural": "edh", "intraparenchymal": "iph", "intraventricular": "ivh", "subarachnoid": "sah",
             "subdural": "sdh"}
    for rsna, short in names.items():
        assert (merged[rsna] == merged[f"label_{short}"]).all(), rsna
    assert (merged["any"] == merged["label_hemorrhage"]).all()
    assert all((ds.folder / "images" / f).is_file() for f in table["filename"])
    assert table["image_position"].iloc[0].startswith("['")


def test_layouts_can_be_chosen(tmp_path):
    ds = generate(tmp_path, n_patients=1, size=64, slices=(3, 3), layouts=("dicom",), defects=True)
    assert ds.phe_sich is None and ds.nifti is None and ds.folder is None and ds.folder_labels is None
    assert len(list(ds.dicom.rglob("*.dcm"))) == 3
    assert len(read_truth_defects(ds.truth_defects)) == 0  # defects live in the PHE-SICH layout only
    assert len(read_truth_slices(ds.truth_slices)) == 3


def test_unknown_layout_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown layout 'coco'"):
        generate(tmp_path, n_patients=1, size=64, slices=(3, 3), layouts=("coco",))


def test_bad_slice_range_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="slices"):
        generate(tmp_path, n_patients=1, size=64, slices=(5, 3))

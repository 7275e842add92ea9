"""Ingest of each layout on tiny hand-built folders: ids, pairing, labels, HU fields, slice expansion."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import ingest_fixtures as fx
from medsift.formats.layouts import LAYOUTS
from medsift.ingest import ingest, read_summary
from medsift.io import load_mask, load_slice


@pytest.fixture(scope="session")
def phe(tmp_path_factory):
    root = tmp_path_factory.mktemp("phe")
    src = fx.make_phe(root)
    df = ingest(src, layout="phe-sich", workspace=root / "ws", source="phe", n_jobs=2)
    return src, root / "ws", df.set_index("image_id")


def test_registry_lists_the_four_layouts():
    assert LAYOUTS.names() == ["dicom", "folder", "nifti", "phe-sich"]


def test_phe_ids_patients_and_slices(phe):
    _, _, df = phe
    assert sorted(df.index) == ["0001_00", "0001_01", "0002_00"]
    assert df.loc["0001_01", "patient_id"] == "0001" and df.loc["0001_01", "slice_index"] == 1
    assert df.loc["0002_00", "patient_id"] == "0002"


def test_phe_label_from_boxes_of_paired_annotation(phe):
    _, _, df = phe
    assert df.loc["0001_00", "label_hemorrhage"] == 1
    assert df.loc["0001_00", "boxes"] == [[4.0, 4.0, 8.0, 8.0, "a"]]
    assert df.loc["0001_01", "label_hemorrhage"] == 0
    assert pd.isna(df.loc["0002_00", "label_hemorrhage"])


def test_phe_format_by_content_and_voc_filename(phe):
    _, _, df = phe
    assert df.loc["0002_00", "format"] == "jpg"
    assert df.loc["0001_00", "format"] == "png"
    assert df.loc["0001_00", "voc_filename"] == "0001_00.jpg"
    assert (df["status"] == "ok").all()


def test_phe_every_annotation_accounted_for(phe):
    _, ws, df = phe
    unpaired = pd.read_csv(ws / "ingest" / "phe" / "unpaired_annotations.csv")
    summary = read_summary(ws, "phe")
    assert summary["annotations_total"] == 4
    assert summary["annotations_paired"] + summary["annotations_unpaired"] == 4
    by_file = {p.split("/")[-1]: r for p, r in zip(unpaired["annotation_path"], unpaired.to_dict("records"))}
    assert by_file["0003_00.xml"]["problem"] == "no_image"
    assert by_file["0003_00.xml"]["detail"] == "no image for 0003_00"
    assert by_file["2_00.xml"]["problem"] == "near_miss"
    assert by_file["2_00.xml"]["candidate_image_id"] == "0002_00"
    assert by_file["2_00.xml"]["detail"] == "name 2_00 nearly matches 0002_00"


def test_phe_masks_load_with_image_size(phe):
    _, _, df = phe
    mask = load_mask(df.loc["0001_00"])
    assert mask.shape == (32, 32) and mask.sum() == 16
    assert load_mask(df.loc["0002_00"]) is None
    assert load_slice(df.loc["0001_00"])[5, 5] == 200


def test_phe_content_hash_is_sha256_of_file(phe):
    import hashlib

    src, _, df = phe
    expected = hashlib.sha256((src / "images" / "0001_01.png").read_bytes()).hexdigest()
    assert df.loc["0001_01", "content_hash"] == expected


def test_folder_with_labels_csv_maps_labels_and_metadata(tmp_path):
    src, labels = fx.make_rsna_like(tmp_path)
    df = ingest(src, layout="folder", workspace=tmp_path / "ws", labels=labels, n_jobs=1).set_index("image_id")
    assert sorted(df.index) == ["ID_a", "ID_b", "ID_c"]
    a = df.loc["ID_a"]
    assert (a["label_hemorrhage"], a["label_iph"], a["label_edh"], a["label_sdh"]) == (1, 1, 0, 0)
    assert (a["patient_id"], a["study_id"], a["series_id"]) == ("ID_p1", "ST1", "SE1")
    assert a["spacing_mm"] == 0.48828125 and a["window_center"] == 36 and a["window_width"] == 80
    assert a["hu_intercept"] == -1024 and not a["has_hu"] and a["label_source"] == "csv"
    assert df.loc["ID_c", "label_edh"] == 1 and df.loc["ID_c", "window_center"] == 35


def test_folder_labels_csv_orders_slices_by_position(tmp_path):
    src, labels = fx.make_rsna_like(tmp_path)
    df = ingest(src, layout="folder", workspace=tmp_path / "ws", labels=labels, n_jobs=1).set_index("image_id")
    # series SE1: ID_b at z=25.5, ID_a at z=30.5
    assert (df.loc["ID_b", "slice_index"], df.loc["ID_a", "slice_index"]) == (0, 1)


def test_folder_labels_csv_row_without_file_is_unpaired(tmp_path):
    src, labels = fx.make_rsna_like(tmp_path)
    ingest(src, layout="folder", workspace=tmp_path / "ws", labels=labels, n_jobs=1)
    unpaired = pd.read_csv(tmp_path / "ws" / "ingest" / "default" / "unpaired_annotations.csv")
    assert list(unpaired["kind"]) == ["label_row"]
    assert "ID_missing.png" in unpaired["detail"].iloc[0]


def test_folder_class_folders_give_labels(tmp_path):
    src = tmp_path / "cls"
    fx.write(src / "normal" / "n1.png", fx.png_bytes(fx.gray()))
    fx.write(src / "hemorrhage" / "h1.png", fx.png_bytes(fx.gray()))
    fx.write(src / "subdural" / "s1.png", fx.png_bytes(fx.gray()))
    df = ingest(src, layout="folder", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    assert df.loc["n1", "label_hemorrhage"] == 0 and df.loc["n1", "class_name"] == "normal"
    assert df.loc["h1", "label_hemorrhage"] == 1
    assert df.loc["s1", "label_sdh"] == 1 and df.loc["s1", "label_hemorrhage"] == 1


def test_folder_images_masks_annotations(tmp_path):
    src = tmp_path / "paired"
    fx.write(src / "images" / "p1_3.jpg", fx.jpg_bytes(fx.gray()))
    fx.write(src / "masks" / "p1_3.png", fx.png_bytes(fx.gray()))
    fx.write(src / "annotations" / "p1_3.xml", fx.voc("p1_3", [[1, 1, 3, 3, "a"]]))
    df = ingest(src, layout="folder", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    row = df.loc["p1_3"]
    assert row["patient_id"] == "p1" and row["format"] == "jpg" and row["label_hemorrhage"] == 1
    assert row["mask_path"].endswith("p1_3.png")


def test_dicom_series_sorted_by_position_with_hu_fields(tmp_path):
    src = fx.make_dicom_tree(tmp_path)
    df = ingest(src, layout="dicom", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    assert len(df) == 3  # README.md skipped
    assert [df.loc[n, "slice_index"] for n in ("s_b", "s_c", "s_a")] == [0, 1, 2]
    row = df.loc["s_c"]
    assert (row["patient_id"], row["study_id"], row["series_id"]) == ("PAT1", "1.2.3", "1.2.3.4")
    assert (row["hu_slope"], row["hu_intercept"], row["window_center"], row["window_width"]) == (2, -1024, 40, 80)
    assert row["spacing_mm"] == 0.5 and row["slice_thickness_mm"] == 2.5 and row["has_hu"]
    # slice k=1 stores 601 at [1, 2]: HU = 601 * 2 - 1024
    assert load_slice(row)[1, 2] == 178.0


def test_nifti_volume_expands_to_one_row_per_slice(tmp_path):
    src = fx.make_nifti(tmp_path)
    df = ingest(src, layout="nifti", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    assert list(df.index) == [f"case1_{k:03d}" for k in range(5)]
    assert list(df["volume_index"]) == [0, 1, 2, 3, 4]
    assert list(df["label_hemorrhage"]) == [0, 1, 0, 1, 0]
    assert json.loads(df["mask_labels"].iloc[0]) == [1, 2]
    row = df.loc["case1_002"]
    assert (row["width"], row["height"], row["spacing_mm"], row["slice_thickness_mm"]) == (4, 3, 0.8, 3.0)
    assert row["patient_id"] == "case1" and row["has_hu"]
    # voxel (x=1, y=0, z=2) stores 1*15 + 0*5 + 2 = 17 -> 17 * 2 - 1000
    assert load_slice(row)[0, 1] == -966.0
    assert df["content_hash"].nunique() == 5  # per-slice hashes, not the file's


def test_clinical_sheet_joins_on_normalised_patient_id(tmp_path):
    src = fx.make_phe(tmp_path)
    sheet = pd.DataFrame({"Patient ID": ["1", "2", "9"], "Age": ["71", "55", "40"], "GCS score": ["14", "9", "3"]})
    path = tmp_path / "clinical.xlsx"
    sheet.to_excel(path, index=False)
    df = ingest(src, layout="phe-sich", workspace=tmp_path / "ws", clinical=path, n_jobs=1).set_index("image_id")
    assert df.loc["0001_01", "clinical_age"] == "71" and df.loc["0002_00", "clinical_gcs_score"] == "9"
    report = read_summary(tmp_path / "ws")["clinical"]
    assert report["matched_patients"] == 2 and report["unmatched_sheet_ids"] == ["9"]


def test_second_source_appends_and_reingest_replaces_only_its_rows(tmp_path):
    phe_src = fx.make_phe(tmp_path)
    rsna_src, labels = fx.make_rsna_like(tmp_path)
    ws = tmp_path / "ws"
    ingest(phe_src, layout="phe-sich", workspace=ws, source="phe", n_jobs=1)
    ingest(rsna_src, layout="folder", workspace=ws, source="rsna", labels=labels, n_jobs=1)
    (phe_src / "images" / "0001_01.png").unlink()
    df = ingest(phe_src, layout="phe-sich", workspace=ws, source="phe", n_jobs=1)
    assert df.groupby("source").size().to_dict() == {"phe": 2, "rsna": 3}
    assert "0001_01" not in set(df["image_id"])
    assert df.loc[df["source"] == "rsna", "label_hemorrhage"].tolist() == [1, 0, 1]


def test_clashing_ids_across_sources_are_prefixed_with_source(tmp_path):
    src = fx.make_phe(tmp_path)
    ws = tmp_path / "ws"
    ingest(src, layout="phe-sich", workspace=ws, source="siteA", n_jobs=1)
    df = ingest(src, layout="phe-sich", workspace=ws, source="siteB", n_jobs=1)
    assert set(df.loc[df["source"] == "siteB", "image_id"]) == {"siteB__0001_00", "siteB__0001_01",
                                                                "siteB__0002_00"}
    assert set(df.loc[df["source"] == "siteA", "image_id"]) == {"0001_00", "0001_01", "0002_00"}
    assert read_summary(ws, "siteB")["ids_prefixed_with_source"] is True


def test_nifti_nnunet_folders_pair_labels_without_channel_suffix(tmp_path):
    import shutil

    flat = fx.make_nifti(tmp_path)
    src = tmp_path / "nnunet"
    (src / "imagesTr").mkdir(parents=True)
    (src / "labelsTr").mkdir()
    shutil.copy(flat / "case1.nii.gz", src / "imagesTr" / "case1_0000.nii.gz")
    shutil.copy(flat / "case1_seg.nii.gz", src / "labelsTr" / "case1.nii.gz")
    shutil.copy(flat / "case1_seg.nii.gz", src / "labelsTr" / "orphan.nii.gz")
    df = ingest(src, layout="nifti", workspace=tmp_path / "ws", n_jobs=2).set_index("image_id")
    assert list(df.index) == [f"case1_{k:03d}" for k in range(5)]
    assert list(df["label_hemorrhage"]) == [0, 1, 0, 1, 0]
    unpaired = pd.read_csv(tmp_path / "ws" / "ingest" / "default" / "unpaired_annotations.csv")
    assert unpaired["annotation_path"].str.endswith("orphan.nii.gz").tolist() == [True]

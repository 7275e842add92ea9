"""Ingest of every layout written by the phantom generator, checked against its ground truth."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from medsift.ingest import ingest, read_summary
from medsift.io import load_mask, load_slice


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    from medsift.synth.testing import tiny_dataset

    return tiny_dataset(tmp_path_factory.mktemp("synth_ingest"))


@pytest.fixture(scope="session")
def truth(synth):
    slices = pd.read_csv(synth.truth_slices, dtype={"image_id": str, "patient_id": str, "content_id": str})
    defects = pd.read_csv(synth.truth_defects, dtype={"image_id": str, "related_id": str})
    return slices.set_index("image_id"), defects


@pytest.fixture(scope="session")
def ws(synth, tmp_path_factory):
    """One workspace holding all four synthetic layouts as four sources."""
    root = tmp_path_factory.mktemp("synth_ws") / "ws"
    ingest(synth.phe_sich, layout="phe-sich", workspace=root, source="phe", n_jobs=1)
    ingest(synth.dicom, layout="dicom", workspace=root, source="dicom", n_jobs=1)
    ingest(synth.nifti, layout="nifti", workspace=root, source="nifti", n_jobs=1)
    df = ingest(synth.folder, layout="folder", workspace=root, source="folder", labels=synth.folder_labels,
                n_jobs=1)
    return root, df


def _truth_by_volume_slice(slices):
    """Truth labels of each clean slice keyed by (NIfTI file name, slice index): truth rows describe their
    *content* (a swapped PHE image shows another slice), so key by ``content_id`` = ``PPPP_SS``."""
    by_content = slices.reset_index().drop_duplicates("content_id")
    patient, index = by_content["content_id"].str.split("_").str[0], by_content["content_id"].str.split("_").str[1]
    return by_content.set_index([patient + ".nii.gz", index.astype(int)])


def _source(df, name):
    return df[df["source"] == name].set_index("image_id")


def test_phe_rows_are_the_truth_images(ws, truth):
    _, df = ws
    slices, _ = truth
    phe = _source(df, "phe")
    assert sorted(phe.index) == sorted(slices.index)
    assert phe["patient_id"].nunique() == slices["patient_id"].nunique()


def test_phe_labels_from_boxes_match_truth(ws, truth):
    _, df = ws
    slices, _ = truth
    phe = _source(df, "phe")
    ok = phe[(phe["status"] == "ok") & phe["label_hemorrhage"].notna()]  # a misnamed annotation leaves NA
    assert len(ok) >= len(phe) - 3
    expected = slices.loc[ok.index, "n_boxes"].gt(0).astype(int)
    assert (ok["label_hemorrhage"].astype(int) == expected).all()


def test_phe_injected_file_defects_are_recorded(ws, truth):
    root, df = ws
    _, defects = truth
    phe = _source(df, "phe")
    by_kind = {d: list(g["image_id"]) for d, g in defects.groupby("defect")}
    for iid in by_kind.get("corrupt_file", []):
        assert phe.loc[iid, "status"] == "unreadable"
    for iid in by_kind.get("wrong_extension", []):
        assert phe.loc[iid, "format"] == "jpg" and phe.loc[iid, "image_path"].endswith(".png")
    unpaired = pd.read_csv(root / "ingest" / "phe" / "unpaired_annotations.csv", dtype=str)
    problems = dict(zip(unpaired["annotation_path"].str.extract(r"([^/]+)\.xml$")[0], unpaired["problem"]))
    for iid in by_kind.get("orphan_annotation", []):
        assert problems[iid] == "no_image"
    for iid in by_kind.get("misnamed_annotation", []):
        assert "near_miss" in problems.values()
        assert iid in set(unpaired["candidate_image_id"])


def test_phe_every_annotation_accounted_for(ws, synth):
    root, _ = ws
    summary = read_summary(root, "phe")
    n_xml = len(list((synth.phe_sich / "annotations").iterdir()))
    assert summary["annotations_paired"] + summary["annotations_unpaired"] == summary["annotations_total"] == n_xml


def test_dicom_rows_are_hu_of_the_truth_slices(ws, truth):
    _, df = ws
    slices, _ = truth
    dcm = _source(df, "dicom")
    assert len(dcm) == slices["dicom_path"].notna().sum()  # duplicates injected in PHE have no DICOM
    assert (dcm["status"] == "ok").all() and dcm["has_hu"].all()
    hu = load_slice(dcm.iloc[0])
    assert hu.min() < -900  # air around the head is about -1000 HU


def test_dicom_series_order_matches_truth_slice_index(ws, truth, synth):
    _, df = ws
    slices, _ = truth
    dcm = _source(df, "dicom")
    clean = slices[slices["content_id"] == slices.index].dropna(subset=["dicom_path"])
    expected = {str(synth.dicom / p): int(k) for p, k in zip(clean["dicom_path"], clean["slice_index"])}
    got = {p: int(k) for p, k in zip(dcm["image_path"], dcm["slice_index"]) if p in expected}
    assert len(got) == len(expected) and got == expected


def test_nifti_without_label_names_counts_every_label(ws, truth):
    _, df = ws
    slices, _ = truth
    nii = _source(df, "nifti")
    by_voxel = _truth_by_volume_slice(slices)
    assert len(nii) == len(by_voxel)
    for _, row in nii.iterrows():
        t = by_voxel.loc[(row["image_path"].split("/")[-1], int(row["volume_index"]))]
        assert row["label_hemorrhage"] == int(bool(t["label_hemorrhage"]) or t["edema_pixels"] > 0)


def test_nifti_dataset_json_names_keep_edema_out_of_hemorrhage(synth, truth, tmp_path):
    from medsift.synth import LABEL_MAP

    slices, _ = truth
    src = tmp_path / "nifti_named"
    shutil.copytree(synth.nifti, src)
    (src / "dataset.json").write_text(json.dumps({"labels": LABEL_MAP}))
    nii = ingest(src, layout="nifti", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    by_voxel = _truth_by_volume_slice(slices)
    for _, row in nii.iterrows():
        t = by_voxel.loc[(row["image_path"].split("/")[-1], int(row["volume_index"]))]
        assert (row["label_hemorrhage"], row["label_sdh"], row["label_iph"]) == \
            (t["label_hemorrhage"], t["label_sdh"], t["label_iph"])


def test_nifti_mask_matches_slice_shape(ws):
    _, df = ws
    nii = _source(df, "nifti")
    row = nii[nii["label_hemorrhage"] == 1].iloc[0]
    mask = load_mask(row)
    assert mask.shape == load_slice(row).shape and mask.any()


def test_folder_labels_equal_the_csv(ws, synth):
    _, df = ws
    folder = _source(df, "folder")
    csv = pd.read_csv(synth.folder_labels, dtype={"filename": str}).set_index("filename")
    got = folder.set_index(folder["image_path"].str.extract(r"([^/]+)$")[0])
    for column, label in (("any", "label_hemorrhage"), ("subdural", "label_sdh"), ("epidural", "label_edh")):
        assert np.array_equal(got.loc[csv.index, label].astype(int).to_numpy(), csv[column].to_numpy())
    assert set(folder["patient_id"]) == set(csv["patient_id"])


def test_four_sources_live_in_one_workspace(ws):
    _, df = ws
    assert set(df["source"]) == {"phe", "dicom", "nifti", "folder"}
    assert df["image_id"].is_unique

"""Ingest of the real data in ../shared/data (skipped when absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from medsift.ingest import ingest, read_summary
from medsift.io import load_slice

pytestmark = pytest.mark.real_data

RSNA_LABELS = {"any": "label_hemorrhage", "epidural": "label_edh", "intraparenchymal": "label_iph",
               "intraventricular": "label_ivh", "subarachnoid": "label_sah", "subdural": "label_sdh"}


@pytest.fixture(scope="module")
def rsna(rsna_subtypes_dir, tmp_path_factory):
    ws = tmp_path_factory.mktemp("rsna") / "ws"
    df = ingest(rsna_subtypes_dir, layout="folder", workspace=ws, labels=rsna_subtypes_dir / "labels.csv",
                source="rsna")
    return df, pd.read_csv(rsna_subtypes_dir / "labels.csv", dtype={"filename": str, "patient_id": str})


def test_rsna_rows_and_patients(rsna):
    df, _ = rsna
    assert len(df) == 1800 and df["patient_id"].nunique() == 1147
    assert (df["status"] == "ok").all()


def test_rsna_labels_and_patients_equal_the_csv(rsna):
    df, csv = rsna
    got = df.assign(filename=df["image_path"].str.extract(r"([^/]+)$")[0]).set_index("filename")
    csv = csv.set_index("filename")
    assert (got.loc[csv.index, "patient_id"] == csv["patient_id"]).all()
    for column, label in RSNA_LABELS.items():
        assert np.array_equal(got.loc[csv.index, label].astype(int).to_numpy(), csv[column].astype(int).to_numpy())


def test_rsna_metadata_from_csv(rsna):
    df, csv = rsna
    got = df.assign(filename=df["image_path"].str.extract(r"([^/]+)$")[0]).set_index("filename")
    spacing = csv.set_index("filename")["pixel_spacing"].str.extract(r"([0-9.]+)")[0].astype(float)
    assert np.allclose(got.loc[spacing.index, "spacing_mm"].astype(float), spacing)
    assert df["window_width"].notna().all() and (~df["has_hu"]).all()


@pytest.fixture(scope="module")
def rsna_dicom(rsna_dicom_dir, tmp_path_factory):
    return ingest(rsna_dicom_dir, layout="dicom", workspace=tmp_path_factory.mktemp("dcm") / "ws", n_jobs=2)


def test_rsna_dicom_rows_ids_and_status(rsna_dicom):
    assert len(rsna_dicom) == 40 and (rsna_dicom["status"] == "ok").all()
    assert rsna_dicom["patient_id"].str.startswith("ID_").all()


def test_rsna_dicom_hu_is_stored_times_slope_plus_intercept(rsna_dicom):
    import pydicom

    for _, row in rsna_dicom.iloc[::8].iterrows():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(row["image_path"])
            stored = ds.pixel_array
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        hu = load_slice(row)
        assert row["patient_id"] == str(ds.PatientID)
        assert (row["hu_slope"], row["hu_intercept"]) == (slope, intercept)
        for y, x in ((256, 256), (100, 300), (0, 0)):
            assert hu[y, x] == stored[y, x] * slope + intercept


def test_phe_sich_counts_and_every_annotation(phe_sich_dir, tmp_path):
    ws = tmp_path / "ws"
    df = ingest(phe_sich_dir, layout="phe-sich", workspace=ws, source="phe", n_jobs=2)
    summary = read_summary(ws, "phe")
    assert len(df) == 2395 and df["patient_id"].nunique() == 83
    assert summary["annotations_total"] == 2428
    assert summary["annotations_paired"] + summary["annotations_unpaired"] == 2428
    unpaired = pd.read_csv(ws / "ingest" / "phe" / "unpaired_annotations.csv")
    assert unpaired["annotation_path"].str.contains("0071_05").any()
    assert summary["seconds"] < 60

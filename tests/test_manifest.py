"""Manifest schema, validation messages and lossless Parquet/CSV round trips."""

from __future__ import annotations

import pandas as pd
import pytest

from medsift.errors import ManifestError
from medsift.manifest import new_manifest, read_manifest, validate, write_manifest
from medsift.workspace import Workspace


def _rows():
    return [
        {"image_id": "0001_00", "patient_id": "0001", "image_path": "/d/0001_00.png", "format": "png",
         "boxes": [[10.0, 20.0, 30.0, 40.0, "hemorrhage"]], "label_hemorrhage": 1},
        {"image_id": "0001_01", "patient_id": "0001", "image_path": "/d/0001_01.png", "format": "png",
         "label_hemorrhage": 0},
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip_keeps_boxes_labels_and_types(tmp_path, suffix):
    df = new_manifest(_rows())
    back = read_manifest(write_manifest(df, tmp_path / f"m{suffix}"))
    assert back["boxes"].tolist() == [[[10.0, 20.0, 30.0, 40.0, "hemorrhage"]], []]
    assert back["label_hemorrhage"].tolist() == [1, 0]
    assert back["excluded"].tolist() == [False, False]
    assert list(back.columns) == list(df.columns)


def test_validation_names_the_bad_column_and_row():
    df = new_manifest(_rows())
    df.loc[1, "patient_id"] = pd.NA
    with pytest.raises(ManifestError, match=r"'patient_id'.*row 1.*0001_01"):
        validate(df)


def test_label_must_be_binary():
    rows = _rows()
    rows[0]["label_hemorrhage"] = 2
    with pytest.raises(ManifestError, match="label_hemorrhage.*0, 1 or empty"):
        new_manifest(rows)


def test_duplicate_image_ids_are_rejected():
    rows = _rows()
    rows[1]["image_id"] = "0001_00"
    with pytest.raises(ManifestError, match="unique"):
        new_manifest(rows)


def test_box_with_nan_is_rejected():
    rows = _rows()
    rows[0]["boxes"] = [[float("nan"), 0, 1, 1, "x"]]
    with pytest.raises(ManifestError, match="finite"):
        new_manifest(rows)


def test_workspace_versions_are_immutable_and_logged(tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    df = new_manifest(_rows())
    assert ws.write(df, reason="ingest") == 1
    df2 = df.copy()
    df2.loc[0, "excluded"] = True
    assert ws.write(df2, reason="clean") == 2
    assert ws.read_version(1)["excluded"].tolist() == [False, False]
    assert ws.read()["excluded"].tolist() == [True, False]
    assert [v["reason"] for v in ws.versions()] == ["ingest", "clean"]

"""`medsift ingest` through typer's CliRunner: summary table, clear errors for wrong use."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import ingest_fixtures as fx
from medsift.cli import app
from medsift.workspace import Workspace

runner = CliRunner()


@pytest.fixture(scope="module")
def bad_src(tmp_path_factory):
    return fx.make_phe_bad(tmp_path_factory.mktemp("cli"))


def test_cli_ingest_writes_manifest_and_prints_summary(bad_src, tmp_path):
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["ingest", str(bad_src), "--layout", "phe-sich", "--workspace", str(ws),
                                 "--source", "site1", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "status mask_size_mismatch" in result.output and "rows with problems (7)" in result.output
    df = Workspace.at(ws).read()
    assert len(df) == 8 and set(df["source"]) == {"site1"}


def test_cli_unknown_layout_lists_valid_layouts(bad_src, tmp_path):
    result = runner.invoke(app, ["ingest", str(bad_src), "--layout", "coco", "--workspace", str(tmp_path / "w")])
    assert result.exit_code != 0
    assert "expected auto or one of: dicom, folder, nifti, phe-sich" in str(result.exception)


def test_cli_missing_workspace_is_explained(bad_src):
    result = runner.invoke(app, ["ingest", str(bad_src), "--layout", "phe-sich"])
    assert result.exit_code != 0
    assert "missing --workspace" in str(result.exception)


def test_cli_labels_for_phe_layout_says_what_to_use(bad_src, tmp_path):
    labels = fx.write(tmp_path / "l.csv", b"filename,any\n")
    result = runner.invoke(app, ["ingest", str(bad_src), "--layout", "phe-sich", "--workspace",
                                 str(tmp_path / "w"), "--labels", str(labels)])
    assert result.exit_code != 0
    assert "Use --layout folder" in str(result.exception)


def test_unpaired_side_files_of_one_patient_read_as_one_line():
    import pandas as pd

    from medsift.commands.ingest import group_side_files

    recs = [{"annotation_path": f"/src/annotations/0070_{k:02d}.xml", "problem": "no_image",
             "detail": f"no image for 0070_{k:02d}"} for k in reversed(range(33))]
    recs += [{"annotation_path": "/src/annotations/0012_04.xml", "problem": "no_image", "detail": "no image for 0012_04"},
             {"annotation_path": "/src/annotations/0070_40.xml", "problem": "bad_xml", "detail": "not XML"},
             {"annotation_path": "/src/other/0070_00.xml", "problem": "no_image", "detail": "no image for 0070_00"}]
    rows = group_side_files(pd.DataFrame(recs))
    assert rows[0] == ("0070_00.xml … 0070_32.xml (33 files)", "no_image",
                       "no image for 0070_00 (and 32 more of 0070_*)")
    assert ("0012_04.xml", "no_image", "no image for 0012_04") in rows
    assert ("0070_40.xml", "bad_xml", "not XML") in rows           # another problem: its own row
    assert ("0070_00.xml", "no_image", "no image for 0070_00") in rows  # another folder: its own row
    assert len(rows) == 4

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

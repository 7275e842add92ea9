"""`medsift synth`: writes the chosen layouts and prints the summary tables."""

from __future__ import annotations

from typer.testing import CliRunner

from medsift.cli import app
from medsift.errors import ConfigError


def test_synth_command_writes_layouts_and_summary(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--patients", "2", "--out", str(tmp_path), "--size", "64",
                                      "--min-slices", "5", "--max-slices", "5", "--layouts", "phe-sich,dicom",
                                      "--no-defects", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "lesions per subtype" in result.output and "no defects injected" in result.output
    assert len(list((tmp_path / "phe-sich" / "images").glob("*.png"))) == 10
    assert len(list((tmp_path / "dicom").rglob("*.dcm"))) == 10
    assert not (tmp_path / "nifti").exists() and not (tmp_path / "folder").exists()


def test_synth_command_refuses_unknown_layout(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--patients", "1", "--out", str(tmp_path), "--layouts", "coco"])
    assert isinstance(result.exception, ConfigError)
    assert "coco" in str(result.exception)

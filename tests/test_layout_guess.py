"""`--layout auto`: the layout of a source folder guessed from names and first bytes, with its reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import ingest_fixtures as fx
import synth_fixtures as sfx
from medsift.cli import app
from medsift.errors import LayoutError
from medsift.formats.layouts.guess import guess_layout
from medsift.workspace import Workspace


@pytest.mark.parametrize("layout", ["phe-sich", "dicom", "nifti", "folder"])
def test_each_phantom_layout_is_recognised(layout):
    """The phantoms are written with their defects (misnamed, mis-typed, unreadable files) and still guessed."""
    ds = sfx.tiny()
    src = {"phe-sich": ds.phe_sich, "dicom": ds.dicom, "nifti": ds.nifti, "folder": ds.folder}[layout]
    guess = guess_layout(src)
    assert guess.layout == layout, guess.reason


def test_dicom_is_told_by_content_not_by_name(tmp_path):
    dcm = sorted(sfx.tiny().dicom.rglob("*.dcm"))[:3]
    for k, path in enumerate(dcm):
        (tmp_path / f"slice{k}").write_bytes(path.read_bytes())  # no extension at all
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "scout.png")
    guess = guess_layout(tmp_path)
    assert guess.layout == "dicom" and "3 of 4" in guess.reason


def test_png_majority_with_a_labels_csv_is_a_folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):  # PHE-SICH-like names, but a labels CSV only suits the folder layout
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / f"000{k}_01.png")
    assert guess_layout(tmp_path).layout == "phe-sich"
    labels = fx.write(tmp_path / "labels.csv", b"filename,any\n0000_01.png,1\n")
    guess = guess_layout(tmp_path, labels=labels)
    assert guess.layout == "folder" and "labels CSV" in guess.reason


def test_a_folder_without_images_is_refused(tmp_path):
    (tmp_path / "README.md").write_text("nothing here")
    with pytest.raises(LayoutError, match="no image files"):
        guess_layout(tmp_path)
    with pytest.raises(LayoutError, match="does not exist"):
        guess_layout(tmp_path / "missing")


def test_cli_without_layout_guesses_and_says_so(tmp_path):
    src = fx.make_phe_bad(tmp_path / "src")
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["ingest", str(src), "--workspace", str(ws), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "layout phe-sich (guessed:" in result.output
    assert len(Workspace.at(ws).read()) == 8
    summary = (ws / "ingest" / "default" / "summary.json").read_text()
    assert '"layout": "phe-sich"' in summary and "PPPP_SS" in summary

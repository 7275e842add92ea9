"""`medsift export` verb: counts printed, unknown target and bad choices fail with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medsift.cli import app
from medsift.manifest import new_manifest
from medsift.workspace import Workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    src = tmp_path_factory.mktemp("cli_src")
    rows = []
    for k, split in enumerate(["train", "train", "val"]):
        path = src / f"s{k}.png"
        Image.fromarray(np.full((8, 10), 10 * k, np.uint8)).save(path)
        rows.append({"image_id": f"s{k}", "patient_id": f"p{k}", "image_path": str(path), "format": "png",
                     "width": 10, "height": 8, "boxes": [[1.0, 1.0, 5.0, 4.0, "hemorrhage"]], "split": split,
                     "excluded": False, "status": "ok"})
    ws = tmp_path_factory.mktemp("cli_ws")
    Workspace.at(ws).write(new_manifest(rows), reason="test")
    return ws


def test_export_prints_counts(workspace, tmp_path):
    result = CliRunner().invoke(app, ["export", str(workspace), "--to", "yolo", "--out", str(tmp_path / "y")])
    assert result.exit_code == 0, result.output
    assert "exported 3 images (train 2, val 1) to yolo" in result.output
    assert "boxes 3, masks 0" in result.output
    assert (tmp_path / "y" / "labels" / "val" / "s2.txt").read_text() == "0 0.300000 0.312500 0.400000 0.375000\n"


def test_unknown_target_lists_valid_ones(workspace, tmp_path):
    result = CliRunner().invoke(app, ["export", str(workspace), "--to", "cvat", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "valid: coco, monai, nnunet, voc, yolo" in str(result.exception)


def test_bad_image_format_choice_lists_valid_ones(workspace, tmp_path):
    result = CliRunner().invoke(app, ["export", str(workspace), "--to", "monai", "--out", str(tmp_path / "o"),
                                      "--image-format", "tiff"])
    assert "valid: auto, png, nifti, jpg" in str(result.exception)


def test_refuses_the_workspace_itself(workspace):
    result = CliRunner().invoke(app, ["export", str(workspace), "--to", "coco", "--out", str(workspace)])
    assert "is (or contains) the workspace" in str(result.exception)

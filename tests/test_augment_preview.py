"""`medsift augment-preview WS`: a grid PNG with mask contours (red) and boxes (yellow) drawn."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from medsift.manifest import new_manifest
from medsift.workspace import Workspace


def _workspace(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for k in range(3):
        img = np.zeros((64, 64), np.uint8)
        img[8:56, 8:56] = 100
        img[20:40, 24:44] = 200
        mask = np.zeros((64, 64), np.uint8)
        mask[20:40, 24:44] = 255
        Image.fromarray(img).save(src / f"{k}.png")
        Image.fromarray(mask).save(src / f"{k}_m.png")
        rows.append({"image_id": f"p{k}_0", "patient_id": f"p{k}", "image_path": str(src / f"{k}.png"),
                     "mask_path": str(src / f"{k}_m.png"), "format": "png", "width": 64, "height": 64,
                     "has_hu": False, "boxes": [[24.0, 20.0, 44.0, 40.0, "a"]], "label_hemorrhage": 1})
    ws = Workspace.at(tmp_path / "ws")
    ws.write(new_manifest(rows), reason="ingest")
    return ws


def _app():
    import typer

    from medsift.commands import augment_preview

    app = typer.Typer()
    augment_preview.register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_preview_grid_shows_masks_and_boxes(tmp_path):
    ws = _workspace(tmp_path)
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(_app(), ["augment-preview", str(ws.root), "--n", "3", "--out", str(out),
                                      "--size", "64", "--strength", "light"])
    assert res.exit_code == 0, res.output
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    assert red.sum() > 50 and yellow.sum() > 50

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


def test_preview_sample_is_the_slice_the_cache_trains_on(tmp_path):
    """An 8-bit export with its window known is mapped back to HU by both the cache and the preview, so the
    preview shows the contrast the model is trained on (not the export's own)."""
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig
    from medsift.preprocess.preview import load_sample

    ws = _workspace(tmp_path)
    df = ws.read()
    df["window_center"], df["window_width"] = 40.0, 150.0  # exported with a wide window
    config = PreprocessConfig(size=64, windows=("brain",), rewindow_8bit=True)
    cache = build_cache(df, tmp_path / "cache", config, progress=False, n_jobs=1)
    row = df.iloc[1]
    cached = cache.image(cache.rows([row["image_id"]])[0])[0]
    shown = load_sample(row, config)["image"][0].numpy()
    np.testing.assert_allclose(shown, cached, atol=1.5 / 255)  # the cache stores uint8
    plain = load_sample(row, PreprocessConfig(size=64, windows=("brain",)))["image"][0].numpy()
    assert np.abs(plain - cached).max() > 0.2  # without re-windowing the contrast differs

"""The detect task end to end on phantoms: `medsift train/evaluate` (CLI), predict with drawings, and the
boxes of COCO / YOLO exports read back against the manifest and the task's ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def det_ws(tmp_path_factory):
    """3 phantom patients (PHE-SICH layout) ingested and split by patient (1 train, 1 val, 1 test)."""
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.synth.testing import tiny_dataset
    from medsift.workspace import Workspace

    root = tmp_path_factory.mktemp("dettask")
    synth = tiny_dataset(root / "src")
    ingest(synth.phe_sich, layout="phe-sich", workspace=root / "ws")
    ws = Workspace.at(root / "ws")
    ws.write(assign_splits(ws.read(), test=0.34, val=0.34, folds=0, seed=0, stratify=None), reason="test split")
    return {"root": root, "ws": root / "ws", "synth": synth}


@pytest.fixture(scope="session")
def det_run(det_ws):
    """A 2-step CLI training run (centernet, 64 px) and its CLI evaluation on the test split."""
    from typer.testing import CliRunner

    from medsift.cli import app

    cfg = det_ws["root"] / "det.yaml"
    cfg.write_text("epochs: 1\nbatch_size: 4\nmax_steps_per_epoch: 2\namp: false\ndevice: cpu\nthreads: 1\n"
                   "num_workers: 0\naugment: light\nearly_stop_metric: map50\npatience: 0\nbootstrap: 20\n"
                   "model: {arch: centernet, width: 8}\npreprocess: {size: 64, windows: [brain]}\n")
    run = det_ws["root"] / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(det_ws["ws"]), "--task", "detect", "--out", str(run), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    res_eval = runner.invoke(app, ["evaluate", str(run), "--workspace", str(det_ws["ws"]), "--split", "test"])
    assert res_eval.exit_code == 0, res_eval.output
    return {"run": run, "eval": run / "eval" / "ws-test", "train_output": res.output}


def test_cli_run_stores_calibration_and_box_statistics(det_run):
    meta = json.loads((det_run["run"] / "model.json").read_text())
    assert meta["task"] == "detect" and meta["state"]["detect"]["model"] == "centernet"
    cal = meta["calibration"]
    assert 0.0 <= cal["threshold"] <= 1.0 and cal["thresholds"] == [cal["threshold"]]
    stats = meta["state"]["box_stats"]
    assert stats["n_boxes"] > 0 and stats["side_p5"] <= stats["side_p50"] <= stats["side_p95"]


def test_evaluate_writes_the_contract_metrics(det_run):
    metrics = json.loads((det_run["eval"] / "metrics.json").read_text())
    for key in ("map50", "map50_95", "image_recall", "image_precision", "image_specificity", "image_f1",
                "froc_1fp", "n_images", "n_patients"):
        assert key in metrics
    assert metrics["n_patients"] == 1
    assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == metrics["n_images"]
    assert metrics["map50"] is None or 0.0 <= metrics["map50"] <= 1.0


def test_evaluate_tables_cover_every_test_image(det_run, det_ws):
    import pandas as pd

    from medsift.workspace import Workspace

    df = Workspace.at(det_ws["ws"]).read()
    test_ids = set(df.loc[df["split"] == "test", "image_id"].astype(str))
    table = pd.read_csv(det_run["eval"] / "image_level.csv", dtype={"image_id": str})
    assert set(table["image_id"]) == test_ids
    truth = {i: int(len(b) > 0) for i, b in zip(df["image_id"].astype(str), df["boxes"])}
    assert table.set_index("image_id")["truth"].to_dict() == {i: truth[i] for i in test_ids}
    preds = pd.read_csv(det_run["eval"] / "predictions.csv", dtype={"image_id": str})
    assert set(preds["image_id"]) <= test_ids and (preds["x2"] >= preds["x1"]).all()
    assert (det_run["eval"] / "classification_report.txt").read_text().count("hemorrhage") >= 1


def test_predict_files_returns_boxes_in_file_pixels_and_draws(det_run, det_ws, tmp_path):
    from PIL import Image

    from medsift.tasks.det_predict import predict_detect_files

    png = sorted((det_ws["synth"].phe_sich / "images").glob("*.png"))[0]
    out = predict_detect_files(det_run["run"], [png], draw_dir=tmp_path, device="cpu")
    assert len(out) == 1 and out[0]["hemorrhage"] in (0, 1)
    w, h = Image.open(png).size
    for x1, y1, x2, y2, s in out[0]["boxes"]:
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h and 0 <= s <= 1
    drawn = np.asarray(Image.open(out[0]["drawing"]))
    assert drawn.ndim == 3 and drawn.shape[2] == 3


def test_a_head_cropped_detector_reports_boxes_on_the_file(det_ws, tmp_path):
    """``preprocess.crop_head``: trained, evaluated and used on files, boxes in each file's pixels."""
    from PIL import Image
    from typer.testing import CliRunner

    from medsift.cli import app
    from medsift.tasks.det_predict import predict_detect_files

    cfg = tmp_path / "det.yaml"
    cfg.write_text("epochs: 1\nbatch_size: 4\nmax_steps_per_epoch: 2\namp: false\ndevice: cpu\nthreads: 1\n"
                   "num_workers: 0\nbootstrap: 20\nmodel: {arch: centernet, width: 8}\ndetect: {score_floor: 0.0}\n"
                   "preprocess: {size: 64, windows: [brain], crop_head: true}\n")
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(det_ws["ws"]), "--task", "detect", "--out", str(run), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["evaluate", str(run), "--workspace", str(det_ws["ws"]), "--split", "test"])
    assert res.exit_code == 0, res.output
    png = sorted((det_ws["synth"].phe_sich / "images").glob("*.png"))[0]
    out = predict_detect_files(run, [png], draw_dir=tmp_path, device="cpu")
    w, h = Image.open(png).size
    assert out[0]["boxes"]
    for x1, y1, x2, y2, _ in out[0]["boxes"]:
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h


@pytest.mark.parametrize("target", ["coco", "yolo"])
def test_export_boxes_read_back_match_the_manifest(det_ws, tmp_path, target):
    from medsift.export import export
    from medsift.manifest import active
    from medsift.tasks.det_yolo import coco_ground_truth, yolo_ground_truth
    from medsift.tasks.detect import manifest_boxes
    from medsift.workspace import Workspace

    df = active(Workspace.at(det_ws["ws"]).read())
    export(df, tmp_path / target, target=target)
    labels = sorted({str(b[4]) for bs in df["boxes"] for b in bs})
    read = (lambda d, split: coco_ground_truth(d, split=split, labels=labels)) if target == "coco" \
        else yolo_ground_truth
    expected = dict(zip(df["image_id"].astype(str), manifest_boxes(df)))
    n_boxes = 0
    for split in ("train", "val", "test"):
        got = read(tmp_path / target, split=split)
        ids = set(df.loc[df["split"] == split, "image_id"].astype(str))
        assert set(got) == ids
        for image_id, boxes in got.items():
            want = expected[image_id]
            assert boxes.shape == want.shape
            np.testing.assert_allclose(np.sort(boxes, axis=0), np.sort(want, axis=0), atol=1.0 if target == "yolo"
                                       else 1e-6)
            n_boxes += len(boxes)
    assert n_boxes == sum(len(b) for b in expected.values()) > 0


def test_yolo_training_without_ultralytics_says_how_to_install(tmp_path):
    import importlib.util

    from medsift.errors import ConfigError
    from medsift.tasks.det_yolo import train_yolo

    if importlib.util.find_spec("ultralytics") is not None:
        pytest.skip("ultralytics installed")
    with pytest.raises(ConfigError, match="AGPL"):
        train_yolo(tmp_path, tmp_path / "run")

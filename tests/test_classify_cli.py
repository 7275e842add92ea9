"""`medsift train / evaluate / predict` end to end on phantoms (tiny model, a few seconds of training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medsift.cli import app

TINY = ["--set", "model.arch=resnet_small", "--set", "model.width=8", "--set", "preprocess.size=32",
        "--set", "threads=1", "--set", "num_workers=0", "--set", "bootstrap=50", "--set", "augment=none",
        "--set", "batch_size=32"]


@pytest.fixture(scope="session")
def phantom_ws(tmp_path_factory):
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.synth import generate
    from medsift.workspace import Workspace

    root = tmp_path_factory.mktemp("phantom-cli")
    generate(root / "src", n_patients=8, seed=0, size=64, slices=(8, 10), layouts=("folder",), defects=False)
    ws = root / "ws"
    df = ingest(root / "src" / "folder", layout="folder", workspace=ws, labels=root / "src" / "folder" / "labels.csv",
                n_jobs=1)
    Workspace.at(ws).write(assign_splits(df, test=0.25, val=0.25, folds=0, seed=0), reason="test split")
    return root, ws


@pytest.fixture(scope="session")
def trained_run(phantom_ws):
    root, ws = phantom_ws
    run = root / "run"
    result = CliRunner().invoke(app, ["train", str(ws), "--task", "classify", "--out", str(run), "--epochs", "2",
                                      *TINY])
    assert result.exit_code == 0, result.output
    return run


def test_train_writes_run_folder(trained_run):
    meta = json.loads((trained_run / "model.json").read_text())
    assert meta["task"] == "classify" and meta["labels"] == ["hemorrhage"]
    assert 0.0 <= meta["calibration"]["thresholds"][0] <= 1.0
    assert meta["preprocess"]["size"] == 32 and meta["epochs_run"] == 2
    assert "model:" in (trained_run / "config.yaml").read_text()


def test_evaluate_writes_flat_metrics(trained_run, phantom_ws):
    _, ws = phantom_ws
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--workspace", str(ws), "--split", "all",
                                      "--gradcam", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((trained_run / "eval" / "ws-all" / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "specificity", "f1", "auc", "pr_auc", "threshold", "n_images",
                "n_patients", "f1_ci_low", "auc_ci_high"):
        assert key in metrics, key
    assert metrics["n_patients"] == 8


def test_predict_prints_probability(trained_run, phantom_ws):
    root, _ = phantom_ws
    image = sorted((root / "src" / "folder" / "images").glob("*.png"))[0]
    result = CliRunner().invoke(app, ["predict", str(trained_run), str(image), "--json", "--gradcam",
                                      str(root / "cams")])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert 0.0 <= line["prob_hemorrhage"] <= 1.0 and line["hemorrhage"] in (0, 1)
    assert (root / "cams").is_dir() and any((root / "cams").iterdir())


def _steps_per_epoch(run) -> int:
    line = next(s for s in (run / "train.log").read_text().splitlines() if "steps/epoch=" in s)
    return int(line.split("steps/epoch=")[1].split()[0])


def test_torchrun_ddp_on_cpu_trains_with_one_writer(phantom_ws, trained_run):
    """``torchrun --nproc_per_node=2 -m medsift train`` (gloo on CPU): each rank takes half of every epoch's
    batches, rank 0 alone writes the run, and the run evaluates like any other."""
    import subprocess
    import sys

    root, ws = phantom_ws
    run = root / "run-ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "medsift",
           "train", str(ws), "--task", "classify", "--out", str(run), "--epochs", "2", *TINY]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _steps_per_epoch(run) == -(-_steps_per_epoch(trained_run) // 2)
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 2  # header + one row per epoch
    assert json.loads((run / "model.json").read_text())["epochs_run"] == 2
    result = CliRunner().invoke(app, ["evaluate", str(run), "--workspace", str(ws), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads((run / "eval" / "ws-test" / "metrics.json").read_text())["auc"] <= 1.0


def test_train_takes_task_from_a_recipe_and_set_items_win(phantom_ws, monkeypatch):
    import medsift.engine.runner as runner

    seen = []
    monkeypatch.setattr(runner, "train_run", lambda ws, out, cfg, **kw: seen.append(cfg) or {})
    _, ws = phantom_ws
    result = CliRunner().invoke(app, ["train", str(ws), "--config", "ct-segment", "--out", "unused",
                                      "--max-minutes", "5", "--set", "segment.crop=96"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["train", str(ws), "--config", "ct-segment", "--task", "classify",
                                      "--out", "unused"])
    assert result.exit_code == 0, result.output
    recipe, explicit = seen
    assert (recipe.task, recipe.model.arch, recipe.segment["crop"], recipe.max_minutes) == \
        ("segment", "unet_tiny", 96, 5.0)
    assert explicit.task == "classify"  # an explicit --task still wins over the recipe's


def test_pretrain_then_finetune_starts_from_the_encoder(phantom_ws):
    import torch

    root, ws = phantom_ws
    sim, tuned, scratch = root / "simclr", root / "from-simclr", root / "from-scratch"
    result = CliRunner().invoke(app, ["pretrain", str(ws), "--out", str(sim), "--epochs", "1", *TINY])
    assert result.exit_code == 0, result.output
    meta = json.loads((sim / "model.json").read_text())
    assert meta["task"] == "simclr" and meta["config"]["augment"] == "none"  # --set wins over the verb's "strong"
    assert "model.pretrained=" in result.output
    for out, extra in ((tuned, ["--set", f"model.pretrained={sim / 'best.pt'}"]), (scratch, [])):
        result = CliRunner().invoke(app, ["train", str(ws), "--task", "classify", "--out", str(out), "--epochs", "1",
                                          *TINY, "--set", "lr=1e-5", *extra])
        assert result.exit_code == 0, result.output

    def stem(path):
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
        key = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
        return state[key].float()

    encoder = stem(sim / "best.pt")
    assert (stem(tuned / "best.pt") - encoder).abs().mean() < 0.1 * (stem(scratch / "best.pt") - encoder).abs().mean()


def test_train_on_an_unsplit_workspace_fails_before_caching(phantom_ws, tmp_path):
    from medsift.ingest import ingest

    root, _ = phantom_ws
    ws = tmp_path / "unsplit"
    ingest(root / "src" / "folder", layout="folder", workspace=ws, labels=root / "src" / "folder" / "labels.csv",
           n_jobs=1)
    result = CliRunner().invoke(app, ["train", str(ws), "--task", "classify", "--out", str(tmp_path / "run"),
                                      "--epochs", "1", *TINY])
    assert result.exit_code != 0 and "medsift split" in str(result.exception)
    assert not (ws / "cache").exists() or not any((ws / "cache").iterdir())
    assert not (tmp_path / "run").exists()


def test_evaluate_on_slices_nobody_annotated_refuses_instead_of_scoring_them_negative(trained_run, tmp_path):
    """An external DICOM site without labels or annotation files: no metric can be honest. Mixed with an
    annotated source, only the annotated rows are scored."""
    import synth_fixtures as sfx
    from medsift.ingest import ingest
    from medsift.manifest import active

    ds = sfx.tiny()
    ws = tmp_path / "external"
    ingest(ds.dicom, layout="dicom", workspace=ws, source="dicom", n_jobs=1)
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--workspace", str(ws), "--split", "all",
                                      "--gradcam", "0"])
    assert result.exit_code != 0
    assert "no labelled rows" in str(result.exception) and "medsift predict" in str(result.exception)
    df = ingest(ds.phe_sich, layout="phe-sich", workspace=ws, source="phe", n_jobs=1)
    df = active(df)  # rows with a problem status (the phantoms' defects) are never scored
    annotated = int(((df["source"] == "phe") & df["label_hemorrhage"].notna()).sum())  # misnamed XML: unknown
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--workspace", str(ws), "--split", "all",
                                      "--gradcam", "0"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((trained_run / "eval" / "external-all" / "metrics.json").read_text())
    assert metrics["n_images"] == annotated < len(df)


def test_inputs_in_another_intensity_domain_than_training_are_flagged(trained_run, phantom_ws, tmp_path):
    """The run learnt on 8-bit PNG exports used as they are; DICOM slices in HU reach it windowed, with another
    contrast. evaluate and predict say so (and what to do); PNG inputs like the training ones raise nothing."""
    import synth_fixtures as sfx
    from medsift.engine.inference import file_domain_warnings
    from medsift.ingest import ingest

    meta = json.loads((trained_run / "model.json").read_text())
    assert meta["training_data"]["display"] == meta["training_data"]["rows"] > 0
    dcm = sorted(sfx.tiny().dicom.rglob("*.dcm"))[:4]
    warnings = file_domain_warnings(trained_run, dcm)
    assert len(warnings) == 1 and "4 of 4" in warnings[0] and "export_window" in warnings[0]
    root, ws = phantom_ws
    pngs = sorted((root / "src" / "folder" / "images").glob("*.png"))[:3]
    assert file_domain_warnings(trained_run, pngs) == []
    result = CliRunner().invoke(app, ["predict", str(trained_run), *map(str, dcm)])
    assert result.exit_code == 0 and "warning:" in result.output
    # evaluate writes the check beside the metrics: the training workspace itself raises nothing
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--split", "test", "--gradcam", "0"])
    assert result.exit_code == 0, result.output
    check = json.loads((trained_run / "eval" / "ws-test" / "input_check.json").read_text())
    assert check["warnings"] == [] and check["evaluated"]["display"] == check["evaluated"]["rows"] > 0


def test_evaluating_on_hu_volumes_records_the_domain_warning(trained_run, tmp_path):
    import synth_fixtures as sfx
    from medsift.ingest import ingest

    ws = tmp_path / "nii"
    ingest(sfx.tiny().nifti, layout="nifti", workspace=ws, n_jobs=1)  # labelled by their masks, in HU
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--workspace", str(ws), "--split", "all",
                                      "--gradcam", "0"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output
    check = json.loads((trained_run / "eval" / "nii-all" / "input_check.json").read_text())
    assert check["evaluated"]["hu"] == check["evaluated"]["rows"] > 0 and len(check["warnings"]) == 1


def test_training_on_slices_nobody_annotated_says_what_labels_are_missing(tmp_path):
    import synth_fixtures as sfx
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.workspace import Workspace

    ws = tmp_path / "dicom"
    df = ingest(sfx.tiny().dicom, layout="dicom", workspace=ws, n_jobs=1)
    Workspace.at(ws).write(assign_splits(df, test=0.34, val=0.34, folds=0, seed=0), reason="split")
    result = CliRunner().invoke(app, ["train", str(ws), "--task", "classify", "--out", str(tmp_path / "run"),
                                      "--epochs", "1", *TINY])
    assert result.exit_code != 0
    assert "no training row has a known hemorrhage label" in str(result.exception)
    assert not (tmp_path / "run" / "best.pt").exists()


def test_predict_on_a_dicom_series_prints_one_verdict_per_scan(trained_run):
    import synth_fixtures as sfx

    series = sorted({p.parent for p in sfx.tiny().dicom.rglob("*.dcm")})[0]
    n = len(list(series.glob("*.dcm")))
    result = CliRunner().invoke(app, ["predict", str(trained_run), str(series)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "per scan" in result.output
    summary = result.output[result.output.index("per scan"):]
    assert f" {n} " in summary  # all the series' slices pooled in one row
    lines = [json.loads(x) for x in CliRunner().invoke(app, ["predict", str(trained_run), str(series), "--json"])
             .output.strip().splitlines() if x.startswith("{")]
    assert len(lines) == n and len({r["scan"] for r in lines}) == 1


def test_training_curves_are_tensorboard_events_too(trained_run):
    """history.csv and the TensorBoard event files carry the same per-epoch values."""
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained_run / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/auc"} <= tags, tags
    history = pd.read_csv(trained_run / "history.csv")
    logged = [e.value for e in events.Scalars("val/auc")]
    np.testing.assert_allclose(logged, history["val_auc"].to_numpy(), rtol=1e-5)

"""A run killed (SIGKILL) after an epoch and resumed ends with the same metrics as an uninterrupted run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine_fixtures import train_tiny

HERE = Path(__file__).resolve().parent

CHILD = """
import sys
sys.path.insert(0, {here!r})
from engine_fixtures import train_tiny
train_tiny({out!r}, kill_after_epoch=2, epochs=4, augment="light"{extra})
"""


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    _, _, result = train_tiny(out, epochs=4, augment="light")
    return out, result


def test_killed_run_resumes_to_identical_metrics(uninterrupted, tmp_path):
    full_dir, full = uninterrupted
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", CHILD.format(here=str(HERE), out=str(out), extra="")], timeout=300)
    assert proc.returncode == -9  # SIGKILL after epoch 2
    saved = torch.load(out / "last.pt", weights_only=True)
    assert saved["epoch"] == 2
    _, _, resumed = train_tiny(out, resume=True, epochs=4, augment="light")
    assert resumed.epochs_run == 4
    last_full, last_resumed = full.history[-1], resumed.history[-1]
    for key in ("train_loss", "val_loss", "val_auc", "val_f1"):
        assert last_resumed[key] == pytest.approx(last_full[key], rel=1e-6, abs=1e-9), key
    assert resumed.best_metric == pytest.approx(full.best_metric)


def test_checkpoints_load_with_weights_only(uninterrupted):
    out, _ = uninterrupted
    last = torch.load(out / "last.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    assert last["epoch"] == 4 and len(last["history"]) == 4
    assert set(best["model"]) == set(last["model"])


def test_history_csv_has_one_row_per_epoch(uninterrupted):
    import pandas as pd

    out, _ = uninterrupted
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_auc"} <= set(history.columns)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _kill_resume_and_compare(full_dir, out, **option):
    """Train 4 epochs uninterrupted with ``option``, then the same killed after epoch 2 and resumed; assert the last
    epoch's losses and val AUC agree. Returns the uninterrupted run's result."""
    _, _, full = train_tiny(full_dir, epochs=4, augment="light", **option)
    extra = "".join(f", {k}={v!r}" for k, v in option.items())
    child = CHILD.format(here=str(HERE), out=str(out), extra=extra)
    assert subprocess.run([sys.executable, "-c", child], timeout=300).returncode == -9
    _, _, resumed = train_tiny(out, resume=True, epochs=4, augment="light", **option)
    for key in ("train_loss", "val_loss", "val_auc"):
        assert resumed.history[-1][key] == pytest.approx(full.history[-1][key], rel=1e-6, abs=1e-9), key
    return full


def test_killed_run_with_weight_averaging_resumes_to_identical_metrics(tmp_path):
    """``ema_decay``: the averaged weights are validated, saved as best and restored on resume."""
    out = tmp_path / "killed"
    _kill_resume_and_compare(tmp_path / "full", out, ema_decay=0.9)
    last = torch.load(out / "last.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    averaged = {k[len("module."):]: v for k, v in last["ema"].items() if k.startswith("module.")}
    assert set(averaged) == set(last["model"])
    weight = "fc.1.weight"
    assert not torch.equal(averaged[weight], last["model"][weight])  # the average is not the last step
    assert set(best["model"]) == set(last["model"])


def test_killed_run_with_mixup_resumes_to_identical_metrics(uninterrupted, tmp_path):
    """``mixup``: the blend is drawn from the batch's item seeds, so a resumed run mixes the same pairs; and it does
    change training (the losses differ from the unmixed run's)."""
    full = _kill_resume_and_compare(tmp_path / "full", tmp_path / "killed", mixup=0.4)
    assert full.history[0]["train_loss"] != pytest.approx(uninterrupted[1].history[0]["train_loss"], rel=1e-4)


def test_best_checkpoint_holds_the_averaged_weights(tmp_path):
    train_tiny(tmp_path, epochs=1, ema_decay=0.9)  # one epoch: it is the best one
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    for key, value in best["model"].items():
        assert torch.equal(value, last["ema"][f"module.{key}"]), key
    assert not torch.equal(best["model"]["fc.1.weight"], last["model"]["fc.1.weight"])


def test_resume_without_the_average_is_refused(tmp_path):
    from medsift.errors import ConfigError

    train_tiny(tmp_path, epochs=1)
    with pytest.raises(ConfigError, match="ema_decay"):
        train_tiny(tmp_path, resume=True, epochs=2, ema_decay=0.9)

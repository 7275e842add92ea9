"""A training-run folder laid out as the engine writes it, with hand-written values (for report tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from review_fixtures import write_png

METRICS = {"auc": 0.875, "auc_ci_low": 0.8, "auc_ci_high": 0.93, "sensitivity": 0.9, "sensitivity_ci_low": 0.7,
           "sensitivity_ci_high": 1.0, "n": 40}


def build_run(run: Path, *, ws_name: str = "ws", split: str = "test", warnings: tuple[str, ...] = ()) -> Path:
    """``run/{config.yaml, model.json, history.csv, curves.png, eval/<ws>-<split>/{metrics.json, roc.png, ...}}``."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text("task: classify\nlabels: [hemorrhage]\nepochs: 2\nlr: 0.001\n")
    (run / "model.json").write_text(json.dumps({"task": "classify", "arch": "resnet18", "params": 11_000_000}))
    (run / "history.csv").write_text("epoch,train_loss,val_loss,val_auc\n1,0.70,0.65,0.71\n2,0.52,0.55,0.80\n")
    write_png(run / "curves.png", np.full((40, 60), 128, np.uint8))
    ev = run / "eval" / f"{ws_name}-{split}"
    ev.mkdir(parents=True)
    (ev / "metrics.json").write_text(json.dumps(METRICS))
    (ev / "input_check.json").write_text(json.dumps({"warnings": list(warnings)}))
    write_png(ev / "roc.png", np.full((30, 30), 200, np.uint8))
    write_png(ev / "confusion.png", np.full((30, 30), 50, np.uint8))
    write_png(ev / "gradcam" / "P1_01.png", np.zeros((20, 20, 3), np.uint8))
    (ev / "predictions.csv").write_text("image_id,prob\nP1_01,0.9\n")
    return run

"""Task 4 on an easy synthetic problem: per-class thresholds and metrics, learns above chance."""

from __future__ import annotations

import pytest
import torch

from engine_fixtures import train_tiny
from medsift.engine.loop import build_loader, predict


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("multilabel")
    task, datasets, _ = train_tiny(out, task="multilabel", labels=("ivh", "sdh"), epochs=4,
                                   early_stop_metric="macro_auc")
    model = task.build_model(task.config)
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])

    def run(split):
        loader = build_loader(datasets[split], batch_size=32, num_workers=0, collate=task.collate, pin=False, seed=0)
        return predict(task, model, loader, torch.device("cpu"))

    calibration = task.calibrate(run("val"), datasets["val"])
    return calibration, task.evaluate(run("test"), datasets["test"], calibration=calibration)


def test_one_threshold_per_class(trained):
    calibration, metrics = trained
    assert len(calibration["thresholds"]) == 2
    assert metrics["ivh_threshold"] == pytest.approx(calibration["thresholds"][0])


def test_learns_both_classes_above_chance(trained):
    _, m = trained
    assert m["macro_auc"] > 0.8 and m["ivh_auc"] > 0.7 and m["sdh_auc"] > 0.7


def test_flat_keys_with_cis(trained):
    _, m = trained
    for key in ("ivh_auc", "sdh_f1", "macro_auc", "micro_f1", "macro_f1"):
        assert key in m and f"{key}_ci_low" in m and f"{key}_ci_high" in m

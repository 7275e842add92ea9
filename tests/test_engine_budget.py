"""A time-budgeted run is planned in whole epochs up front: it replays with ``--epochs N`` and resumes exactly."""

from __future__ import annotations

import pytest

import medsift.engine.loop as loop
from medsift.engine.budget import ProbeTiming, plan_epochs, replan_epochs
from engine_fixtures import train_tiny

# 60 training slices / batch 16 = 4 steps; 2 s a step + 4 s validation = 12 s an epoch.
FAKE = ProbeTiming(step_s=2.0, val_s=4.0, probe_s=1.0)


def test_plan_counts_whole_epochs_in_what_is_left_of_the_budget():
    # 97% of (600 - 20) s = 562.6 s; an epoch is 10 x 3 s + 8 s = 38 s -> 14 epochs
    assert plan_epochs(600, spent_s=20, step_s=3.0, steps_per_epoch=10, val_s=8.0, max_epochs=100) == 14
    assert plan_epochs(600, spent_s=20, step_s=3.0, steps_per_epoch=10, val_s=8.0, max_epochs=9) == 9
    assert plan_epochs(10, spent_s=20, step_s=3.0, steps_per_epoch=10, val_s=8.0, max_epochs=9) == 1


def test_replan_shortens_a_plan_that_no_longer_fits_and_never_lengthens_one():
    # 10 of 30 planned epochs done in 200 s of 600: 20 left at 20 s would need 400 s -> it fits, plan unchanged
    assert replan_epochs(30, done=10, budget_s=600, spent_s=200, last_epoch_s=20) == 30
    # the machine got busier: 30 s an epoch -> 97% of 400 s / 30 s = 12 more epochs
    assert replan_epochs(30, done=10, budget_s=600, spent_s=200, last_epoch_s=30) == 22
    # faster than planned: still 30 (the learning rate would have to climb back)
    assert replan_epochs(30, done=10, budget_s=600, spent_s=200, last_epoch_s=5) == 30
    # out of time: one more epoch at most, the clock stops the run
    assert replan_epochs(30, done=10, budget_s=600, spent_s=599, last_epoch_s=30) == 11
    assert replan_epochs(30, done=30, budget_s=600, spent_s=700, last_epoch_s=30) == 30


@pytest.fixture
def fake_probe(monkeypatch):
    calls = []

    def probe(*args, **kwargs):
        calls.append(kwargs)
        return FAKE

    monkeypatch.setattr(loop, "probe_timing", probe)
    return calls


def test_budgeted_run_follows_its_plan_and_replays_without_a_budget(fake_probe, tmp_path):
    # 97% of (60 - 1) s / 12 s = 4.77 -> 4 of the config's 6 epochs
    _, _, budgeted = train_tiny(tmp_path / "budget", epochs=6, max_minutes=1.0, augment="light")
    assert len(fake_probe) == 1
    assert budgeted.epochs_run == 4 and budgeted.stop_reason.startswith("planned 4 epochs")
    log = (tmp_path / "budget" / "train.log").read_text()
    assert "replay without a budget: --epochs 4" in log
    assert budgeted.history[-1]["lr"] < 0.05 * 3e-3  # the schedule annealed within the plan, not over 6 epochs
    _, _, replay = train_tiny(tmp_path / "replay", epochs=4, augment="light")
    assert len(fake_probe) == 1  # no budget, no probe
    for a, b in zip(budgeted.history, replay.history, strict=True):
        for key in ("train_loss", "lr", "val_loss", "val_auc"):
            assert a[key] == b[key], key


def test_budgeted_run_resumes_on_its_saved_plan(fake_probe, tmp_path):
    _, _, full = train_tiny(tmp_path / "full", epochs=6, max_minutes=1.0)
    out = tmp_path / "killed"

    def stop_after_two(line: str) -> None:
        if line.startswith("epoch=2 "):
            raise KeyboardInterrupt

    from medsift.engine.loop import fit
    from medsift.tasks import TASKS
    from engine_fixtures import synthetic, tiny_config

    config = tiny_config(epochs=6, max_minutes=1.0)
    df, cache = synthetic()
    task = TASKS.get(config.task)(config)
    with pytest.raises(KeyboardInterrupt):
        fit(task, task.build_datasets(df, cache, config), config, out, show_progress=False, log=stop_after_two)
    assert len(fake_probe) == 2
    _, _, resumed = train_tiny(out, resume=True, epochs=6, max_minutes=1.0)
    assert len(fake_probe) == 2  # the plan came from last.pt
    assert resumed.epochs_run == 4
    for key in ("train_loss", "val_loss", "val_auc"):
        assert resumed.history[-1][key] == pytest.approx(full.history[-1][key], rel=1e-6, abs=1e-9), key


def test_the_real_probe_leaves_the_run_as_an_unprobed_one(tmp_path):
    # a budget so large that the plan is the config's own 3 epochs: same weights as a run without the probe
    _, _, probed = train_tiny(tmp_path / "probed", epochs=3, max_minutes=600.0, augment="light")
    _, _, plain = train_tiny(tmp_path / "plain", epochs=3, augment="light")
    assert "planned 3 epochs" in (tmp_path / "probed" / "train.log").read_text()
    for a, b in zip(probed.history, plain.history, strict=True):
        assert a["train_loss"] == b["train_loss"] and a["val_auc"] == b["val_auc"]

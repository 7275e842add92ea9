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


def test_replan_follows_the_pace_only_when_the_plan_no_longer_fits():
    def replan(epoch_s, spent_s=200, planned=30, max_epochs=100):
        return replan_epochs(planned, done=10, budget_s=600, spent_s=spent_s, epoch_s=epoch_s, max_epochs=max_epochs)

    # 10 of 30 planned epochs done in 200 s of 600: 20 left at 19 s need 380 s -> fits, plan unchanged
    assert replan(19) == 30
    # the machine got busier: 30 s an epoch -> 97% of 400 s / 30 s = 12 more epochs
    assert replan(30) == 22
    assert replan(20.4) == 30  # 8 s over: less than half an epoch, the plan stays (no back and forth)
    # faster: 97% of 400 s / 17 s = 22 more fit, only 2 beyond the plan's 20 -> lengthened
    assert replan(17) == 32
    assert replan(18.5) == 30  # 20 more fit: no change for less than two epochs
    assert replan(5, max_epochs=40) == 40
    # out of time: one more epoch at most, the clock stops the run
    assert replan(30, spent_s=599) == 11
    assert replan_epochs(30, done=30, budget_s=600, spent_s=700, epoch_s=30, max_epochs=100) == 30


@pytest.fixture
def fake_probe(monkeypatch):
    calls = []

    def probe(*args, **kwargs):
        calls.append(kwargs)
        return FAKE

    monkeypatch.setattr(loop, "probe_timing", probe)
    # the tiny epochs take well under the probe's 12 s: keep the plan, as on a machine whose pace matches the probe
    monkeypatch.setattr(loop, "replan_epochs", lambda planned, **_: planned)
    return calls


def test_a_replan_moves_the_end_of_the_run_and_of_the_schedule(fake_probe, monkeypatch, tmp_path):
    monkeypatch.setattr(loop, "replan_epochs", lambda planned, *, done, **_: 3 if done == 1 else planned)
    _, _, run = train_tiny(tmp_path / "busy", epochs=6, max_minutes=1.0)
    assert run.epochs_run == 3 and "(re-planned)" in run.stop_reason
    assert "re-planned 4 -> 3 epochs" in (tmp_path / "busy" / "train.log").read_text()
    assert run.history[-1]["lr"] < 0.1 * 3e-3 and all(r["epoch_s"] > 0 for r in run.history)


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

"""The four label verbs end to end on phantoms: ingest -> split -> tiny run -> pseudo-label, queue, label-noise,
ensemble (one session-scoped training run, about 10-20 s)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from medsift.cli import app  # noqa: E402
from medsift.workspace import Workspace  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from label_fixtures import build_labelled_run

    return build_labelled_run(tmp_path_factory.mktemp("label"))


def _invoke(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_queue_ranks_hidden_rows_and_writes_review_findings(lab):
    from medsift.review.queue import build_queue, read_findings

    out = _invoke("queue", lab["run"], "--strategy", "uncertainty", "--n", "5", "--pool", "unlabeled")
    assert "5 images queued" in out
    table = pd.read_csv(lab["run"] / "queue-uncertainty.csv", dtype={"image_id": str})
    assert set(table["image_id"]) <= set(lab["hidden"]) and table["rank"].tolist() == [1, 2, 3, 4, 5]
    dist = (table["prob_hemorrhage"] - 0.5).abs().to_numpy()
    assert np.all(np.diff(dist) >= -1e-9)  # closest to 0.5 first
    ids = (lab["run"] / "queue-uncertainty.ids.txt").read_text().split()
    assert ids == table["image_id"].tolist()
    items = build_queue(Workspace.at(lab["ws"]).read(), read_findings(lab["run"] / "queue-uncertainty.findings.csv"))
    assert sorted(i["image_id"] for i in items) == sorted(ids)
    assert (lab["run"] / "queue-uncertainty.html").read_text().count("data:image/png;base64,") == 5


def test_diversity_queue_covers_unlabelled_rows(lab):
    _invoke("queue", lab["run"], "--strategy", "diversity", "--n", "3", "--pool", "unlabeled")
    table = pd.read_csv(lab["run"] / "queue-diversity.csv", dtype={"image_id": str})
    assert len(table) == 3 and table["image_id"].is_unique and set(table["image_id"]) <= set(lab["hidden"])
    assert table["score"].iloc[0] == pytest.approx(1.0)


def test_label_noise_appends_findings(lab):
    audit = lab["ws"] / "audit"
    audit.mkdir(exist_ok=True)
    pd.DataFrame({"image_id": ["0001_00"], "check": ["duplicate"], "severity": ["warning"], "score": [0.5],
                  "detail": ["kept"], "related_id": ["0001_01"]}).to_csv(audit / "findings.csv", index=False)
    _invoke("label-noise", lab["ws"], "--size", "32", "--folds", "2")
    first = pd.read_csv(audit / "findings.csv", dtype=str, keep_default_na=False)
    _invoke("label-noise", lab["ws"], "--size", "32", "--folds", "2")
    again = pd.read_csv(audit / "findings.csv", dtype=str, keep_default_na=False)
    assert first.equals(again)  # label_noise rows replaced, not appended twice
    assert (again["check"] == "duplicate").sum() == 1
    noisy = again[again["check"] == "label_noise"]
    assert not set(noisy["image_id"]) & set(lab["hidden"])  # unlabelled rows are never judged


def test_ensemble_of_one_run_twice_equals_the_run(lab):
    out = lab["root"] / "ens"
    _invoke("ensemble", lab["ws"], "--out", out, "--run", lab["run"], "--run", lab["run"], "--vote", "soft",
            "--two-stage", "logreg", "--gate")
    m = json.loads((out / "metrics.json").read_text())
    assert m["ensemble_auc"] == pytest.approx(m["run0_auc"]) and m["n_runs"] == 2
    # the soft vote's threshold is chosen again on the validation patients: two copies of one run give its own
    calibrated = json.loads((lab["run"] / "model.json").read_text())["calibration"]["thresholds"][0]
    assert m["threshold_from"] == "val" and m["ensemble_threshold"] == pytest.approx(calibrated)
    assert m["ensemble_f1"] == pytest.approx(m["run0_f1"])
    assert m["ensemble_auc_ci_low"] <= m["ensemble_auc"] <= m["ensemble_auc_ci_high"]
    two = json.loads((out / "two_stage-logreg-gated.json").read_text())
    assert two["n_test"] == m["n_images"] and 0.0 <= two["test"]["auc"] <= 1.0


def test_pseudo_label_fills_only_hidden_rows(lab):
    ws = Workspace.at(lab["ws"])
    before = ws.read()
    _invoke("pseudo-label", lab["run"], "--unlabeled", lab["ws"], "--min-confidence", "0.5")
    after = ws.read()
    assert ws.versions()[-1]["reason"].startswith("pseudo-label round 1")
    pseudo = after[after["label_source"] == "pseudo"]
    assert sorted(pseudo["image_id"]) == sorted(lab["hidden"])  # min-confidence 0.5: every hidden row
    assert (pseudo["pseudo_round"] == 1).all() and (pseudo["pseudo_confidence"] >= 0.5).all()
    human = before["label_hemorrhage"].notna()
    assert after.loc[human, "label_hemorrhage"].tolist() == before.loc[human, "label_hemorrhage"].tolist()


def test_ensemble_kfold_trains_one_run_per_fold(lab):
    from medsift.label.ensemble import evaluate_ensemble, train_kfold

    runs = train_kfold(lab["ws"], lab["root"] / "kfold", lab["config"])
    assert [r.parent.name for r in runs] == ["fold0", "fold1"]
    val = Workspace.at(runs[0].parent / "ws").read()
    assert set(val.loc[val["split"] == "val", "fold"].dropna().astype(int)) == {0}
    m = evaluate_ensemble(runs, lab["ws"], lab["root"] / "kfold", vote="hard")
    assert m["n_runs"] == 2 and 0.0 <= m["ensemble_auc"] <= 1.0


def test_ensemble_seeds_train_side_by_side_and_resume(lab):
    import torch

    cfg_path = lab["root"] / "seed-config.yaml"
    cfg_path.write_text(lab["config"].to_yaml())
    out = lab["root"] / "seeds"
    text = _invoke("ensemble", lab["ws"], "--out", out, "--seeds", "2", "--jobs", "2", "--config", cfg_path,
                   "--set", "seed=5")
    assert "2 member(s), 2 at a time, 1 thread(s) each" in " ".join(text.split())
    runs = [out / "seed0" / "run", out / "seed1" / "run"]
    saved = [(r / "config.yaml").read_text() for r in runs]
    assert "seed: 5" in saved[0] and "seed: 6" in saved[1]
    w = [torch.load(r / "best.pt", weights_only=True)["model"] for r in runs]
    assert any(not torch.equal(w[0][k], w[1][k]) for k in w[0])  # two seeds, two different models
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_runs"] == 2 and m["runs"] == [str(r) for r in runs]
    stamp = (runs[1] / "best.pt").stat().st_mtime_ns
    again = _invoke("ensemble", lab["ws"], "--out", out, "--seeds", "2", "--jobs", "2", "--config", cfg_path,
                    "--set", "seed=5")
    assert "member(s)" not in again and (runs[1] / "best.pt").stat().st_mtime_ns == stamp  # members kept


def test_ensemble_seeds_rejects_zero_jobs(lab):
    res = CliRunner().invoke(app, ["ensemble", str(lab["ws"]), "--out", str(lab["root"] / "bad"), "--seeds", "2",
                                   "--jobs", "0", "--config", "ct-classify"])
    from medsift.errors import ConfigError

    assert isinstance(res.exception, ConfigError) and "jobs must be >= 1" in str(res.exception)

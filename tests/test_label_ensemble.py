"""Voting, fold manifests, the contrast gate and the second-stage grid search on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medsift.errors import ConfigError
from medsift.label.ensemble import fold_manifest, hard_vote, soft_vote
from medsift.label.gate import ContrastGate, GatedClassifier, rms_contrast
from medsift.label.two_stage import grid_search


def test_soft_vote_is_weighted_mean():
    s = np.array([[0.2, 0.9], [0.6, 0.5]])  # (M=2, N=2)
    assert np.allclose(soft_vote(s)[:, 0], [0.4, 0.7])
    assert np.allclose(soft_vote(s, weights=[3, 1])[:, 0], [0.3, 0.8])


def test_soft_vote_rejects_bad_weights():
    with pytest.raises(ConfigError, match="weights"):
        soft_vote(np.zeros((2, 3)), weights=[1.0])


def test_hard_vote_majority_and_tie_by_soft_vote():
    s = np.array([[0.9, 0.2, 0.6, 0.7], [0.8, 0.1, 0.3, 0.45]])
    decided, score = hard_vote(s, [0.5, 0.5])
    assert np.allclose(score[:, 0], [1.0, 0.0, 0.5, 0.5], atol=1e-3)
    # ties: mean 0.45 < 0.5 -> 0; mean 0.575 >= 0.5 -> 1
    assert decided[:, 0].tolist() == [1, 0, 0, 1]
    # the score says the same at 0.5 (what the metrics and their bootstrap score), and ties rank by the soft vote
    assert (score[:, 0] >= 0.5).astype(int).tolist() == [1, 0, 0, 1] and score[3, 0] > score[2, 0]


def test_hard_vote_uses_each_runs_threshold():
    s = np.full((3, 1), 0.6)
    decided, frac = hard_vote(s, [0.5, 0.7, 0.3])
    assert np.allclose(frac[:, 0], [2 / 3], atol=1e-3) and decided[:, 0].tolist() == [1]


def test_fold_manifest_moves_fold_to_val_and_keeps_test():
    df = pd.DataFrame({"image_id": list("abcde"), "split": ["train", "val", "train", "test", "train"],
                       "fold": pd.array([0, 1, 1, pd.NA, 0], dtype="Int64")})
    out = fold_manifest(df, 1)
    assert out["split"].tolist() == ["train", "val", "val", "test", "train"]
    with pytest.raises(ConfigError, match="folds: \\[0, 1\\]"):
        fold_manifest(df, 4)


def test_rms_contrast_and_median_gate():
    flat = np.full((4, 4), 0.5)
    half = np.concatenate([np.full((2, 4), 0.2), np.full((2, 4), 0.6)])
    c = rms_contrast(np.stack([flat, half, np.zeros((4, 4))]))
    assert np.allclose(c, [0.0, 0.2, 0.0])
    gate = ContrastGate.fit(np.array([0.1, 0.2, 0.3, 0.4]))
    assert gate.threshold == pytest.approx(0.25)
    assert gate.route(np.array([0.15, 0.25, 0.35])).tolist() == [0, 1, 1]


def test_gated_classifier_learns_opposite_rules_per_group():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    contrast = np.r_[np.full(100, 0.1), np.full(100, 0.5)]
    y = np.r_[(x[:100, 0] > 0), (x[100:, 0] < 0)].astype(int)  # the rule flips with contrast
    gated = GatedClassifier(LogisticRegression(C=100.0)).fit(x, y, contrast)
    acc_gated = ((gated.predict_proba(x, contrast)[:, 1] >= 0.5) == y).mean()
    acc_one = ((LogisticRegression().fit(x, y).predict_proba(x)[:, 1] >= 0.5) == y).mean()
    assert acc_gated > 0.97 and acc_one < 0.7


def test_grid_search_on_separable_features():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    x = rng.normal(size=(60, 3)) + 4.0 * y[:, None]
    groups = np.arange(60) % 6
    res = grid_search(x, y, groups, kind="logreg")
    assert res.cv_auc == pytest.approx(1.0)
    assert res.params["logisticregression__C"] in (0.01, 0.1, 1.0)
    with pytest.raises(ConfigError, match="svm"):
        grid_search(x, y, groups, kind="forest")


def test_svm_grid_search_gives_calibrated_probabilities():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    x = rng.normal(size=(60, 2)) + 4.0 * y[:, None]
    res = grid_search(x, y, np.arange(60) % 6, kind="svm")
    p = res.estimator.predict_proba(x)[:, 1]
    assert res.cv_auc == pytest.approx(1.0)
    assert p[y == 1].min() > 0.5 > p[y == 0].max()


# ------------------------------------------------------------------------------- multi-label and segmentation votes


def _fake_members(monkeypatch, by_split, calibration):
    """Route evaluate_ensemble's run and workspace reads to hand-made member scores."""
    import medsift.label.ensemble as ens

    monkeypatch.setattr(ens, "member_scores", lambda runs, ws, split="test": by_split[split])
    monkeypatch.setattr(ens, "_has_split", lambda ws, split: split in by_split)
    monkeypatch.setattr(ens, "_run_task", lambda run: ("multilabel", {"calibration": calibration}))


def _stacks_of_three(n):
    """(N, 2) previous/next positions of slices in consecutive stacks of three (one stack per patient)."""
    j = np.arange(n)
    return np.column_stack([np.where(j % 3 == 0, j, j - 1), np.where((j % 3 == 2) | (j == n - 1), j, j + 1)])


def _scores(rng, n, k, m, *, noise, labels=("ivh", "sdh")):
    from medsift.label.ensemble import MemberScores

    y = (rng.random((n, k)) < 0.3).astype(float)
    s = np.clip(y[None] * 0.6 + 0.2 + rng.normal(0, noise, (m, n, k)), 0, 1)
    return MemberScores(np.array([f"i{j}" for j in range(n)]), np.array([f"p{j // 3}" for j in range(n)]), y, s,
                        np.full((m, k), 0.5), tuple(labels), _stacks_of_three(n))


def test_single_label_vote_says_where_its_errors_lie(monkeypatch, tmp_path):
    from medsift.label.ensemble import evaluate_ensemble

    rng = np.random.default_rng(2)
    val, test = (_scores(rng, n, 1, 2, noise=0.3, labels=("hemorrhage",)) for n in (60, 90))
    _fake_members(monkeypatch, {"val": val, "test": test}, {"threshold_rule": "max_f1"})
    m = evaluate_ensemble(["a", "b"], tmp_path, tmp_path, bootstrap=20)
    table = pd.read_csv(tmp_path / "predictions.csv")
    y = table["label"].to_numpy()
    nb = _stacks_of_three(90)
    edge = (y != y[nb[:, 0]]) | (y != y[nb[:, 1]])
    assert table["label_edge"].astype(bool).tolist() == edge.tolist()
    wrong = (table["label"] != table["pred"]).to_numpy()
    assert m["ensemble_errors"] == wrong.sum() > 0
    assert m["ensemble_errors_at_label_edge"] == (wrong & edge).sum()
    assert m["ensemble_n_label_edge"] == edge.sum()


def test_multilabel_soft_vote_chooses_one_threshold_per_label_on_val(monkeypatch, tmp_path):
    import json

    from medsift.label.ensemble import evaluate_ensemble
    from medsift.metrics.multilabel import multilabel_metrics, per_class_thresholds

    rng = np.random.default_rng(0)
    val, test = _scores(rng, 90, 2, 3, noise=0.25), _scores(rng, 120, 2, 3, noise=0.25)
    _fake_members(monkeypatch, {"val": val, "test": test}, {"threshold_rule": "max_f1"})
    m = evaluate_ensemble(["a", "b", "c"], tmp_path, tmp_path, bootstrap=50)
    thr = per_class_thresholds(val.targets, val.scores.mean(axis=0))
    assert [m["ensemble_ivh_threshold"], m["ensemble_sdh_threshold"]] == pytest.approx(thr.tolist())
    direct = multilabel_metrics(test.targets, test.scores.mean(axis=0), thr, ["ivh", "sdh"])
    assert m["ensemble_macro_f1"] == pytest.approx(direct["macro_f1"])
    assert m["ensemble_sdh_auc"] == pytest.approx(direct["sdh_auc"])
    assert m["ensemble_macro_f1_ci_low"] <= m["ensemble_macro_f1"] <= m["ensemble_macro_f1_ci_high"]
    one = multilabel_metrics(test.targets, test.scores[1], [0.5, 0.5], ["ivh", "sdh"])
    assert m["run1_macro_f1"] == pytest.approx(one["macro_f1"])
    # averaging three noisy members ranks better than a typical member
    assert m["ensemble_macro_auc"] > np.mean([m[f"run{i}_macro_auc"] for i in range(3)])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["threshold_from"] == "val" and saved["labels"] == ["ivh", "sdh"]
    table = pd.read_csv(tmp_path / "predictions.csv")
    assert {"score_ivh", "pred_sdh", "run2_sdh"} <= set(table.columns) and len(table) == 120


def test_multilabel_label_with_one_class_on_val_keeps_the_members_threshold(monkeypatch, tmp_path):
    from medsift.label.ensemble import MemberScores, soft_thresholds

    rng = np.random.default_rng(1)
    val = _scores(rng, 60, 2, 2, noise=0.2)
    val = MemberScores(val.image_ids, val.patients, np.column_stack([val.targets[:, 0], np.zeros(60)]), val.scores,
                       val.thresholds, val.labels, val.neighbours)
    _fake_members(monkeypatch, {"val": val}, {})
    thr, source = soft_thresholds(["a", "b"], tmp_path, fallback=[0.4, 0.7])
    assert thr[1] == 0.7 and thr[0] != 0.4 and source.startswith("val (members' mean")


def test_segmentation_vote_maps_average_or_take_the_majority(monkeypatch):
    import medsift.label.seg_ensemble as se

    truth = np.zeros((1, 4, 4), bool)
    truth[0, 1:3, 1:3] = True
    members = {"a": np.array([[[200, 200, 0, 0]] * 4], np.uint8), "b": np.array([[[100, 0, 100, 0]] * 4], np.uint8),
               "c": np.array([[[200, 0, 0, 0]] * 4], np.uint8)}

    class FakeDataset:
        image_ids = np.array(["x"])
        positions = np.array([0])
        masks = truth

    def fake(run, workspace, split):
        return None, FakeDataset(), np.array([0]), members[run], {"threshold": 0.5}

    monkeypatch.setattr(se, "_member_probs", fake)
    _, _, _, soft, _, thr, dice = se.vote_maps(["a", "b", "c"], None, split="test")
    assert soft[0, 0].tolist() == [167, 67, 33, 0] and thr.tolist() == [0.5, 0.5, 0.5]
    # member a marks columns 0-1 (truth: columns 1-2 of rows 1-2): 2 of 8 predicted pixels right, 4 true pixels
    assert dice[0] == pytest.approx(2 * 2 / (8 + 4))
    _, _, _, hard, _, _, _ = se.vote_maps(["a", "b", "c"], None, split="test", vote="hard")
    assert hard[0, 0].tolist() == [170, 85, 0, 0]  # column 0: a and c above 0.5 (2 of 3); column 1: a only

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
    decided, frac = hard_vote(s, [0.5, 0.5])
    assert frac[:, 0].tolist() == [1.0, 0.0, 0.5, 0.5]
    # ties: mean 0.45 < 0.5 -> 0; mean 0.575 >= 0.5 -> 1
    assert decided[:, 0].tolist() == [1, 0, 0, 1]


def test_hard_vote_uses_each_runs_threshold():
    s = np.full((3, 1), 0.6)
    decided, frac = hard_vote(s, [0.5, 0.7, 0.3])
    assert np.allclose(frac[:, 0], [2 / 3]) and decided[:, 0].tolist() == [1]


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

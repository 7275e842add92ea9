"""Label-noise ranking (cleanlab on out-of-fold probabilities) and the findings merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medsift.label.noise import (fold_splits, merge_findings, noise_findings, out_of_fold_probs,
                                 rank_label_issues)


@pytest.fixture(scope="module")
def flipped():
    """Two separable blobs (40 per class, 10 patients); the label of row 7 (class 0) is flipped to 1."""
    rng = np.random.default_rng(0)
    y_true = np.r_[np.zeros(40), np.ones(40)].astype(int)
    x = rng.normal(size=(80, 2)) + 5.0 * y_true[:, None]
    y = y_true.copy()
    y[7] = 1
    groups = np.arange(80) % 10
    probs = out_of_fold_probs(x, y, fold_splits(y, groups, None, n_splits=5, seed=0))
    return y, probs


def test_flipped_label_ranked_first_and_flagged(flipped):
    y, probs = flipped
    ranked = rank_label_issues(y, probs)
    assert ranked["position"].iloc[0] == 7
    assert bool(ranked["is_issue"].iloc[0])
    assert ranked["is_issue"].sum() == 1


def test_out_of_fold_probs_are_confident_for_clean_rows(flipped):
    y, probs = flipped
    assert probs[7, 1] < 0.1  # the model that never saw row 7 calls it class 0
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_given_folds_are_used():
    folds = np.array([0, 1, 0, 1, 2, 2])
    splits = fold_splits(np.zeros(6), np.arange(6), folds)
    assert [t.tolist() for _, t in splits] == [[0, 2], [1, 3], [4, 5]]


def test_noise_findings_score_and_severity():
    ranked = pd.DataFrame({"position": [1, 0, 2], "label_quality": [0.01, 0.3, 0.9],
                           "is_issue": [True, True, False]})
    f = noise_findings(np.array(["a", "b", "c"]), np.array([0, 1, 0]), ranked, label="hemorrhage", source="t")
    assert f["image_id"].tolist() == ["b", "a"]
    assert f["severity"].tolist() == ["warning", "info"]  # never "error": clean would drop them unreviewed
    assert np.allclose(f["score"].astype(float), [0.99, 0.7])
    assert set(f["check"]) == {"label_noise"}


def test_merge_replaces_old_label_noise_rows_only(tmp_path):
    path = tmp_path / "audit" / "findings.csv"
    path.parent.mkdir()
    pd.DataFrame({"image_id": ["x", "y"], "check": ["duplicate", "label_noise"], "severity": ["warning", "error"],
                  "score": [0.5, 0.9], "detail": ["dup", "old"], "related_id": ["z", ""]}).to_csv(path, index=False)
    new = pd.DataFrame({"image_id": ["q"], "check": ["label_noise"], "severity": ["warning"], "score": [0.75],
                        "detail": ["new"], "related_id": [""]})
    merge_findings(path, new)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back[["image_id", "check", "detail"]].values.tolist() == [["x", "duplicate", "dup"],
                                                                     ["q", "label_noise", "new"]]
    assert back["related_id"].tolist() == ["z", ""]
    assert not list(path.parent.glob(".*.tmp"))

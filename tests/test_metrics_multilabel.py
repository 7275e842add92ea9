"""Multi-label metrics against scikit-learn on fixed inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from medsift.metrics.multilabel import multilabel_metrics, per_class_thresholds

Y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]])
P = np.array([[0.9, 0.2, 0.1], [0.3, 0.7, 0.2], [0.6, 0.4, 0.3], [0.2, 0.1, 0.8], [0.4, 0.3, 0.6],
              [0.1, 0.9, 0.4]])
THR = np.array([0.5, 0.5, 0.5])


def test_micro_macro_f1_match_sklearn():
    m = multilabel_metrics(Y, P, THR, ["ivh", "sah", "sdh"])
    d = (P >= 0.5).astype(int)
    assert m["micro_f1"] == pytest.approx(f1_score(Y, d, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(Y, d, average="macro"))
    assert m["sah_f1"] == pytest.approx(f1_score(Y[:, 1], d[:, 1]))


def test_macro_auc_matches_sklearn():
    m = multilabel_metrics(Y, P, THR, ["ivh", "sah", "sdh"])
    assert m["macro_auc"] == pytest.approx(roc_auc_score(Y, P, average="macro"))
    assert m["ivh_auc"] == pytest.approx(roc_auc_score(Y[:, 0], P[:, 0]))


def test_per_class_thresholds_maximise_each_f1():
    thr = per_class_thresholds(Y, P)
    for k in range(3):
        best = max(f1_score(Y[:, k], (P[:, k] >= t).astype(int)) for t in np.unique(P[:, k]))
        assert f1_score(Y[:, k], (P[:, k] >= thr[k]).astype(int)) == pytest.approx(best)


def test_absent_class_is_skipped_in_macro_auc():
    y = Y.copy()
    y[:, 2] = 0
    m = multilabel_metrics(y, P, THR, ["ivh", "sah", "sdh"])
    assert np.isnan(m["sdh_auc"])
    assert m["macro_auc"] == pytest.approx(np.mean([m["ivh_auc"], m["sah_auc"]]))

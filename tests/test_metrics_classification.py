"""Binary metrics against scikit-learn and hand-computed values; threshold selection; pooling; bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, precision_score, recall_score,
                             roc_auc_score)

from medsift.errors import ConfigError
from medsift.metrics.bootstrap import bootstrap_dict, patient_bootstrap_ci
from medsift.metrics.classification import (at_label_edge, binary_metrics, choose_threshold, label_edge_errors,
                                            pool_by_group, pr_auc, roc_auc, threshold_metrics)

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.55, 0.3, 0.05])


def test_threshold_metrics_match_sklearn():
    m = threshold_metrics(Y, P, 0.5)
    d = (P >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, d))
    assert m["precision"] == pytest.approx(precision_score(Y, d))
    assert m["recall"] == pytest.approx(recall_score(Y, d))
    assert m["f1"] == pytest.approx(f1_score(Y, d))
    # hand count: predictions >= 0.5 are idx 3,5,6,7 -> tp=3 fp=1; negatives 5, tn=4
    assert m["specificity"] == pytest.approx(4 / 5)


def test_auc_matches_sklearn_and_hand_value():
    assert roc_auc(Y, P) == pytest.approx(roc_auc_score(Y, P))
    assert pr_auc(Y, P) == pytest.approx(average_precision_score(Y, P))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auc_is_nan_with_one_class():
    assert np.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert np.isnan(pr_auc([0, 0], [0.2, 0.5]))


def test_max_f1_threshold_is_best_over_all_cuts():
    choice = choose_threshold(Y, P, rule="max_f1")
    best = max(f1_score(Y, (P >= t).astype(int)) for t in np.unique(P))
    assert choice.value == pytest.approx(best)
    assert f1_score(Y, (P >= choice.threshold).astype(int)) == pytest.approx(best)


def test_sensitivity_threshold_is_highest_reaching_target():
    # positives' scores: 0.35, 0.8, 0.9, 0.55, 0.3 -> 80% recall needs threshold 0.35
    choice = choose_threshold(Y, P, rule="sensitivity", target_sensitivity=0.8)
    assert choice.threshold == pytest.approx(0.35)
    assert choice.value == pytest.approx(0.8)


def test_threshold_rule_rejects_unknown_name():
    with pytest.raises(ConfigError, match="max_f1"):
        choose_threshold(Y, P, rule="youden")


def test_pool_by_group_max_and_mean():
    names, yg, sg = pool_by_group([0, 1, 0, 0], [0.2, 0.9, 0.1, 0.3], ["a", "a", "b", "b"], how="max")
    assert names.tolist() == ["a", "b"] and yg.tolist() == [1, 0] and sg.tolist() == [0.9, 0.3]
    _, _, mean = pool_by_group([0, 1, 0, 0], [0.2, 0.9, 0.1, 0.3], ["a", "a", "b", "b"], how="mean")
    assert mean.tolist() == pytest.approx([0.55, 0.2])


def test_bootstrap_resamples_whole_patients():
    # patient A: 3 positive slices, patient B: 1 negative -> resampled means can only be 1, 0.75 or 0
    y = np.array([1, 1, 1, 0])
    est, low, high = patient_bootstrap_ci(lambda a, b: float(np.mean(a)), y, y, ["A", "A", "A", "B"], n=400, seed=1)
    assert est == pytest.approx(0.75)
    assert low == 0.0 and high == 1.0


def test_bootstrap_is_seeded_and_brackets_estimate():
    groups = np.repeat(np.arange(5), 2)
    a = bootstrap_dict(lambda y, p: binary_metrics(y, p, 0.5), Y, P, groups, n=200, seed=3)
    b = bootstrap_dict(lambda y, p: binary_metrics(y, p, 0.5), Y, P, groups, n=200, seed=3)
    assert a == b or all((np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in a)
    assert a["auc_ci_low"] <= a["auc"] <= a["auc_ci_high"]


def test_label_edge_marks_both_sides_of_each_change_within_a_stack_only():
    # stack A: slices 0..4 labelled 0 1 1 1 0; stack B: slices 5..7 labelled 1 1 1 (no change); C: one slice
    y = [0, 1, 1, 1, 0, 1, 1, 1, 0]
    nb = [[0, 1], [0, 2], [1, 3], [2, 4], [3, 4], [5, 6], [5, 7], [6, 7], [8, 8]]
    # slice 4 (0) and slice 5 (1) are neighbours in the array but not in a stack: no edge between them
    assert at_label_edge(y, nb).tolist() == [True, True, False, True, True, False, False, False, False]


def test_label_edge_rejects_neighbours_of_another_length():
    with pytest.raises(ConfigError, match="neighbours"):
        at_label_edge([0, 1, 1], [[0, 1], [0, 2]])
    with pytest.raises(ConfigError, match="neighbours"):
        at_label_edge([0, 1], [[0, 1], [0, 2]])


def test_label_edge_errors_split_errors_and_score_the_rest():
    y = np.array([0, 1, 1, 1, 0, 0, 0])
    d = np.array([1, 1, 1, 0, 0, 1, 0])  # errors: slice 0 (edge), slice 3 (edge), slice 5 (inside)
    edge = np.array([True, True, False, True, True, False, False])
    out = label_edge_errors(y, d, edge)
    assert out == {"errors": 3, "errors_at_label_edge": 2, "n_label_edge": 4,
                   "f1_off_label_edge": pytest.approx(2 * 1 / (2 * 1 + 1 + 0))}  # off edge: tp 1 (slice 2), fp 1

"""Binary classification metrics on scores: pure functions of ``(y_true, y_score[, threshold])``.

``y_true`` is a (N,) array of 0/1, ``y_score`` a (N,) array of probabilities (any monotone score works for
the ranking metrics). Metrics that are undefined on the input (AUC with one class, precision with no positive
call) return ``nan`` rather than raising, so that bootstrap resamples missing a class are simply skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from medsift.errors import ConfigError


def _arrays(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ConfigError(f"y_true and y_score must have the same length; got {y.shape[0]} and {p.shape[0]}")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise ConfigError(f"y_true must hold 0/1; got {y[bad][0]!r}")
    return y, p


def confusion(y_true, y_pred) -> dict[str, int]:
    """Counts ``tp, fp, tn, fn`` of 0/1 predictions against 0/1 truth."""
    y, d = _arrays(y_true, y_pred)
    d = d.astype(np.int64)
    return {"tp": int(((y == 1) & (d == 1)).sum()), "fp": int(((y == 0) & (d == 1)).sum()),
            "tn": int(((y == 0) & (d == 0)).sum()), "fn": int(((y == 1) & (d == 0)).sum())}


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def threshold_metrics(y_true, y_score, threshold: float) -> dict[str, float]:
    """accuracy, precision, recall (sensitivity), specificity and F1 of ``score >= threshold``."""
    y, p = _arrays(y_true, y_score)
    c = confusion(y, (p >= threshold).astype(np.int64))
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    precision, recall = _div(tp, tp + fp), _div(tp, tp + fn)
    return {
        "accuracy": _div(tp + tn, len(y)),
        "precision": precision,
        "recall": recall,
        "specificity": _div(tn, tn + fp),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
    }


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (scikit-learn); ``nan`` when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, p = _arrays(y_true, y_score)
    if len(y) == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def pr_auc(y_true, y_score) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn); ``nan`` without positives."""
    from sklearn.metrics import average_precision_score

    y, p = _arrays(y_true, y_score)
    if y.sum() == 0:
        return float("nan")
    return float(average_precision_score(y, p))


def binary_metrics(y_true, y_score, threshold: float) -> dict[str, float]:
    """Every point metric of a binary classifier: threshold metrics plus ``auc`` and ``pr_auc``."""
    out = threshold_metrics(y_true, y_score, threshold)
    out["auc"] = roc_auc(y_true, y_score)
    out["pr_auc"] = pr_auc(y_true, y_score)
    return out


class ThresholdRule(str, Enum):
    """How the decision threshold is chosen on validation scores."""

    MAX_F1 = "max_f1"
    SENSITIVITY = "sensitivity"   # highest threshold reaching a target sensitivity
    FIXED = "fixed"               # 0.5


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen threshold and the validation value it achieved (F1 or sensitivity)."""

    threshold: float
    value: float
    rule: str


def choose_threshold(y_true, y_score, *, rule: ThresholdRule | str = ThresholdRule.MAX_F1,
                     target_sensitivity: float = 0.95) -> ThresholdChoice:
    """Pick a decision threshold on validation data.

    ``max_f1`` scans every distinct score and returns the threshold with the highest F1 (ties: the
    highest threshold, i.e. the most specific). ``sensitivity`` returns the highest threshold whose recall
    is at least ``target_sensitivity``. Without positives or negatives the rule falls back to 0.5.
    """
    try:
        rule = ThresholdRule(rule)
    except ValueError:
        raise ConfigError(f"threshold rule must be one of {[r.value for r in ThresholdRule]}; got {rule!r}") from None
    if not 0.0 < target_sensitivity <= 1.0:
        raise ConfigError(f"target_sensitivity must be in (0, 1]; got {target_sensitivity!r}")
    y, p = _arrays(y_true, y_score)
    n_pos = int(y.sum())
    if rule is ThresholdRule.FIXED or n_pos == 0 or n_pos == len(y):
        return ThresholdChoice(0.5, float("nan"), rule.value)
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[ps[1:] != ps[:-1], True]   # thresholds = distinct scores, predicting >= score
    thr, tp, fp = ps[last], tp[last], fp[last]
    if rule is ThresholdRule.MAX_F1:
        f1 = 2 * tp / (2 * tp + fp + (n_pos - tp))
        best = int(np.flatnonzero(f1 == f1.max())[0])
        return ThresholdChoice(float(thr[best]), float(f1[best]), rule.value)
    recall = tp / n_pos
    ok = np.flatnonzero(recall >= target_sensitivity - 1e-12)
    best = int(ok[0])
    return ThresholdChoice(float(thr[best]), float(recall[best]), rule.value)


def curves(y_true, y_score) -> dict[str, np.ndarray]:
    """ROC (``fpr``, ``tpr``) and precision-recall (``precision``, ``recall``) curve points (scikit-learn)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, p = _arrays(y_true, y_score)
    out: dict[str, np.ndarray] = {}
    if 0 < y.sum() < len(y):
        out["fpr"], out["tpr"], _ = roc_curve(y, p)
    if y.sum() > 0:
        out["precision"], out["recall"], _ = precision_recall_curve(y, p)
    return out


def pool_by_group(y_true, y_score, groups, *, how: str = "max") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scan-level results: per group (patient) label = any positive slice, score = max or mean slice score.

    Returns ``(group_names, y_group, score_group)`` sorted by group name.
    """
    if how not in ("max", "mean"):
        raise ConfigError(f"pooling must be 'max' or 'mean'; got {how!r}")
    y, p = _arrays(y_true, y_score)
    g = np.asarray(groups).astype(str).ravel()
    names, inv = np.unique(g, return_inverse=True)
    yg = np.zeros(len(names), dtype=np.int64)
    np.maximum.at(yg, inv, y)
    if how == "max":
        sg = np.full(len(names), -np.inf)
        np.maximum.at(sg, inv, p)
    else:
        sg = np.bincount(inv, weights=p, minlength=len(names)) / np.bincount(inv, minlength=len(names))
    return names, yg, sg


def at_label_edge(y_true, neighbours) -> np.ndarray:
    """Slices whose label differs from that of a neighbouring slice of the same stack.

    Args:
        y_true: (N,) 0/1 slice labels.
        neighbours: (N, 2) int positions (into ``y_true``) of each slice's previous and next slice in its stack,
            the slice itself at the ends (columns 0 and 2 of :func:`medsift.preprocess.stack.neighbour_positions`
            with ``context=1``).

    Returns:
        (N,) bool: the first and last slice of each run of positives and the negative slice just outside it.
        Which slice an annotator boxes first is the least certain part of a per-slice label.

    Example:
        >>> at_label_edge([0, 0, 1, 1, 1, 0], [[0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 5]]).tolist()
        [False, True, True, False, True, True]
    """
    y = np.asarray(y_true).astype(np.int64).ravel()
    nb = np.asarray(neighbours, dtype=np.int64).reshape(-1, 2)
    if nb.shape[0] != y.shape[0] or (len(nb) and (nb.min() < 0 or nb.max() >= len(y))):
        raise ConfigError(f"neighbours must be ({len(y)}, 2) positions into y_true; got shape {nb.shape}")
    return (y[nb[:, 0]] != y) | (y[nb[:, 1]] != y)


def label_edge_errors(y_true, y_pred, edge) -> dict[str, float]:
    """Where the errors of 0/1 predictions lie: on label-edge slices (see :func:`at_label_edge`) or inside.

    Returns ``errors``, ``errors_at_label_edge``, ``n_label_edge`` (slices at an edge) and ``f1_off_label_edge``
    (F1 over the slices that are not at an edge): a diagnostic of how much of a shortfall is the label's
    boundary, never a replacement for ``f1``.
    """
    y, d = _arrays(y_true, y_pred)
    e = np.asarray(edge, dtype=bool).ravel()
    if e.shape != y.shape:
        raise ConfigError(f"edge must have one flag per slice ({len(y)}); got {e.shape[0]}")
    wrong = y != d
    return {"errors": int(wrong.sum()), "errors_at_label_edge": int((wrong & e).sum()), "n_label_edge": int(e.sum()),
            "f1_off_label_edge": threshold_metrics(y[~e], d[~e], 0.5)["f1"]}

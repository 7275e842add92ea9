"""Multi-label metrics: per-class binary metrics plus micro/macro aggregates.

``y_true`` and ``y_score`` are (N, K) arrays (0/1 truth, probabilities); ``thresholds`` is (K,).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from medsift.errors import ConfigError
from medsift.metrics.classification import binary_metrics, choose_threshold, confusion


def _arrays2d(y_true, y_score, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 2 or y.shape != p.shape or y.shape[1] != len(names):
        raise ConfigError(f"multi-label arrays must be (N, {len(names)}); got {y.shape} and {p.shape}")
    return y, p


def per_class_thresholds(y_true, y_score, *, rule: str = "max_f1", target_sensitivity: float = 0.95) -> np.ndarray:
    """One threshold per column chosen with :func:`~medsift.metrics.classification.choose_threshold`."""
    y = np.asarray(y_true)
    p = np.asarray(y_score)
    return np.array([choose_threshold(y[:, k], p[:, k], rule=rule, target_sensitivity=target_sensitivity).threshold
                     for k in range(y.shape[1])])


def micro_f1(y_true, y_score, thresholds) -> float:
    """F1 of all (image, class) decisions pooled."""
    y = np.asarray(y_true).astype(np.int64)
    d = (np.asarray(y_score) >= np.asarray(thresholds)[None, :]).astype(np.int64)
    c = confusion(y.ravel(), d.ravel())
    den = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / den if den else float("nan")


def multilabel_metrics(y_true, y_score, thresholds, names: Sequence[str]) -> dict[str, float]:
    """Flat dict: ``<name>_<metric>`` for every class, ``macro_auc``, ``macro_f1``, ``micro_f1``.

    Macro averages skip classes whose metric is undefined (nan), e.g. a class absent from the data.
    """
    y, p = _arrays2d(y_true, y_score, names)
    thr = np.asarray(thresholds, dtype=np.float64)
    out: dict[str, float] = {}
    f1s, aucs = [], []
    for k, name in enumerate(names):
        m = binary_metrics(y[:, k], p[:, k], float(thr[k]))
        for key in ("precision", "recall", "specificity", "f1", "auc", "pr_auc"):
            out[f"{name}_{key}"] = m[key]
        out[f"{name}_threshold"] = float(thr[k])
        f1s.append(m["f1"])
        aucs.append(m["auc"])
    out["macro_f1"] = float(np.nanmean(f1s)) if not np.all(np.isnan(f1s)) else float("nan")
    out["macro_auc"] = float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")
    out["micro_f1"] = micro_f1(y, p, thr)
    return out

"""Label noise: rank likely label errors from out-of-fold predicted probabilities (cleanlab's confident learning).

Every labelled row gets a probability from a model that never saw its label: a standardised logistic regression
on image features (a run's CNN embeddings, or label-free thumbnail features), fitted fold by fold over the
manifest's patient-level ``fold`` column (or a stratified group k-fold by patient when folds are missing).
:func:`cleanlab.filter.find_label_issues` flags the rows whose given label disagrees with those probabilities
beyond the estimated per-class noise rates; :func:`cleanlab.rank.get_label_quality_scores` (self-confidence,
the out-of-fold probability of the given label) orders them.

Findings go into ``WS/audit/findings.csv`` as check ``label_noise`` (``score = 1 - label quality``), replacing
earlier ``label_noise`` rows and keeping every other check's rows.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.manifest import atomic_write_bytes

CHECK = "label_noise"
FINDING_COLUMNS: tuple[str, ...] = ("image_id", "check", "severity", "score", "detail", "related_id")
WARNING_QUALITY = 0.05
"""Out-of-fold probability of the given label below which a flagged row is a ``warning`` (else ``info``).
Never ``error``: ``medsift clean`` excludes errors by default, and a suspected label error needs an expert."""


def default_classifier(*, C: float = 0.1, seed: int = 0):
    """StandardScaler + L2 logistic regression (lbfgs), the out-of-fold model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))


def fold_splits(y: np.ndarray, groups: np.ndarray, folds: np.ndarray | None, *, n_splits: int = 5,
                seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test index pairs: the given ``folds`` (N,) when every row has one and there are >= 2 folds, else a
    stratified group k-fold by ``groups`` (patients) with ``min(n_splits, n_groups)`` splits."""
    from sklearn.model_selection import StratifiedGroupKFold

    if folds is not None:
        f = pd.Series(folds).astype("Int64")
        if f.notna().all() and f.nunique() >= 2:
            arr = f.to_numpy(dtype=np.int64)
            return [(np.flatnonzero(arr != k), np.flatnonzero(arr == k)) for k in sorted(set(arr.tolist()))]
    n_groups = len(set(groups.tolist()))
    k = min(n_splits, n_groups)
    if k < 2:
        raise ConfigError(f"out-of-fold probabilities need >= 2 patient groups; got {n_groups}")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def out_of_fold_probs(x: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], *,
                      make_model: Callable[[], object] | None = None) -> np.ndarray:
    """(N, 2) out-of-fold class probabilities of 0/1 labels ``y`` (N,) from features ``x`` (N, D).

    A fold whose training part holds one class only predicts that class's training frequency.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(y):
        raise ConfigError(f"features must be (N, D) with one label per row; got {x.shape} and {y.shape}")
    make_model = make_model or default_classifier
    probs = np.full((len(y), 2), np.nan)
    for train, test in splits:
        if len(np.unique(y[train])) < 2:
            probs[test] = [1.0 - y[train].mean(), y[train].mean()]
            continue
        model = make_model()
        model.fit(x[train], y[train])
        probs[test] = model.predict_proba(x[test])
    if np.isnan(probs).any():
        raise ConfigError("some rows are in no test fold; folds must cover every row")
    return probs


def rank_label_issues(y: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """cleanlab on 0/1 labels ``y`` (N,) and out-of-fold ``probs`` (N, 2).

    Returns:
        One row per input position: ``position``, ``label_quality`` (self-confidence, 0..1), ``is_issue``,
        sorted by ``label_quality`` ascending (likeliest errors first).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ConfigError(f"label-noise ranking needs both classes; got only {np.unique(y).tolist()}")
    issues = find_label_issues(labels=y, pred_probs=probs, filter_by="prune_by_noise_rate")
    quality = get_label_quality_scores(labels=y, pred_probs=probs, method="self_confidence")
    table = pd.DataFrame({"position": np.arange(len(y)), "label_quality": quality, "is_issue": issues})
    return table.sort_values(["label_quality", "position"], kind="stable").reset_index(drop=True)


def noise_findings(image_ids: np.ndarray, y: np.ndarray, ranked: pd.DataFrame, *, label: str,
                   source: str) -> pd.DataFrame:
    """Findings rows (check ``label_noise``) for the flagged rows of :func:`rank_label_issues`."""
    flagged = ranked[ranked["is_issue"]]
    ids = np.asarray(image_ids, dtype=object)[flagged["position"].to_numpy()]
    given = np.asarray(y)[flagged["position"].to_numpy()]
    q = flagged["label_quality"].to_numpy(dtype=float)
    return pd.DataFrame({
        "image_id": ids.astype(str),
        "check": CHECK,
        "severity": np.where(q < WARNING_QUALITY, "warning", "info"),
        "score": np.round(1.0 - q, 4),
        "detail": [f"label_{label}={int(g)} but out-of-fold p(label_{label}={int(g)})={v:.3f} ({source})"
                   for g, v in zip(given, q)],
        "related_id": "",
    }, columns=list(FINDING_COLUMNS))


def merge_findings(path: str | Path, new: pd.DataFrame, *, check: str = CHECK) -> pd.DataFrame:
    """Rows of the findings CSV at ``path`` (absent = none) without ``check`` rows, plus ``new``; written
    atomically back to ``path``. Returns the merged table."""
    path = Path(path)
    if path.is_file():
        old = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in FINDING_COLUMNS:
            if col not in old.columns:
                old[col] = ""
        old = old[old["check"] != check]
    else:
        old = pd.DataFrame(columns=list(FINDING_COLUMNS))
    new = new.copy()
    new["score"] = [f"{float(s):.4f}" for s in new["score"]]
    merged = pd.concat([old, new.astype(str)], ignore_index=True)
    buf = io.StringIO()
    merged.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())
    return merged


def find_label_noise(workspace: str | Path, *, label: str = "hemorrhage", run: str | Path | None = None,
                     n_splits: int = 5, seed: int = 0, size: int = 64, include_pseudo: bool = False,
                     write: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank likely label errors of ``label`` over the active labelled rows of ``workspace``.

    Args:
        run: use this run's CNN embeddings as features (its encoder has seen the training labels, so out-of-fold
            applies to the logistic regression only); default: label-free thumbnail features at ``size`` px.
        include_pseudo: also check pseudo-labelled rows (default: human labels only).
        write: replace the ``label_noise`` rows of ``WS/audit/findings.csv``.

    Returns:
        ``(findings, ranked)``: the findings rows and every checked row with ``image_id``, ``patient_id``,
        ``label``, ``p_oof`` (out-of-fold probability of class 1), ``label_quality``, ``is_issue``.
    """
    from medsift.label.features import image_features, is_pseudo, known_labels, run_outputs
    from medsift.manifest import active
    from medsift.workspace import Workspace

    ws = Workspace.at(workspace)
    df = active(ws.read())
    y = known_labels(df, (label,))[:, 0]
    keep = ~np.isnan(y) & (include_pseudo | ~is_pseudo(df))
    df, y = df[keep], y[keep].astype(np.int64)
    if len(df) < 4:
        raise ConfigError(f"need at least 4 labelled rows of label_{label}; got {len(df)}")
    if run is not None:
        x, source = run_outputs(run, ws.root, df).embeddings, f"CNN features of {Path(run).name}"
    else:
        x, source = image_features(ws.root, df, size=size), f"thumbnail features {size}px"
    groups = df["patient_id"].astype(str).to_numpy()
    folds = df["fold"].to_numpy() if "fold" in df.columns else None
    probs = out_of_fold_probs(x, y, fold_splits(y, groups, folds, n_splits=n_splits, seed=seed),
                              make_model=lambda: default_classifier(seed=seed))
    ranked = rank_label_issues(y, probs)
    ids = df["image_id"].astype(str).to_numpy()
    findings = noise_findings(ids, y, ranked, label=label, source=f"logistic regression, {source}")
    pos = ranked["position"].to_numpy()
    table = pd.DataFrame({"image_id": ids[pos], "patient_id": groups[pos], "label": y[pos],
                          "p_oof": probs[pos, 1], "label_quality": ranked["label_quality"].to_numpy(),
                          "is_issue": ranked["is_issue"].to_numpy()})
    if write:
        merge_findings(ws.sub("audit") / "findings.csv", findings)
    return findings, table

"""Two-stage models: CNN features of a trained run feed a classical classifier (SVM or gradient-boosted trees)
tuned by a patient-grouped grid search (scikit-learn), optionally one per contrast group (:mod:`.gate`).

The first stage is any finished run: its classifier head's input (pooled CNN features, see
:func:`medsift.label.features.run_outputs`). The second stage is fitted on the ``train`` and ``val`` rows and
evaluated on ``test``, next to the run's own probabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import ConfigError
from medsift.registry import Registry


class StageTwo(str, Enum):
    """Second-stage classifier."""

    SVM = "svm"
    GBT = "gbt"
    LOGREG = "logreg"


STAGE_TWO: Registry = Registry("second-stage classifier")


@STAGE_TWO.register(StageTwo.SVM.value)
def _svm(seed: int) -> tuple[Any, dict[str, list]]:
    """RBF SVM on standardised features, Platt-scaled on 3 internal folds; grid over C and gamma."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svm = CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), method="sigmoid", cv=3, ensemble=False)
    model = make_pipeline(StandardScaler(), svm)
    key = "calibratedclassifiercv__estimator__"
    return model, {f"{key}C": [0.1, 1.0, 10.0], f"{key}gamma": ["scale", 0.01]}


@STAGE_TWO.register(StageTwo.GBT.value)
def _gbt(seed: int) -> tuple[Any, dict[str, list]]:
    """Histogram gradient-boosted trees; grid over learning rate, depth and L2."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=150, random_state=seed)
    return model, {"learning_rate": [0.05, 0.1], "max_depth": [2, 4], "l2_regularization": [0.0, 1.0]}


@STAGE_TWO.register(StageTwo.LOGREG.value)
def _logreg(seed: int) -> tuple[Any, dict[str, list]]:
    """Standardised L2 logistic regression; grid over C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return model, {"logisticregression__C": [0.01, 0.1, 1.0]}


@dataclass(frozen=True)
class GridResult:
    """Best estimator (refitted on all rows), its parameters and mean cross-validated AUC."""

    estimator: Any
    params: dict[str, Any]
    cv_auc: float


def grid_search(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, kind: StageTwo | str = StageTwo.SVM,
                n_splits: int = 3, seed: int = 0, n_jobs: int = 1) -> GridResult:
    """Grid-search ``kind`` on (N, D) features and 0/1 labels with a stratified group k-fold by patient (AUC)."""
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    try:
        kind = StageTwo(kind)
    except ValueError:
        raise ConfigError(f"second stage must be one of {[k.value for k in StageTwo]}; got {kind!r}") from None
    y = np.asarray(y, dtype=np.int64)
    k = min(n_splits, len(set(np.asarray(groups).tolist())))
    if k < 2 or len(np.unique(y)) < 2:
        raise ConfigError(f"grid search needs both classes and >= 2 patients; got classes {np.unique(y).tolist()}, "
                          f"{k} patient group(s)")
    model, grid = STAGE_TWO.get(kind.value)(seed)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    search = GridSearchCV(model, grid, scoring="roc_auc", cv=cv, n_jobs=n_jobs, refit=True, error_score=np.nan)
    search.fit(np.asarray(x, dtype=np.float64), y, groups=np.asarray(groups))
    return GridResult(search.best_estimator_, dict(search.best_params_), float(search.best_score_))


def two_stage_run(run: str | Path, workspace: str | Path, out: str | Path, *, kind: StageTwo | str = StageTwo.SVM,
                  gate: bool = False, seed: int = 0, thumb_size: int = 64) -> dict[str, Any]:
    """Fit ``kind`` on ``run``'s CNN features of WS's train+val rows, evaluate on ``test``; with ``gate``, one
    tuned model per contrast group. Writes ``out/two_stage-<kind>[-gated].json`` and returns its content."""
    from medsift.label.features import known_labels, run_outputs
    from medsift.label.gate import ContrastGate, GatedClassifier, rms_contrast
    from medsift.manifest import active, atomic_write_bytes
    from medsift.metrics.classification import binary_metrics, choose_threshold
    from medsift.workspace import Workspace

    kind = StageTwo(kind)
    ws = Workspace.at(workspace)
    df = active(ws.read())
    meta = json.loads((Path(run) / "model.json").read_text())
    label = meta["labels"][0]
    y = known_labels(df, (label,))[:, 0]
    df, y = df[~np.isnan(y)], y[~np.isnan(y)].astype(np.int64)
    fit_rows = df["split"].isin(["train", "val"]).to_numpy()
    test_rows = (df["split"] == "test").to_numpy()
    if not fit_rows.any() or not test_rows.any():
        raise ConfigError(f"two-stage needs labelled train/val and test rows in {ws.root}")
    outs = run_outputs(run, ws.root, df)
    x, patients = outs.embeddings, df["patient_id"].astype(str).to_numpy()
    best = grid_search(x[fit_rows], y[fit_rows], patients[fit_rows], kind=kind, seed=seed)
    result: dict[str, Any] = {"kind": kind.value, "gated": gate, "run": str(run), "label": label,
                              "best_params": best.params, "cv_auc": best.cv_auc,
                              "n_fit": int(fit_rows.sum()), "n_test": int(test_rows.sum())}
    if gate:
        from medsift.label.features import thumbnail_array

        contrast = rms_contrast(thumbnail_array(ws.root, df, size=thumb_size))
        gated = GatedClassifier(best.estimator, gate=ContrastGate.fit(contrast[fit_rows]))
        gated.fit(x[fit_rows], y[fit_rows], contrast[fit_rows])
        p_fit = gated.predict_proba(x[fit_rows], contrast[fit_rows])[:, 1]
        p_test = gated.predict_proba(x[test_rows], contrast[test_rows])[:, 1]
        groups = gated.gate.route(contrast[test_rows])
        result["gate_threshold"] = gated.gate.threshold
        result["test_high_contrast_share"] = float(groups.mean())
    else:
        p_fit = best.estimator.predict_proba(x[fit_rows])[:, 1]
        p_test = best.estimator.predict_proba(x[test_rows])[:, 1]
    thr = choose_threshold(y[fit_rows], p_fit, rule="max_f1").threshold
    result["threshold"] = float(thr)
    result["test"] = binary_metrics(y[test_rows], p_test, thr)
    result["cnn_test"] = binary_metrics(y[test_rows], outs.probs[test_rows, 0], float(outs.thresholds[0]))
    name = f"two_stage-{kind.value}{'-gated' if gate else ''}.json"
    atomic_write_bytes(Path(out) / name, json.dumps(result, indent=1, default=float).encode())
    return result

"""Ensembles of runs: soft and hard voting, and k-fold training from the split's patient-level folds.

Scores are stacked as ``(M, N, K)``: M runs (or folds), N images, K labels.

* soft vote: the (weighted) mean probability; its threshold (one per label) is chosen on the validation
  patients by the members' rule (:func:`soft_thresholds`), or is the mean of the runs' thresholds when there is
  no ``val``.
* hard vote: each run votes ``p >= its threshold``; positive when more than half vote so; a tie goes to the
  soft vote against the mean threshold. The ensemble's score is the vote fraction, nudged by at most
  ``TIE_BREAK`` towards the soft vote, so that ``score >= 0.5`` is exactly the decision (the metrics and their
  bootstrap CIs score the same decisions as ``pred``) and equal fractions rank by the soft vote.

Segmentation runs are voted pixel by pixel in :mod:`medsift.label.seg_ensemble`.

Seed ensembles (:func:`train_seeds`) train the same config with N seeds, side by side on the CPU cores.
K-fold training (:func:`train_kfold`) trains one run per fold ``k``: fold ``k`` is its validation set, the other
folds its training set, and ``test`` stays untouched, so the fold runs can be evaluated and voted on ``test``.

Example:
    >>> soft_vote(np.array([[[0.2]], [[0.6]]])).tolist()
    [[0.4]]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError


class Vote(str, Enum):
    """How an ensemble combines its members."""

    SOFT = "soft"
    HARD = "hard"


def _stack(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2:
        s = s[:, :, None]
    if s.ndim != 3 or s.shape[0] < 1:
        raise ConfigError(f"scores must be (M runs, N images, K labels); got shape {s.shape}")
    return s


def soft_vote(scores, *, weights: Sequence[float] | None = None) -> np.ndarray:
    """(N, K) weighted mean of (M, N, K) probabilities (equal weights by default)."""
    s = _stack(scores)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(s),) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"weights must be {len(s)} non-negative numbers with a positive sum; got {weights!r}")
    return np.tensordot(w / w.sum(), s, axes=1)


TIE_BREAK = 1e-3
"""Largest nudge of a hard vote's fraction by the soft vote: well below one vote in 1/1000 runs."""


def hard_vote(scores, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote of (M, N, K) probabilities at per-run thresholds (M, K) (or (M,), or a scalar).

    Returns:
        ``(decisions (N, K) int 0/1, score (N, K))``: the fraction of runs voting positive plus
        ``TIE_BREAK * (soft vote - mean threshold)``, so ``decisions == (score >= 0.5)``.
    """
    s = _stack(scores)
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64).reshape(-1, 1) if np.ndim(thresholds) == 1
                        else np.asarray(thresholds, dtype=np.float64), (s.shape[0], s.shape[2]))
    frac = (s >= t[:, None, :]).mean(axis=0)
    score = np.clip(frac + TIE_BREAK * (soft_vote(s) - t.mean(axis=0)[None, :]), 0.0, 1.0)
    return (score >= 0.5).astype(np.int64), score


def fold_manifest(df: pd.DataFrame, fold: int) -> pd.DataFrame:
    """A copy of ``df`` whose non-test rows of fold ``fold`` are ``val`` and other folds ``train``."""
    if "fold" not in df.columns or df["fold"].isna().all():
        raise ConfigError("the manifest has no folds; run `medsift split WS --folds K` first")
    out = df.copy()
    has = out["fold"].notna() & (out["split"] != "test")
    folds = sorted(int(f) for f in out.loc[has, "fold"].unique())
    if fold not in folds:
        raise ConfigError(f"fold {fold} not in the manifest; folds: {folds}")
    out.loc[has, "split"] = np.where(out.loc[has, "fold"].astype(int) == fold, "val", "train")
    return out


def train_kfold(workspace: str | Path, out: str | Path, config, *, folds: Sequence[int] | None = None,
                log: Callable[[str], None] | None = None) -> list[Path]:
    """Train one run per fold into ``out/fold<k>/run``; returns the run folders.

    Each fold gets a workspace ``out/fold<k>/ws`` (the manifest with the fold as ``val``) whose ``cache``
    links to the source workspace's cache, so slices are decoded once.
    """
    from medsift.engine.runner import train_run
    from medsift.manifest import active
    from medsift.workspace import Workspace

    ws = Workspace.at(workspace)
    df = ws.read()
    present = sorted(int(f) for f in active(df)["fold"].dropna().unique()) if "fold" in df.columns else []
    folds = list(folds) if folds is not None else present
    if len(present) < 2:
        raise ConfigError(f"k-fold training needs >= 2 folds in {ws.root}; got {present}")
    runs = []
    for k in folds:
        fws = Workspace.at(Path(out) / f"fold{k}" / "ws")
        fws.root.mkdir(parents=True, exist_ok=True)
        link = fws.root / "cache"
        if not link.exists():
            os.symlink(ws.sub("cache"), link, target_is_directory=True)
        fws.write(fold_manifest(df, k), reason=f"fold {k} as validation (k-fold ensemble of {ws.root})")
        run = Path(out) / f"fold{k}" / "run"
        if not (run / "model.json").is_file():
            train_run(fws.root, run, config, show_progress=False, log=log)
        runs.append(run)
    return runs


def _train_member(workspace: str, run: str, config: dict) -> str:
    """Train one member from a plain config dict in this (spawned) process; module-level so that it pickles."""
    from medsift.engine.config import TrainConfig
    from medsift.engine.runner import train_run

    train_run(workspace, run, TrainConfig.from_dict(config), show_progress=False)
    return run


def train_seeds(workspace: str | Path, out: str | Path, config, *, seeds: int, jobs: int = 1,
                log: Callable[[str], None] | None = None) -> list[Path]:
    """Train ``seeds`` runs of ``config`` that differ only in their seed (``config.seed + k``) into
    ``out/seed<k>/run``; returns the run folders.

    Why: averaging a second seed removes part of a small model's variance, and on a machine with two cores two
    single-thread runs side by side take the wall time of one. ``jobs`` runs train at a time, each in its own
    process (spawned: no forked OpenMP state) with ``config.threads`` or, when unset, ``cpu_count // jobs``
    threads. The slice cache is built once before the members start. A member whose ``model.json`` exists is
    kept (re-running the command resumes the ensemble, not the members).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from medsift.engine.config import apply_overrides
    from medsift.engine.runner import cache_for
    from medsift.manifest import active
    from medsift.workspace import Workspace

    if int(seeds) < 1 or int(jobs) < 1:
        raise ConfigError(f"seeds and jobs must be >= 1; got seeds={seeds!r}, jobs={jobs!r}")
    ws = Workspace.at(workspace)
    if not config.threads:
        config = apply_overrides(config, [f"threads={max(1, (os.cpu_count() or 1) // int(jobs))}"])
    cache_for(ws, active(ws.read()), config)
    runs = [Path(out) / f"seed{k}" / "run" for k in range(int(seeds))]
    todo = [(k, r) for k, r in enumerate(runs) if not (r / "model.json").is_file()]
    if log is not None and todo:
        log(f"training {len(todo)} member(s), {min(int(jobs), len(todo))} at a time, {config.threads} thread(s) each")
    members = [(str(ws.root), str(r), apply_overrides(config, [f"seed={int(config.seed) + k}"]).to_dict())
               for k, r in todo]
    if int(jobs) == 1 or len(members) == 1:
        for member in members:
            _train_member(*member)
    else:
        with ProcessPoolExecutor(max_workers=int(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in pool.map(_train_member, *zip(*members)):
                if log is not None:
                    log(f"member trained: {done}")
    return runs


@dataclass(frozen=True)
class MemberScores:
    """The runs' scores on the same rows: ids/patients (N,), targets (N, K), scores (M, N, K), thresholds (M, K),
    and each row's previous and next slice in its stack (N, 2) (positions into these rows)."""

    image_ids: np.ndarray
    patients: np.ndarray
    targets: np.ndarray
    scores: np.ndarray
    thresholds: np.ndarray
    labels: tuple[str, ...]
    neighbours: np.ndarray


def member_scores(runs: Sequence[str | Path], workspace: str | Path, *, split: str = "test") -> MemberScores:
    """Score the labelled rows of ``workspace``'s ``split`` (``all`` = every active row) with every run."""
    from medsift.label.features import known_labels, run_outputs
    from medsift.manifest import active
    from medsift.preprocess.stack import neighbour_positions
    from medsift.workspace import Workspace

    if not runs:
        raise ConfigError("an ensemble needs at least one run")
    ws = Workspace.at(workspace)
    df = active(ws.read())
    if split != "all":
        df = df[df["split"] == split]
    labels = None
    outs = []
    for run in runs:
        meta = _run_task(run)[1]
        if labels is None:
            labels = tuple(meta["labels"])
            y = known_labels(df, labels)
            df, y = df[~np.isnan(y).any(axis=1)], y[~np.isnan(y).any(axis=1)]
            if len(df) == 0:
                raise ConfigError(f"no labelled rows of {list(labels)} in split {split!r} of {ws.root}")
        elif tuple(meta["labels"]) != labels:
            raise ConfigError(f"runs predict different labels: {list(labels)} vs {meta['labels']} ({run})")
        outs.append(run_outputs(run, ws.root, df))
    return MemberScores(df["image_id"].astype(str).to_numpy(), df["patient_id"].astype(str).to_numpy(), y,
                        np.stack([o.probs for o in outs]), np.stack([o.thresholds for o in outs]), labels,
                        neighbour_positions(df, 1)[:, [0, 2]])


def _has_split(workspace: str | Path, split: str) -> bool:
    from medsift.manifest import active
    from medsift.workspace import Workspace

    df = active(Workspace.at(workspace).read())
    return "split" in df.columns and bool((df["split"] == split).any())


def soft_thresholds(runs: Sequence[str | Path], workspace: str | Path, *, fallback, split: str = "test",
                    rule: str = "max_f1", target_sensitivity: float = 0.95) -> tuple[np.ndarray, str]:
    """``(thresholds (K,), source)`` of a soft vote: chosen per label on the workspace's ``val`` rows by ``rule``
    (the members' own rule, like a single run's calibration) when another split is evaluated and ``val`` exists;
    otherwise ``fallback`` (K,) (the mean of the members' thresholds; a mean of several models' probabilities is
    not calibrated like any one of them, hence the validation choice). A label whose ``val`` rows are all
    positive or all negative keeps its fallback."""
    from medsift.metrics.classification import choose_threshold

    thr = np.array(np.atleast_1d(fallback), dtype=np.float64)
    if split == "val" or not _has_split(workspace, "val"):
        return thr, "members' mean"
    v = member_scores(runs, workspace, split="val")
    score = soft_vote(v.scores)
    chosen = 0
    for k in range(v.targets.shape[1]):
        y = v.targets[:, k].astype(np.int64)
        if 0 < y.sum() < len(y):
            thr[k] = choose_threshold(y, score[:, k], rule=rule, target_sensitivity=target_sensitivity).threshold
            chosen += 1
    return thr, ("val" if chosen == len(thr) else "val (members' mean where val has one class)" if chosen
                 else "members' mean")


def soft_threshold(runs: Sequence[str | Path], workspace: str | Path, *, fallback: float, split: str = "test",
                   rule: str = "max_f1", target_sensitivity: float = 0.95) -> tuple[float, str]:
    """The first label's threshold of :func:`soft_thresholds` (single-label runs)."""
    thr, source = soft_thresholds(runs, workspace, fallback=[fallback], split=split, rule=rule,
                                  target_sensitivity=target_sensitivity)
    return float(thr[0]), source


def _run_task(run: str | Path) -> tuple[str, dict]:
    meta_path = Path(run) / "model.json"
    if not meta_path.is_file():
        raise ConfigError(f"{run} is not a finished medsift run (no model.json)")
    meta = json.loads(meta_path.read_text())
    return str(meta.get("task", "classify")), meta


def evaluate_ensemble(runs: Sequence[str | Path], workspace: str | Path, out: str | Path, *,
                      vote: Vote | str = Vote.SOFT, split: str = "test", bootstrap: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Vote the runs on ``split`` and score the vote and every member.

    * one label (classify): ``ensemble_<key>`` for accuracy, precision, recall, specificity, f1, auc, pr_auc, and
      where the vote's errors lie (``ensemble_errors_at_label_edge``... of :func:`label_edge_errors`);
    * several labels (multilabel): ``ensemble_<label>_<key>``, ``ensemble_macro_f1``, ``ensemble_macro_auc``,
      ``ensemble_micro_f1``, one threshold per label;
    * segmentation runs: their probability maps are averaged (:mod:`medsift.label.seg_ensemble`).

    The soft vote's thresholds come from :func:`soft_thresholds` (validation patients when available); the
    ensemble's metrics carry patient-bootstrap 95% CIs (``ensemble_<key>_ci_low``/``_ci_high``, ``bootstrap``
    resamples). Members are scored at their own thresholds (``run<i>_<key>``). Writes ``out/metrics.json`` and
    ``out/predictions.csv`` (image_id, patient_id, then per label: label, score, pred, and one ``run<i>`` score
    column per member; single-label columns carry no label suffix).
    """
    from medsift.manifest import atomic_write_bytes
    from medsift.metrics.bootstrap import bootstrap_dict
    from medsift.metrics.classification import at_label_edge, label_edge_errors

    if not runs:
        raise ConfigError("an ensemble needs at least one run")
    vote = Vote(vote)
    metas = [_run_task(r) for r in runs]
    kinds = {task == "segment" for task, _ in metas}
    if kinds == {True}:
        from medsift.label.seg_ensemble import evaluate_seg_ensemble

        return evaluate_seg_ensemble(runs, workspace, out, vote=vote, split=split, bootstrap=bootstrap, seed=seed)
    if len(kinds) > 1:
        raise ConfigError("an ensemble mixes segmentation and label runs; vote runs of one task")
    m = member_scores(runs, workspace, split=split)
    names = [n.lower() for n in m.labels]
    y = m.targets.astype(np.int64)
    source = "majority"
    if vote is Vote.SOFT:
        calibration = metas[0][1]["calibration"]
        thr, source = soft_thresholds(runs, workspace, fallback=m.thresholds.mean(axis=0), split=split,
                                      rule=calibration.get("threshold_rule", "max_f1"),
                                      target_sensitivity=float(calibration.get("target_sensitivity", 0.95)))
        score = soft_vote(m.scores)
        pred = (score >= thr[None, :]).astype(np.int64)
    else:
        pred, score = hard_vote(m.scores, m.thresholds)
        thr = np.full(len(names), 0.5)
    fn, keys = _scorer(names)
    point = bootstrap_dict(lambda a, b: fn(a, b, thr), y, score, m.patients, n=bootstrap, seed=seed)
    metrics: dict[str, float] = {f"ensemble_{k}": float(v) for k, v in point.items()}
    edge = None
    if len(names) == 1:
        metrics["ensemble_threshold"] = float(thr[0])
        metrics["ensemble_f1_at_vote"] = float(fn(y, pred.astype(float), [0.5])["f1"])
        edge = at_label_edge(y[:, 0], m.neighbours)
        metrics.update({f"ensemble_{k}": float(v) for k, v in label_edge_errors(y[:, 0], pred[:, 0], edge).items()})
    else:
        metrics.update({f"ensemble_{n}_threshold": float(t) for n, t in zip(names, thr)})
    for i in range(len(runs)):
        one = fn(y, m.scores[i], m.thresholds[i])
        metrics.update({f"run{i}_{k}": float(one[k]) for k in keys})
    metrics.update({"n_runs": float(len(runs)), "n_images": float(len(y)), "n_positive": float(y.sum()),
                    "n_patients": float(len(np.unique(m.patients)))})
    out = Path(out)
    cols: dict[str, np.ndarray] = {"image_id": m.image_ids, "patient_id": m.patients}
    for k, n in enumerate(names):
        sfx = "" if len(names) == 1 else f"_{n}"
        cols[f"label{sfx}"], cols[f"score{sfx}"], cols[f"pred{sfx}"] = y[:, k], score[:, k], pred[:, k]
        for i in range(len(runs)):
            cols[f"run{i}{sfx}"] = m.scores[i, :, k]
    if edge is not None:
        cols["label_edge"] = edge.astype(int)
    atomic_write_bytes(out / "predictions.csv", pd.DataFrame(cols).to_csv(index=False).encode())
    atomic_write_bytes(out / "metrics.json", json.dumps({"vote": vote.value, "split": split, "threshold_from": source,
                                                         "labels": names, "runs": [str(r) for r in runs], **metrics},
                                                        indent=1).encode())
    return metrics


def _scorer(names: Sequence[str]) -> tuple[Callable[..., dict[str, float]], tuple[str, ...]]:
    """``(fn(y (N, K), score (N, K), thresholds (K,)) -> metrics, member keys)``: binary metrics of the one label,
    or multi-label metrics of several."""
    from medsift.metrics.classification import binary_metrics
    from medsift.metrics.multilabel import multilabel_metrics

    if len(names) == 1:
        return (lambda a, b, t: binary_metrics(a[:, 0], b[:, 0], float(t[0]))), ("auc", "pr_auc", "f1")

    def fn(a, b, t):
        return {k: v for k, v in multilabel_metrics(a, b, t, names).items() if not k.endswith("_threshold")}

    return fn, ("macro_auc", "macro_f1", "micro_f1", *(f"{n}_{k}" for n in names for k in ("auc", "f1")))

"""Pseudo-labelling (self-training): a trained model labels unlabelled images it is confident about; those rows
join training as a marked source and the model is retrained, for a number of rounds.

A pseudo-labelled row has every ``label_<name>`` of the run filled with the model's decision (``p >= 0.5``),
``label_source = "pseudo"``, ``pseudo_confidence`` (the smallest ``max(p, 1-p)`` over its labels) and
``pseudo_round``. A row qualifies when that confidence reaches ``min_confidence``. Human labels are never
changed: only rows whose labels are all unknown, or that were pseudo-labelled before, are touched (a later
round may update or withdraw an earlier pseudo label). Rows in the ``val``/``test`` split are never
pseudo-labelled, so model selection and evaluation stay on human labels.

Example:
    >>> new, n = apply_pseudo_labels(df, ids, probs, ("hemorrhage",), min_confidence=0.95, round_=1)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.label.features import is_pseudo, known_labels

PSEUDO = "pseudo"
HELD_OUT_SPLITS = ("val", "test")


def confident_labels(probs: np.ndarray, *, min_confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decisions and confidences of (N, K) probabilities.

    Returns:
        ``(labels (N, K) int 0/1, confidence (N,) = min_k max(p, 1 - p), ok (N,) bool = confidence >= min)``.
    """
    if not 0.5 <= float(min_confidence) <= 1.0:
        raise ConfigError(f"min_confidence must be in [0.5, 1]; got {min_confidence!r}")
    p = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    conf = np.maximum(p, 1.0 - p).min(axis=1) if p.shape[1] else np.zeros(len(p))
    return (p >= 0.5).astype(np.int64), conf, conf >= float(min_confidence)


def eligible(df: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """(N,) bool: rows a pseudo label may be written to (no human label, not in val/test)."""
    known = ~np.isnan(known_labels(df, labels))
    human = known.any(axis=1) & ~is_pseudo(df)
    held = df["split"].astype("string").isin(HELD_OUT_SPLITS).fillna(False).to_numpy() \
        if "split" in df.columns else np.zeros(len(df), dtype=bool)
    return ~human & ~held


def apply_pseudo_labels(df: pd.DataFrame, image_ids: Sequence[str], probs: np.ndarray, labels: Sequence[str], *,
                        min_confidence: float, round_: int) -> tuple[pd.DataFrame, int]:
    """A copy of ``df`` with pseudo labels from ``probs`` (rows ``image_ids``, (N, K)) where confident.

    Human labels are first written out explicitly (a PHE-style "has a box" label becomes ``label_hemorrhage``),
    so that filling the column never hides them. Rows not eligible (:func:`eligible`) are left alone; rows
    pseudo-labelled earlier and no longer confident lose their pseudo label.

    Returns:
        ``(new manifest, number of rows carrying a pseudo label of this round)``.
    """
    labels = tuple(labels)
    p = np.asarray(probs, dtype=np.float64).reshape(len(image_ids), -1)
    if p.shape[1] != len(labels):
        raise ConfigError(f"probabilities have {p.shape[1]} columns; expected one per label {list(labels)}")
    out = df.copy()
    known = known_labels(out, labels)
    for k, name in enumerate(labels):
        out[f"label_{name}"] = pd.array(np.where(np.isnan(known[:, k]), None, known[:, k]), dtype="Int64")
    for col, dtype in (("pseudo_confidence", "Float64"), ("pseudo_round", "Int64")):
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype=dtype)
    ok_rows = eligible(out, labels)
    pos = pd.Series(np.arange(len(out)), index=out["image_id"].astype(str).to_numpy())
    ids = pd.Index([str(i) for i in image_ids])
    unknown = ids.difference(pos.index)
    if len(unknown):
        raise ConfigError(f"image ids not in the manifest: {sorted(unknown)[:5]}")
    rows = pos[ids].to_numpy()
    decided, conf, ok = confident_labels(p, min_confidence=min_confidence)
    keep = ok_rows[rows]
    rows, decided, conf, ok = rows[keep], decided[keep], conf[keep], ok[keep]
    index = out.index
    withdraw = rows[~ok & is_pseudo(out)[rows]]
    for k, name in enumerate(labels):
        col = out.columns.get_loc(f"label_{name}")
        out.iloc[rows[ok], col] = decided[ok, k]
        out.iloc[withdraw, col] = pd.NA
    out.loc[index[rows[ok]], "label_source"] = PSEUDO
    out.loc[index[rows[ok]], "pseudo_confidence"] = np.round(conf[ok], 6)
    out.loc[index[rows[ok]], "pseudo_round"] = int(round_)
    out.loc[index[withdraw], ["label_source", "pseudo_confidence", "pseudo_round"]] = pd.NA
    return out, int(ok.sum())


@dataclass
class PseudoResult:
    """What :func:`pseudo_label` did: one entry per round."""

    versions: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _combined_workspace(train_ws, unl_ws, out: Path):
    """A workspace at ``out`` with the training workspace's active rows plus the pseudo rows of ``unl_ws``
    (as ``train``)."""
    from medsift.manifest import active, new_manifest
    from medsift.workspace import Workspace

    base = active(train_ws.read())
    extra = active(unl_ws.read())
    extra = extra[is_pseudo(extra)].copy()
    clash = sorted(set(extra["image_id"].astype(str)) & set(base["image_id"].astype(str)))
    if clash:
        raise ConfigError(f"unlabelled workspace shares image ids with the training workspace: {clash[:5]}; "
                          f"ingest it with distinct ids")
    extra["split"] = "train"
    extra["fold"] = pd.NA
    base = new_manifest(pd.concat([base, extra], ignore_index=True).to_dict("records"))
    ws = Workspace.at(out)
    ws.write(base, reason=f"training rows + pseudo labels of {unl_ws.root}")
    return ws


def pseudo_label(run: str | Path, unlabeled: str | Path, *, min_confidence: float = 0.95, rounds: int = 1,
                 train_workspace: str | Path | None = None, out: str | Path | None = None,
                 retrain: Callable[[object], object] | None = None, device: str | None = None,
                 log: Callable[[str], None] | None = None) -> PseudoResult:
    """Pseudo-label ``unlabeled``'s eligible rows with ``run``'s model for ``rounds`` rounds.

    Each round writes a new version of the ``unlabeled`` workspace. Between rounds the model is retrained with
    the run's own config on the training workspace's rows plus the pseudo rows (a workspace under
    ``out/round<r>/ws``, or the workspace itself when it is the training workspace; run in ``out/round<r>/run``);
    ``out`` defaults to ``RUN/pseudo``.

    Args:
        train_workspace: where ``run`` was trained (default: the one in its ``model.json``).
        retrain: optional ``config -> config`` applied before retraining (e.g. fewer epochs).
    """
    from medsift.engine.config import TrainConfig
    from medsift.engine.runner import train_run
    from medsift.label.features import run_outputs
    from medsift.manifest import active
    from medsift.workspace import Workspace

    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1; got {rounds!r}")
    run = Path(run)
    meta_path = run / "model.json"
    if not meta_path.is_file():
        raise ConfigError(f"{run} is not a finished medsift run (no model.json); train it with `medsift train`")
    meta = json.loads(meta_path.read_text())
    labels = tuple(meta["labels"])
    unl = Workspace.at(unlabeled)
    train_ws = Workspace.at(train_workspace or meta["workspace"])
    out = Path(out) if out is not None else run / "pseudo"
    result = PseudoResult()
    current = run
    for r in range(1, rounds + 1):
        if r > 1:
            combined = train_ws if train_ws.root == unl.root else \
                _combined_workspace(train_ws, unl, out / f"round{r}" / "ws")
            config = TrainConfig.from_dict(meta["config"])
            config = retrain(config) if retrain is not None else config
            current = out / f"round{r}" / "run"
            train_run(combined.root, current, config, show_progress=False, log=log)
        df = unl.read()
        act = active(df)
        pool = act[eligible(act, labels)]
        outputs = run_outputs(current, unl.root, pool, device=device)
        new, added = apply_pseudo_labels(df, outputs.image_ids, outputs.probs, labels,
                                         min_confidence=min_confidence, round_=r)
        version = unl.write(new, reason=f"pseudo-label round {r}: {added} of {len(pool)} candidate rows at "
                                         f"confidence >= {min_confidence} by {current}")
        pos = int(np.nansum(known_labels(new[is_pseudo(new)], labels))) if added else 0
        result.versions.append(version)
        result.added.append(added)
        result.candidates.append(int(len(pool)))
        result.runs.append(str(current))
        result.positives.append(pos)
        if log is not None:
            log(f"round {r}: {added}/{len(pool)} rows pseudo-labelled ({pos} positive), version {version}")
    return result

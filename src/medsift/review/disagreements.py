"""Model disagreements as review findings: slices where a trained model's prediction differs from the label.

Reads ``RUN/eval/<workspace>-<split>/predictions.csv`` written by ``medsift evaluate``:
binary tasks have ``image_id, label, score, pred``; multi-label tasks have ``label_<n>, score_<n>, pred_<n>``
per label ``n``. Each disagreement becomes one finding (check ``model_disagreement``) scored by how
confidently the model contradicts the label, ``|score - label|`` in 0..1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from medsift.review.queue import FINDING_COLUMNS

CHECK = "model_disagreement"
CONFIDENT = 0.8
"""``|score - label|`` at or above which a disagreement is a ``warning`` (else ``info``)."""


def disagreements(pred: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Findings (:data:`~medsift.review.queue.FINDING_COLUMNS`) for rows whose prediction differs from the label.

    Args:
        pred: a predictions table (binary or multi-label columns, see the module docstring).
        source: shown in the detail, e.g. ``"r1 ws-test"``.
    """
    pairs: list[tuple[str, str, str, str]] = []  # (name, label col, score col, pred col)
    if {"label", "score", "pred"} <= set(pred.columns):
        pairs.append(("", "label", "score", "pred"))
    for col in pred.columns:
        if col.startswith("score_"):
            name = col.removeprefix("score_")
            if {f"label_{name}", f"pred_{name}"} <= set(pred.columns):
                pairs.append((name, f"label_{name}", col, f"pred_{name}"))
    frames = []
    for name, lc, sc, pc in pairs:
        sub = pred[[c for c in ("image_id", lc, sc, pc)]].dropna()
        sub = sub[sub[lc].astype(int) != sub[pc].astype(int)]
        if sub.empty:
            continue
        conf = (sub[sc].astype(float) - sub[lc].astype(float)).abs()
        what = f"{name} " if name else ""
        frames.append(pd.DataFrame({
            "image_id": sub["image_id"].astype(str),
            "check": CHECK,
            "severity": ["warning" if c >= CONFIDENT else "info" for c in conf],
            "score": conf.round(4),
            "detail": [f"{what}label {int(l)}, model score {float(s):.2f} ({source})"
                       for l, s in zip(sub[lc], sub[sc])],
            "related_id": "",
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in FINDING_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(FINDING_COLUMNS)]


def prediction_files(workspace: Path, runs: Iterable[Path] = ()) -> list[Path]:
    """``predictions.csv`` files of evaluations on this workspace, in ``WS/runs/*`` and the given runs."""
    ws = Path(workspace)
    candidates = list(runs) + (sorted(p for p in (ws / "runs").iterdir() if p.is_dir())
                               if (ws / "runs").is_dir() else [])
    out: list[Path] = []
    for run in dict.fromkeys(Path(r) for r in candidates):
        for ev in sorted((run / "eval").glob(f"{ws.name}-*")):
            if (ev / "predictions.csv").is_file():
                out.append(ev / "predictions.csv")
    return out


def disagreement_findings(workspace: Path, runs: Iterable[Path] = ()) -> pd.DataFrame:
    """All disagreements of every evaluation of this workspace (see :func:`prediction_files`)."""
    frames = [disagreements(pd.read_csv(p, dtype={"image_id": str}), source=f"{p.parents[2].name} {p.parent.name}")
              for p in prediction_files(workspace, runs)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return disagreements(pd.DataFrame(), source="")
    return pd.concat(frames, ignore_index=True)

"""The review queue: which images an expert steps through, in what order, with what to show for each.

Built from the manifest and the audit findings (``WS/audit/findings.csv``: image_id, check, severity,
score, detail, related_id). One item per flagged image, most severe first, then highest score.
Each item also names its neighbouring slices (same patient and series, by ``slice_index``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from medsift.manifest import label_columns

SEVERITY_RANK: dict[str, int] = {"critical": 0, "error": 0, "high": 0, "warning": 1, "medium": 1,
                                 "info": 2, "low": 2}
FINDING_COLUMNS: tuple[str, ...] = ("image_id", "check", "severity", "score", "detail", "related_id")


def read_findings(path: str | Path) -> pd.DataFrame:
    """Read a findings CSV; an absent file gives an empty table with :data:`FINDING_COLUMNS`."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype="string") for c in FINDING_COLUMNS})
    df = pd.read_csv(path, dtype={"image_id": str, "related_id": str, "check": str, "severity": str,
                                  "detail": str}, keep_default_na=False, na_values={"score": [""]})
    for col in FINDING_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    return df


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NA/NaN -> None, numpy numbers -> Python numbers."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def neighbours(manifest: pd.DataFrame) -> dict[str, tuple[str | None, str | None]]:
    """``image_id -> (previous slice id, next slice id)`` inside the same patient and series."""
    df = manifest[["image_id", "patient_id", "series_id", "study_id", "slice_index"]].copy()
    df["_vol"] = df["series_id"].fillna(df["study_id"]).fillna("")
    df = df[df["slice_index"].notna()].sort_values(["patient_id", "_vol", "slice_index", "image_id"])
    out: dict[str, tuple[str | None, str | None]] = {}
    for _, grp in df.groupby(["patient_id", "_vol"], sort=False):
        ids = grp["image_id"].tolist()
        for i, iid in enumerate(ids):
            out[iid] = (ids[i - 1] if i > 0 else None, ids[i + 1] if i + 1 < len(ids) else None)
    return out


def build_queue(manifest: pd.DataFrame, findings: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-ready item per image that has findings and is in the manifest, most severe first.

    Findings about ids absent from the manifest (orphan annotations) cannot be shown and are left out.
    """
    rows = manifest.set_index("image_id", drop=False)
    nb = neighbours(manifest)
    labels = label_columns(manifest)
    items: list[dict[str, Any]] = []
    known = findings[findings["image_id"].isin(rows.index)]
    for iid, grp in known.groupby("image_id", sort=False):
        row = rows.loc[iid]
        fl = [{c: _clean(r[c]) for c in FINDING_COLUMNS if c != "image_id"} for _, r in grp.iterrows()]
        rank = min(SEVERITY_RANK.get(str(f["severity"]).lower(), 3) for f in fl)
        score = max((float(f["score"]) for f in fl if isinstance(f["score"], (int, float))), default=0.0)
        prev_id, next_id = nb.get(iid, (None, None))
        items.append({
            "image_id": iid,
            "patient_id": _clean(row["patient_id"]),
            "slice_index": _clean(row["slice_index"]),
            "split": _clean(row["split"]),
            "has_hu": bool(_clean(row["has_hu"]) or False),
            "has_mask": isinstance(_clean(row["mask_path"]), str) and bool(row["mask_path"]),
            "n_boxes": len(row["boxes"]),
            "labels": {c: _clean(row[c]) for c in labels},
            "excluded": bool(_clean(row["excluded"]) or False),
            "findings": fl,
            "prev": prev_id,
            "next": next_id,
            "related": [r for r in dict.fromkeys(str(f["related_id"]) for f in fl if f["related_id"])
                        if r in rows.index and r != iid],
            "_rank": (rank, -score, iid),
        })
    items.sort(key=lambda it: it["_rank"])
    for it in items:
        del it["_rank"]
    return items

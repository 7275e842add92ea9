"""Differences between two manifest versions: added, removed, relabelled, newly excluded images, balance drift.

Every stage that changes the manifest writes a new immutable version (:meth:`Workspace.write`); this module
compares two of them so a person can see what a clean, relabel or pseudo-label round really changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from medsift.manifest import label_columns


@dataclass(frozen=True)
class VersionDiff:
    """What changed from manifest ``a`` to manifest ``b`` (ids sorted)."""

    added: list[str]
    removed: list[str]
    relabelled: pd.DataFrame  # image_id, column, before, after
    excluded: list[str]
    included: list[str]
    moved_split: pd.DataFrame  # image_id, before, after
    balance: pd.DataFrame  # label column, positives/rate before and after, drift in percentage points

    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed),
                "relabelled": int(self.relabelled["image_id"].nunique()) if len(self.relabelled) else 0,
                "excluded": len(self.excluded), "included": len(self.included),
                "moved_split": len(self.moved_split)}


def _active_mask(df: pd.DataFrame) -> pd.Series:
    return df["excluded"].fillna(False).astype(bool)


def label_balance(df: pd.DataFrame) -> pd.DataFrame:
    """Positives, known labels and positive rate per ``label_*`` column over non-excluded rows."""
    use = df[~_active_mask(df)]
    rows = []
    for col in label_columns(df):
        known = use[col].dropna()
        rows.append({"label": col, "positives": int(known.sum()), "known": int(len(known)),
                     "rate": float(known.mean()) if len(known) else float("nan")})
    return pd.DataFrame(rows, columns=["label", "positives", "known", "rate"])


def diff_versions(a: pd.DataFrame, b: pd.DataFrame) -> VersionDiff:
    """Compare manifests ``a`` (before) and ``b`` (after) by ``image_id``."""
    ia, ib = a.set_index("image_id"), b.set_index("image_id")
    added = sorted(set(ib.index) - set(ia.index))
    removed = sorted(set(ia.index) - set(ib.index))
    common = ia.index.intersection(ib.index).sort_values()
    changes = []
    for col in sorted(set(label_columns(a)) | set(label_columns(b))):
        before = ia[col].reindex(common) if col in ia else pd.Series(pd.NA, index=common)
        after = ib[col].reindex(common) if col in ib else pd.Series(pd.NA, index=common)
        differs = (before.astype("Float64") != after.astype("Float64")).fillna(before.isna() != after.isna())
        for image_id in common[differs.to_numpy(dtype=bool)]:
            changes.append({"image_id": image_id, "column": col,
                            "before": before[image_id], "after": after[image_id]})
    relabelled = pd.DataFrame(changes, columns=["image_id", "column", "before", "after"])
    ex_a = _active_mask(ia.loc[common]) if len(common) else pd.Series(dtype=bool)
    ex_b = _active_mask(ib.loc[common]) if len(common) else pd.Series(dtype=bool)
    excluded = sorted(common[(~ex_a & ex_b).to_numpy()]) if len(common) else []
    included = sorted(common[(ex_a & ~ex_b).to_numpy()]) if len(common) else []
    sa, sb = ia["split"].reindex(common).fillna(""), ib["split"].reindex(common).fillna("")
    moved = (sa != sb).to_numpy()
    moved_split = pd.DataFrame({"image_id": common[moved], "before": sa[moved].to_numpy(),
                                "after": sb[moved].to_numpy()})
    ba, bb = label_balance(a), label_balance(b)
    balance = ba.merge(bb, on="label", how="outer", suffixes=("_before", "_after"))
    balance["drift_pp"] = 100.0 * (balance["rate_after"] - balance["rate_before"])
    return VersionDiff(added, removed, relabelled, excluded, included, moved_split, balance)

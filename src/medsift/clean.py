"""Cleaning: turn chosen audit findings and reviewed decisions into ``excluded`` / ``exclude_reason``.

Rows are never deleted and source files are never touched: an excluded row stays in the manifest and
:func:`medsift.manifest.active` (used by splits and training datasets) leaves it out.

Example:
    >>> import pandas as pd
    >>> from medsift.manifest import new_manifest
    >>> df = new_manifest([{"image_id": "a", "patient_id": "p", "image_path": "/x/a.png", "format": "png"},
    ...                    {"image_id": "b", "patient_id": "p", "image_path": "/x/b.png", "format": "png"}])
    >>> f = pd.DataFrame([{"image_id": "a", "check": "integrity", "severity": "error", "score": 1.0,
    ...                    "detail": "truncated: ...", "related_id": ""}])
    >>> clean(df, f)["excluded"].tolist()
    [True, False]
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from medsift.audit.base import CHECK_NAMES, Severity, severity_rank
from medsift.errors import ConfigError

DECISION_COLUMNS: tuple[str, ...] = ("timestamp", "reviewer", "image_id", "decision", "new_label", "comment")
EXCLUSION_COLUMNS: tuple[str, ...] = ("image_id", "origin", "check", "severity", "exclude_reason")


def read_decisions_table(decisions: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Decisions (path or table) reduced to the latest one per image (by ``timestamp``, then file order)."""
    if isinstance(decisions, pd.DataFrame):
        d = decisions.copy()
    else:
        path = Path(decisions)
        if not path.is_file():
            raise ConfigError(f"decisions file {path} does not exist; expected a CSV with {list(DECISION_COLUMNS)}")
        d = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in DECISION_COLUMNS if c not in d.columns]
    if missing:
        raise ConfigError(f"decisions lack columns {missing}; expected {list(DECISION_COLUMNS)}")
    d = d.fillna("").astype(str)
    bad = ~d["decision"].isin(["accept", "exclude", "relabel"])
    if bad.any():
        raise ConfigError(f"decision must be accept|exclude|relabel; got {d.loc[bad, 'decision'].iloc[0]!r} "
                          f"for image {d.loc[bad, 'image_id'].iloc[0]!r}")
    d["_order"] = range(len(d))
    d = d.sort_values(["timestamp", "_order"], kind="stable")
    return d.drop_duplicates("image_id", keep="last").drop(columns="_order").reset_index(drop=True)


def _finding_reason(g: pd.DataFrame) -> str:
    parts = []
    for r in g.itertuples(index=False):
        kind = str(r.detail).split(":")[0].strip()
        parts.append(f"{r.check}/{kind} ({r.severity})")
    return "audit: " + "; ".join(dict.fromkeys(parts))


def select_findings(findings: pd.DataFrame, *, checks: Iterable[str] | None = None,
                    min_severity: str | Severity = "error") -> pd.DataFrame:
    """Findings of ``checks`` (default all) at ``min_severity`` or worse."""
    sev = Severity.parse(min_severity)
    if checks is not None:
        checks = list(checks)
        bad = [c for c in checks if c not in CHECK_NAMES]
        if bad:
            raise ConfigError(f"unknown checks {bad}; valid: {', '.join(CHECK_NAMES)}")
    f = findings
    if checks is not None:
        f = f[f["check"].isin(checks)]
    return f[severity_rank(f["severity"]) >= sev.rank]


def clean(df: pd.DataFrame, findings: pd.DataFrame, *, checks: Iterable[str] | None = None,
          min_severity: str | Severity = "error", decisions: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
    """Mark rows excluded from chosen findings and reviewed decisions. Returns a new manifest; rows are kept.

    Args:
        df: the manifest.
        findings: the audit's findings (``image_id, check, severity, score, detail, related_id``).
        checks: which checks' findings exclude (default: all).
        min_severity: the least severe finding that excludes (``info`` < ``warning`` < ``error``).
        decisions: reviewed decisions (CSV path or table, ``timestamp, reviewer, image_id, decision, new_label,
            comment``); the latest per image wins over the findings: ``exclude`` excludes, ``accept`` keeps the
            image in (even if a finding or an earlier clean excluded it), ``relabel`` sets ``new_label``
            (``label_hemorrhage=1;...``) and keeps the image in.

    Returns:
        A copy of ``df`` with ``excluded``/``exclude_reason`` updated (earlier exclusions stay unless accepted).
    """
    out = df.copy()
    chosen = select_findings(findings, checks=checks, min_severity=min_severity)
    chosen = chosen[chosen["image_id"].isin(set(out["image_id"].astype(str)))]
    reasons = {iid: _finding_reason(g) for iid, g in chosen.groupby("image_id", sort=False)}
    ids = out["image_id"].astype(str)
    hit = ids.isin(set(reasons))
    excluded = out["excluded"].fillna(False).astype(bool).to_numpy().copy()
    reason = out["exclude_reason"].astype("string").fillna("").to_numpy(dtype=object).copy()
    for i in (hit & ~pd.Series(excluded, index=out.index)).to_numpy().nonzero()[0]:
        excluded[i], reason[i] = True, reasons[ids.iloc[i]]
    if decisions is not None:
        from medsift.review.decisions import parse_new_label

        latest = read_decisions_table(decisions)
        pos = {iid: i for i, iid in enumerate(ids)}
        for r in latest.itertuples(index=False):
            i = pos.get(r.image_id)
            if i is None:
                continue
            who = f"{r.reviewer}, {r.timestamp}".strip(", ")
            if r.decision == "exclude":
                excluded[i], reason[i] = True, f"review: {r.comment or 'excluded'} ({who})"
            elif r.decision == "accept":
                excluded[i], reason[i] = False, ""
            else:
                for col, value in parse_new_label(r.new_label).items():
                    if col not in out.columns:
                        out[col] = pd.array([pd.NA] * len(out), dtype="Int64")
                    out.loc[out.index[i], col] = value
                excluded[i], reason[i] = False, ""
                if "label_source" in out.columns:
                    out.loc[out.index[i], "label_source"] = "review"
    out["excluded"] = pd.array(excluded, dtype="boolean")
    out["exclude_reason"] = pd.array([r if r else pd.NA for r in reason], dtype="string")
    return out


def exclusions(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Rows excluded in ``after``: ``image_id, origin (audit|review|earlier), check, severity, exclude_reason``."""
    was = dict(zip(before["image_id"].astype(str), before["excluded"].fillna(False).astype(bool)))
    rows = []
    for iid, exc, why in zip(after["image_id"].astype(str), after["excluded"].fillna(False).astype(bool),
                             after["exclude_reason"].astype("string").fillna("")):
        if not exc:
            continue
        origin = "earlier" if was.get(iid, False) else ("review" if str(why).startswith("review:") else "audit")
        checks = sorted({p.split("/")[0].strip() for p in str(why).removeprefix("audit: ").split(";")
                         if "/" in p}) if origin == "audit" else []
        sev = "error" if "(error)" in str(why) else ("warning" if "(warning)" in str(why) else "")
        rows.append({"image_id": iid, "origin": origin, "check": ";".join(checks), "severity": sev,
                     "exclude_reason": str(why)})
    return pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS))

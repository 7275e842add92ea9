"""Run the audit: decode every image once (in parallel), run the chosen checks, assemble the tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from medsift.audit.base import CHECK_NAMES, CHECKS, LEARNED_CHECKS, AuditContext, CheckResult, empty_findings
from medsift.audit.executor import map_batches
from medsift.audit.features import HIST_BINS, ROW_FIELDS, THUMB, extract_batch
from medsift.errors import ConfigError


@dataclass
class AuditResult:
    """The audit's tables.

    Attributes:
        findings: one row per problem: ``image_id, check, severity, score, detail, related_id``.
        scores: one row per image: ``image_id``, ``<check>_score`` (0..1, 1 = issue) and ``is_<check>_issue``.
        summary: ``{"n_images", "checks": {check: {"n_issues", "n_findings", "by_severity", ...}}}``.
        context: the features the checks read (thumbnails, hashes...), used by the HTML report.
        results: each check's :class:`CheckResult` (evidence for the report).
    """

    findings: pd.DataFrame
    scores: pd.DataFrame
    summary: dict
    context: AuditContext | None = field(default=None, repr=False)
    results: dict[str, CheckResult] = field(default_factory=dict, repr=False)


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in ROW_FIELDS if c in df.columns] + [c for c in df.columns if c not in ROW_FIELDS
                                                          and c in ("study_id", "series_id", "slice_index")]
    out = []
    for rec in df[cols].to_dict("records"):
        out.append({k: (None if (v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v) for k, v in rec.items()})
    return out


def compute_features(df: pd.DataFrame, *, n_jobs: int = 2, scheduler: Any = None
                     ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Decode each image once and return ``(features, thumbs (N,64,64) u8, hists (N,64) f32, hashes (N,4) u64)``."""
    rows = _rows(df)
    n = len(rows)
    thumbs = np.zeros((n, THUMB, THUMB), np.uint8)
    hists = np.zeros((n, HIST_BINS), np.float32)
    hashes = np.zeros((n, 4), np.uint64)
    scalars = []
    for k, feat in enumerate(map_batches(extract_batch, rows, n_jobs=n_jobs, scheduler=scheduler)):
        scalars.append(feat.scalars)
        thumbs[k], hists[k], hashes[k] = feat.thumb, feat.hist, feat.hashes
    return pd.DataFrame(scalars), thumbs, hists, hashes


def _resolve_checks(checks: Iterable[str] | None, learned: bool) -> list[str]:
    if checks is None:
        names = list(CHECK_NAMES)
    else:
        names = list(dict.fromkeys(checks))
        for name in names:
            CHECKS.get(name)  # unknown -> ConfigError listing the valid ones
    return names if learned else [c for c in names if c not in LEARNED_CHECKS or c == "intensity"]


def run_audit(df: pd.DataFrame, *, workspace: str | Path | None = None, checks: Iterable[str] | None = None,
              learned: bool = True, n_jobs: int = 2, scheduler: Any = None, seed: int = 0,
              train_config: Any = None) -> AuditResult:
    """Audit a manifest.

    Args:
        df: the manifest.
        workspace: workspace root (for ingest side tables such as unpaired annotations), or None.
        checks: names from :data:`medsift.audit.CHECKS` (default: all).
        learned: train the self-supervised orientation/inversion CNN; when False, ``orientation`` is skipped and
            ``intensity`` uses its histogram rule only.
        n_jobs: joblib processes for decoding.
        scheduler: Dask scheduler address or ``distributed.Client`` (then decoding runs on the cluster).
        seed: seed of every random operation (CNN training).
        train_config: :class:`medsift.audit.learned.TrainConfig` of the detectors (default: its defaults).

    Returns:
        :class:`AuditResult`.
    """
    if df["image_id"].duplicated().any():
        raise ConfigError("manifest image_id must be unique before an audit")
    names = _resolve_checks(checks, learned)
    m = df.reset_index(drop=True)
    feats, thumbs, hists, hashes = compute_features(m, n_jobs=n_jobs, scheduler=scheduler)
    ctx = AuditContext(manifest=m, features=feats, thumbs=thumbs, hists=hists, hashes=hashes,
                       workspace=Path(workspace) if workspace is not None else None, learned=learned,
                       n_jobs=n_jobs, seed=seed)
    if train_config is not None:
        ctx.cache["train_config"] = train_config
    results: dict[str, CheckResult] = {}
    for name in names:
        results[name] = CHECKS.get(name)(ctx)
    return assemble(ctx, results)


def assemble(ctx: AuditContext, results: dict[str, CheckResult]) -> AuditResult:
    """Join per-check results into the findings table, the per-image score table and the summary."""
    frames = [r.findings for r in results.values() if len(r.findings)]
    findings = pd.concat(frames, ignore_index=True) if frames else empty_findings()
    scores = pd.DataFrame({"image_id": ctx.ids})
    summary: dict[str, Any] = {"n_images": int(len(ctx.manifest)), "checks": {}}
    for name, r in results.items():
        issue = r.is_issue()
        scores[f"{name}_score"] = r.scores.reindex(ctx.ids).fillna(0.0).to_numpy()
        scores[f"is_{name}_issue"] = issue.reindex(ctx.ids).fillna(False).to_numpy(dtype=bool)
        by_sev = r.findings["severity"].value_counts().to_dict() if len(r.findings) else {}
        summary["checks"][name] = {"n_issues": int(issue.sum()), "n_findings": int(len(r.findings)),
                                   "by_severity": {str(k): int(v) for k, v in by_sev.items()}, **_jsonable(r.summary)}
    return AuditResult(findings, scores, summary, ctx, results)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj

"""Write and read the audit's files in a workspace: ``WS/audit/findings.csv``, ``scores.parquet``,
``summary.json`` and ``report.html`` (with ``plots/``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from medsift.audit.base import FINDING_COLUMNS
from medsift.errors import MedsiftError
from medsift.manifest import atomic_write_bytes


def write_audit(result, workspace: str | Path, *, report: bool = True) -> dict[str, Path]:
    """Save an :class:`~medsift.audit.runner.AuditResult` under ``workspace/audit``. Returns the paths."""
    root = Path(workspace) / "audit"
    root.mkdir(parents=True, exist_ok=True)
    paths = {"findings": root / "findings.csv", "scores": root / "scores.parquet", "summary": root / "summary.json"}
    atomic_write_bytes(paths["findings"], result.findings[list(FINDING_COLUMNS)].to_csv(index=False).encode())
    buf = io.BytesIO()
    result.scores.to_parquet(buf, index=False)
    atomic_write_bytes(paths["scores"], buf.getvalue())
    atomic_write_bytes(paths["summary"], json.dumps(result.summary, indent=1, default=str).encode())
    if report and result.context is not None:
        from medsift.audit.report import write_report

        paths["report"] = write_report(result, root)
    return paths


def read_findings(path: str | Path) -> pd.DataFrame:
    """Read ``findings.csv`` (a workspace folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "audit" / "findings.csv"
    if not path.is_file():
        raise MedsiftError(f"no audit findings at {path}; run `medsift audit WS` first")
    df = pd.read_csv(path, dtype={c: str for c in FINDING_COLUMNS if c != "score"}, keep_default_na=False)
    missing = [c for c in FINDING_COLUMNS if c not in df.columns]
    if missing:
        raise MedsiftError(f"{path} lacks columns {missing}; expected {list(FINDING_COLUMNS)}")
    df["score"] = pd.to_numeric(df["score"], errors="coerce").fillna(0.0)
    return df

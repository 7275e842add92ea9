"""What every audit check shares: severities, the findings table, the per-check result and the registry.

A check is a function ``check(ctx: AuditContext) -> CheckResult``. It scores *every* image
(``score`` in 0..1, 1 = surely an issue) and lists findings, like cleanlab's Datalab issue managers.
Checks never decode pixels themselves: :mod:`medsift.audit.features` decodes each image once and
the checks read the small per-image features (hashes, 64x64 thumbnail, histogram, mask box).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.registry import Registry

FINDING_COLUMNS: tuple[str, ...] = ("image_id", "check", "severity", "score", "detail", "related_id")
CHECK_NAMES: tuple[str, ...] = ("integrity", "pairing", "label_consistency", "duplicate", "sequence",
                                "orientation", "intensity", "outlier")
LEARNED_CHECKS: frozenset[str] = frozenset({"orientation", "intensity"})


class Severity(str, Enum):
    """How bad a finding is; ``error`` findings are excluded by ``medsift clean`` by default."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]

    @classmethod
    def parse(cls, value: "str | Severity") -> "Severity":
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"severity must be one of {[s.value for s in cls]}; got {value!r}") from None


def severity_rank(values: pd.Series) -> np.ndarray:
    """Integer rank (info 0, warning 1, error 2) of a column of severity strings."""
    return values.map({"info": 0, "warning": 1, "error": 2}).fillna(-1).to_numpy(dtype=int)


def empty_findings() -> pd.DataFrame:
    """A findings table with no rows and the right columns."""
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "score" else "string") for c in FINDING_COLUMNS})


def findings_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a findings table from dicts (missing ``related_id`` becomes empty)."""
    if not rows:
        return empty_findings()
    df = pd.DataFrame(rows)
    if "related_id" not in df.columns:
        df["related_id"] = ""
    df["related_id"] = df["related_id"].fillna("")
    df["score"] = df["score"].astype(float).clip(0.0, 1.0)
    bad = ~df["severity"].isin([s.value for s in Severity])
    if bad.any():
        raise ConfigError(f"finding severity must be info|warning|error; got {df.loc[bad, 'severity'].iloc[0]!r}")
    return df[list(FINDING_COLUMNS)].astype({c: "string" for c in FINDING_COLUMNS if c != "score"})


@dataclass(frozen=True)
class CheckResult:
    """One check's output.

    Attributes:
        scores: float 0..1 per image (index = image_id, every image of the manifest), 1 = surely an issue.
        findings: rows of :data:`FINDING_COLUMNS` (``check`` filled in).
        summary: small JSON-able dict (counts, thresholds used).
        evidence: optional extra per-check data for the HTML report (not saved in tables).
    """

    scores: pd.Series
    findings: pd.DataFrame
    summary: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)

    def is_issue(self) -> pd.Series:
        """True for images with at least one warning or error finding of this check."""
        flagged = self.findings.loc[self.findings["severity"].isin(["warning", "error"]), "image_id"]
        return pd.Series(self.scores.index.isin(set(flagged)), index=self.scores.index)


@dataclass
class AuditContext:
    """Everything a check may read.

    Attributes:
        manifest: the manifest rows audited (index reset, ``image_id`` unique).
        features: per-image scalar features (one row per manifest row, same order), see ``features.py``.
        thumbs: uint8 (N, 64, 64) thumbnails scaled to 0..255 (zeros for unreadable images).
        hists: float32 (N, 64) normalised intensity histograms over 0..255.
        hashes: uint64 (N, 4) aHash, dHash, pHash, wHash (64 bits each).
        workspace: workspace root, or None (then side tables such as unpaired annotations are unknown).
        learned: whether learned detectors may train.
        n_jobs: CPU workers allowed.
        seed: seed for every random operation of the audit.
        cache: values shared between checks (e.g. the trained orientation model's predictions).
    """

    manifest: pd.DataFrame
    features: pd.DataFrame
    thumbs: np.ndarray
    hists: np.ndarray
    hashes: np.ndarray
    workspace: Path | None = None
    learned: bool = True
    n_jobs: int = 2
    seed: int = 0
    cache: dict = field(default_factory=dict)

    @property
    def ids(self) -> pd.Index:
        return pd.Index(self.manifest["image_id"].astype(str))

    @property
    def readable(self) -> np.ndarray:
        return self.features["read_ok"].to_numpy(dtype=bool)

    def zeros(self) -> pd.Series:
        return pd.Series(np.zeros(len(self.manifest)), index=self.ids, dtype=float)


CheckFn = Callable[[AuditContext], CheckResult]
CHECKS: Registry[CheckFn] = Registry("audit check")

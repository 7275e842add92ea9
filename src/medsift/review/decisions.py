"""Expert review decisions: an append-only CSV, one fsync'd line per decision, latest decision wins.

File ``WS/review/decisions.csv``, columns exactly :data:`COLUMNS`::

    timestamp,reviewer,image_id,decision,new_label,comment
    2026-11-23T18:40:02.123+00:00,ana,0004_15,exclude,,motion artefact

``decision`` is ``accept | exclude | relabel``; ``new_label`` is set only for ``relabel`` and reads
``label_hemorrhage=1`` (several joined by ``;``). Lines are never rewritten: a later line for the same
image overrides an earlier one, so a restart reads the latest decision per image.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "decisions.csv"
    >>> _ = append_decision(p, Decision("0001_00", Verdict.EXCLUDE, reviewer="ana", comment="blurred"))
    >>> latest_decisions(p)["0001_00"]["decision"]
    'exclude'
"""

from __future__ import annotations

import csv
import io
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Iterable

from medsift.errors import ConfigError

COLUMNS: tuple[str, ...] = ("timestamp", "reviewer", "image_id", "decision", "new_label", "comment")
MAX_COMMENT = 2000
MAX_REVIEWER = 64
_NEW_LABEL = re.compile(r"^label_[a-z0-9_]+=[01]$")
_LOCK = threading.Lock()


class Verdict(str, Enum):
    """What the expert decided about one image."""

    ACCEPT = "accept"
    EXCLUDE = "exclude"
    RELABEL = "relabel"


@dataclass(frozen=True)
class Decision:
    """One decision about one image. ``new_label`` like ``label_hemorrhage=1`` (``;``-joined), relabel only."""

    image_id: str
    verdict: Verdict
    reviewer: str = "anonymous"
    new_label: str = ""
    comment: str = ""
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))

    def __post_init__(self) -> None:
        if not isinstance(self.verdict, Verdict):
            raise ConfigError(f"decision must be one of {[v.value for v in Verdict]}; got {self.verdict!r}")
        if not self.image_id:
            raise ConfigError("decision needs an image_id; got an empty one")
        if not 0 < len(self.reviewer) <= MAX_REVIEWER or not self.reviewer.isprintable():
            raise ConfigError(f"reviewer must be 1..{MAX_REVIEWER} printable characters; got {self.reviewer!r}")
        if len(self.comment) > MAX_COMMENT:
            raise ConfigError(f"comment must be at most {MAX_COMMENT} characters; got {len(self.comment)}")
        if self.verdict is Verdict.RELABEL:
            parse_new_label(self.new_label)
        elif self.new_label:
            raise ConfigError(f"new_label is only for relabel decisions; got {self.new_label!r} "
                              f"with decision {self.verdict.value!r}")

    def row(self) -> list[str]:
        return [self.timestamp, self.reviewer, self.image_id, self.verdict.value, self.new_label, self.comment]


def parse_new_label(text: str) -> dict[str, int]:
    """``"label_hemorrhage=1;label_ivh=0"`` -> ``{"label_hemorrhage": 1, "label_ivh": 0}``."""
    parts = [p.strip() for p in str(text).split(";") if p.strip()]
    if not parts or not all(_NEW_LABEL.match(p) for p in parts):
        raise ConfigError(f"new_label must look like 'label_<name>=0|1' (several joined by ';'); got {text!r}")
    return {k: int(v) for k, v in (p.split("=") for p in parts)}


def append_decision(path: str | Path, decision: Decision) -> Decision:
    """Append one decision as one CSV line, flushed and fsync'd before returning (thread-safe).

    Writes the header first when the file is new or empty. Never rewrites earlier lines.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    with _LOCK:
        with open(path, "a", encoding="utf-8", newline="") as fh:
            if fh.tell() == 0:
                writer.writerow(COLUMNS)
            writer.writerow(decision.row())
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
    return decision


def read_decisions(path: str | Path) -> list[dict[str, str]]:
    """Every decision line in file order (oldest first); an absent file gives ``[]``.

    Raises:
        ConfigError: the header is not :data:`COLUMNS`.
    """
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return []
        if tuple(header) != COLUMNS:
            raise ConfigError(f"{path}: header must be {list(COLUMNS)}; got {header}")
        # A line torn by a crash mid-write has fewer fields: skip it rather than guess.
        return [dict(zip(COLUMNS, r)) for r in reader if len(r) == len(COLUMNS)]


def latest_decisions(path: str | Path) -> dict[str, dict[str, str]]:
    """The latest decision per ``image_id`` (later lines override earlier ones)."""
    return latest_of(read_decisions(path))


def latest_of(rows: Iterable[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Reduce decision rows (oldest first) to the latest one per ``image_id``."""
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        out[r["image_id"]] = r
    return out

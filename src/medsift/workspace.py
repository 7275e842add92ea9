"""A workspace: one folder per dataset holding the manifest, its versions and every stage's outputs.

Layout::

    WS/manifest.parquet          the current manifest (also the newest version)
    WS/versions/v0001.parquet    every manifest ever written, never overwritten
    WS/versions/log.json         [{version, created, reason, n_rows, sha256}, ...]
    WS/ingest/...                ingest side tables (unpaired annotations, summary)
    WS/audit/..., WS/splits/..., WS/cache/..., WS/runs/...

Source data is never written: every path here is inside ``WS``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.manifest import atomic_write_bytes, read_manifest, write_manifest


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace folder."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "Workspace":
        return cls(Path(root).expanduser().resolve())

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.parquet"

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def sub(self, *parts: str) -> Path:
        """A folder inside the workspace, created on demand."""
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read(self) -> pd.DataFrame:
        if not self.exists():
            raise MedsiftError(f"{self.root} is not a medsift workspace (no manifest.parquet); "
                               f"create one with `medsift ingest SRC --workspace {self.root}`")
        return read_manifest(self.manifest_path)

    def versions(self) -> list[dict]:
        log = self.versions_dir / "log.json"
        return json.loads(log.read_text()) if log.is_file() else []

    def write(self, df: pd.DataFrame, *, reason: str) -> int:
        """Save ``df`` as a new immutable version and as the current manifest. Returns the version number."""
        versions = self.versions()
        number = (versions[-1]["version"] + 1) if versions else 1
        vpath = self.versions_dir / f"v{number:04d}.parquet"
        write_manifest(df, vpath)
        entry = {
            "version": number,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reason": reason,
            "n_rows": int(len(df)),
            "sha256": hashlib.sha256(vpath.read_bytes()).hexdigest(),
        }
        atomic_write_bytes(self.versions_dir / "log.json", json.dumps(versions + [entry], indent=1).encode())
        write_manifest(df, self.manifest_path)
        return number

    def read_version(self, number: int) -> pd.DataFrame:
        path = self.versions_dir / f"v{number:04d}.parquet"
        if not path.is_file():
            known = [v["version"] for v in self.versions()]
            raise MedsiftError(f"workspace has no version {number}; versions: {known}")
        return read_manifest(path)

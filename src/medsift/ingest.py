"""Ingest: scan a source folder with a layout, read every file once (in parallel), write the workspace manifest.

Bad input never stops an ingest: each row carries ``status`` (``ok`` or the most severe problem, see
:class:`medsift.formats.layouts.base.Status`) and ``status_detail`` (every problem, ``; ``-joined).
Side tables per source: ``WS/ingest/<source>/unpaired_annotations.csv`` and ``summary.json``.

Image ids: PHE-SICH ``PPPP_SS``; DICOM/folder layouts the file stem (relative path joined by ``__`` when
stems clash); NIfTI ``<case>_<kkk>``. When ids of a new source clash with rows of another source already in
the workspace, every id of the new source is prefixed ``<source>__``.

Example:
    >>> df = ingest("data/phe-sich", layout="phe-sich", workspace="ws")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from medsift.errors import ConfigError, LayoutError
from medsift.formats.layouts.base import SEVERITY, Candidate, LayoutScan, Status
from medsift.manifest import STATUS_OK, atomic_write_bytes, new_manifest
from medsift.workspace import Workspace

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
UNPAIRED_COLUMNS = ["annotation_path", "kind", "problem", "candidate_image_id", "detail"]


def _check_args(src: Path, ws: Workspace, source: str, n_jobs: int, labels: Path | None,
                clinical: Path | None) -> None:
    if not SOURCE_NAME.match(source):
        raise ConfigError(f"source name {source!r} must be 1-64 letters, digits, '_', '-' or '.', "
                          f"starting with a letter or digit (e.g. phe-sich, rsna)")
    if n_jobs < 1:
        raise ConfigError(f"n_jobs must be >= 1; got {n_jobs}")
    if not src.exists():
        raise LayoutError(f"source folder {src} does not exist")
    if ws.root.exists() and not ws.root.is_dir():
        raise ConfigError(f"workspace {ws.root} is a file; expected a folder (new or an existing workspace)")
    if ws.root == src or ws.root.is_relative_to(src):
        raise ConfigError(f"workspace {ws.root} is inside the source folder {src}; medsift never writes into "
                          f"source data, expected a workspace outside it")
    for name, path in (("labels", labels), ("clinical", clinical)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"--{name} {path}: no such file; expected a CSV/XLSX file")


def _probe_chunk(chunk: list[Candidate]) -> list[dict[str, Any]]:
    from medsift.io.probe import probe_candidate

    out: list[dict[str, Any]] = []
    for c in chunk:
        out.extend(probe_candidate(c))
    return out


MIN_PARALLEL = 32
"""Fewer candidates than this are probed in-process: starting worker processes would cost more than it saves."""


def probe_all(candidates: list[Candidate], *, n_jobs: int = 2, show: bool = False,
              min_parallel: int = MIN_PARALLEL) -> list[dict[str, Any]]:
    """Probe candidates with joblib processes (each file read once), in input order."""
    if not candidates:
        return []
    if len(candidates) < min_parallel:
        n_jobs = 1
    n_chunks = 1 if n_jobs == 1 else min(len(candidates), n_jobs * 8)
    size = -(-len(candidates) // n_chunks)
    chunks = [candidates[i:i + size] for i in range(0, len(candidates), size)]
    if n_jobs == 1:
        results = (_probe_chunk(ch) for ch in chunks)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_probe_chunk)(ch) for ch in chunks)
    rows: list[dict[str, Any]] = []
    if show:
        from medsift.progress import progress_bar

        with progress_bar(transient=True) as bar:
            task = bar.add_task("ingest", total=len(candidates))
            for ch, res in zip(chunks, results):
                rows.extend(res)
                bar.advance(task, len(ch))
    else:
        for res in results:
            rows.extend(res)
    return rows


def _utf8_safe(row: dict[str, Any]) -> None:
    """File names that are not valid UTF-8 (surrogate-escaped by the OS) cannot be stored in Parquet: keep them
    readable with backslash escapes and record the row as ``bad_name``."""
    for key, value in list(row.items()):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                row[key] = value.encode("utf-8", "backslashreplace").decode("utf-8")
                row.setdefault("_problems", []).append(
                    (Status.BAD_NAME.value, f"{key} {row[key]} is not valid UTF-8; expected a UTF-8 file name"))


def _statuses(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        _utf8_safe(row)
        problems = row.pop("_problems", [])
        if problems:
            worst = min(problems, key=lambda p: SEVERITY.get(p[0], 0))
            row["status"] = worst[0]
            row["status_detail"] = "; ".join(f"{s}: {d}" for s, d in problems).encode(
                "utf-8", "backslashreplace").decode("utf-8")
        else:
            row["status"] = STATUS_OK
            row["status_detail"] = None


def _to_frame(rows: list[dict[str, Any]], source: str) -> pd.DataFrame:
    for row in rows:
        row["source"] = source
        if not row.get("patient_id"):
            row["patient_id"] = "unknown"
        for key in ("dicom_position", "dicom_orientation"):
            if isinstance(row.get(key), list):
                row[key] = json.dumps(row[key])
    df = new_manifest(rows)
    return df


def _merge(ws: Workspace, new: pd.DataFrame, source: str) -> tuple[pd.DataFrame, bool, int]:
    """Existing rows of other sources + the new rows; prefix new ids on a clash. Returns (df, prefixed, n_replaced)."""
    if not ws.exists():
        return new, False, 0
    old = ws.read()
    replaced = int((old["source"] == source).sum())
    others = old[old["source"] != source]
    prefixed = False
    if len(others) and new["image_id"].isin(set(others["image_id"])).any():
        new = new.copy()
        new["image_id"] = source + "__" + new["image_id"].astype(str)
        prefixed = True
    if not len(others):
        return new, prefixed, replaced
    merged = pd.concat([others, new], ignore_index=True)
    records = merged.astype(object).where(merged.notna(), None).to_dict("records")
    return new_manifest(records), prefixed, replaced


def ingest(src: str | Path, *, layout: str = "auto", workspace: str | Path, source: str = "default",
           labels: str | Path | None = None, clinical: str | Path | None = None, n_jobs: int = 2,
           show_progress: bool = False) -> pd.DataFrame:
    """Ingest ``src`` (read only) with ``layout`` into ``workspace`` as source ``source``.

    Args:
        src: source folder; never written.
        layout: a name in :data:`medsift.formats.layouts.LAYOUTS` (``phe-sich``, ``folder``, ``dicom``, ``nifti``),
            or ``auto`` to guess it from names and first bytes (:func:`medsift.formats.layouts.guess.guess_layout`;
            the choice and its reason go into the summary).
        workspace: workspace folder; created if needed. Rows of other sources already there are kept,
            rows of ``source`` are replaced.
        source: name of this dataset/site; every row gets it in the ``source`` column.
        labels: labels CSV for the ``folder`` layout (filename column + label/metadata columns).
        clinical: clinical sheet (CSV/XLSX) joined on ``patient_id`` as ``clinical_*`` columns.
        n_jobs: joblib worker processes reading files.

    Returns:
        The whole manifest written to ``WS/manifest.parquet`` (all sources).

    Raises:
        ConfigError: bad arguments (unknown layout lists the valid ones).
        LayoutError: the folder is missing, empty or does not look like ``layout``.
    """
    from medsift.formats.layouts import LAYOUTS

    t0 = time.perf_counter()
    src_path = Path(src).expanduser().resolve()
    ws = Workspace.at(workspace)
    labels_path = Path(labels).expanduser().resolve() if labels is not None else None
    clinical_path = Path(clinical).expanduser().resolve() if clinical is not None else None
    if layout != "auto":
        LAYOUTS.get(layout)  # an unknown name fails before anything is read
    _check_args(src_path, ws, source, n_jobs, labels_path, clinical_path)
    guess = None
    if layout == "auto":
        from medsift.formats.layouts.guess import guess_layout

        guess = guess_layout(src_path, labels=labels_path)
        layout = guess.layout
    scan_fn = LAYOUTS.get(layout)
    scan: LayoutScan = scan_fn(src_path, labels=labels_path)
    rows = probe_all(scan.candidates, n_jobs=n_jobs, show=show_progress)
    if scan.finalize is not None:
        rows = scan.finalize(rows)
    _statuses(rows)
    new = _to_frame(rows, source)
    clinical_report: dict[str, Any] | None = None
    if clinical_path is not None:
        from medsift.io.clinical import join_clinical, read_clinical

        new, clinical_report = join_clinical(new, read_clinical(clinical_path))
        new = new_manifest(new.astype(object).where(new.notna(), None).to_dict("records"))
    merged, prefixed, replaced = _merge(ws, new, source)
    seconds = time.perf_counter() - t0
    version = ws.write(merged, reason=f"ingest {layout} {src_path} as source {source!r}")
    new_rows = merged[merged["source"] == source]
    summary = _summary(new_rows, scan, layout=layout, src=src_path, source=source, seconds=seconds,
                       version=version, prefixed=prefixed, replaced=replaced, clinical=clinical_report)
    if guess is not None:
        summary["layout_guessed"] = guess.reason
    side = ws.sub("ingest", source)
    unpaired = pd.DataFrame(scan.unpaired, columns=UNPAIRED_COLUMNS)
    atomic_write_bytes(side / "unpaired_annotations.csv",
                       unpaired.to_csv(index=False).encode("utf-8", "backslashreplace"))
    atomic_write_bytes(side / "summary.json", json.dumps(summary, indent=1, default=str).encode())
    return merged


def _summary(df: pd.DataFrame, scan: LayoutScan, *, layout: str, src: Path, source: str, seconds: float,
             version: int, prefixed: bool, replaced: int, clinical: dict | None) -> dict[str, Any]:
    bad = df[df["status"] != STATUS_OK]
    unpaired_ann = [u for u in scan.unpaired if u.get("kind") == "annotation"]
    paired_ann = int(df["annotation_path"].notna().sum())
    by_problem: dict[str, int] = {}
    for u in scan.unpaired:
        key = f"{u.get('kind')}:{u.get('problem')}"
        by_problem[key] = by_problem.get(key, 0) + 1
    return {
        "source": source, "layout": layout, "src": str(src), "workspace_version": version,
        "rows": int(len(df)), "patients": int(df["patient_id"].nunique()),
        "status_counts": {str(k): int(v) for k, v in df["status"].value_counts().items()},
        "problems": [{"image_id": r.image_id, "status": r.status, "detail": r.status_detail,
                      "image_path": r.image_path} for r in bad.itertuples()],
        "annotations_total": scan.annotations_total, "annotations_paired": paired_ann,
        "annotations_unpaired": len(unpaired_ann), "unpaired": len(scan.unpaired),
        "unpaired_by_problem": by_problem, "skipped_files": scan.skipped,
        "ids_prefixed_with_source": prefixed, "replaced_rows_of_source": replaced,
        "clinical": clinical, "seconds": round(seconds, 3),
    }


def read_summary(workspace: str | Path, source: str = "default") -> dict[str, Any]:
    """The ``summary.json`` of the last ingest of ``source`` into ``workspace``."""
    path = Workspace.at(workspace).root / "ingest" / source / "summary.json"
    if not path.is_file():
        raise ConfigError(f"no ingest summary for source {source!r} at {path}; run `medsift ingest` first")
    return json.loads(path.read_text())


__all__ = ["ingest", "probe_all", "read_summary", "Status"]

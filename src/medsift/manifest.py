"""The manifest: one row per 2D image (slice), the one table every stage reads and extends.

In memory it is a :class:`pandas.DataFrame`. The ``boxes`` column holds Python lists of
``[x1, y1, x2, y2, label]`` (pixels, x right, y down, x2/y2 exclusive edge as in VOC pixel coords);
on disk (Parquet or CSV) it is stored as JSON text so that both formats round-trip exactly.

Example:
    >>> df = new_manifest([{"image_id": "0001_00", "patient_id": "0001", "image_path": "/d/0001_00.png"}])
    >>> validate(df) is df
    True
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from medsift.errors import ManifestError


@dataclass(frozen=True)
class Column:
    """One manifest column: name, pandas dtype, whether every row needs a value, and what it means."""

    name: str
    dtype: str
    required: bool
    doc: str


SCHEMA: tuple[Column, ...] = (
    Column("image_id", "string", True, "stable unique id, e.g. 0004_15"),
    Column("source", "string", True, "name of the ingested source (dataset/site)"),
    Column("patient_id", "string", True, "patient; the unit of every split"),
    Column("study_id", "string", False, "study (scan session)"),
    Column("series_id", "string", False, "series / volume id"),
    Column("slice_index", "Int64", False, "order of the slice inside its volume (0 = first)"),
    Column("image_path", "string", True, "source file of the pixels (absolute)"),
    Column("volume_index", "Int64", False, "slice index inside a 3D file (NIfTI), else empty"),
    Column("mask_path", "string", False, "source mask file (absolute) or empty"),
    Column("mask_volume_index", "Int64", False, "slice index inside a 3D mask file, else empty"),
    Column("annotation_path", "string", False, "source annotation file (VOC xml, ...) or empty"),
    Column("format", "string", True, "png | jpg | dicom | nifti"),
    Column("width", "Int64", False, "pixels"),
    Column("height", "Int64", False, "pixels"),
    Column("spacing_mm", "Float64", False, "in-plane pixel spacing in mm (square pixels assumed)"),
    Column("slice_thickness_mm", "Float64", False, "distance between slices in mm"),
    Column("has_hu", "boolean", False, "pixel values are Hounsfield units after rescale"),
    Column("hu_slope", "Float64", False, "RescaleSlope"),
    Column("hu_intercept", "Float64", False, "RescaleIntercept"),
    Column("window_center", "Float64", False, "stored display window centre (HU)"),
    Column("window_width", "Float64", False, "stored display window width (HU)"),
    Column("boxes", "object", False, "list of [x1, y1, x2, y2, label] in pixels"),
    Column("label_hemorrhage", "Int64", False, "1 = slice shows hemorrhage, 0 = none, empty = unknown"),
    Column("label_source", "string", False, "where the labels come from: annotation | csv | mask | pseudo | synthetic"),
    Column("content_hash", "string", False, "sha256 of the source file bytes"),
    Column("phash", "string", False, "perceptual hash (hex)"),
    Column("split", "string", False, "train | val | test (by patient)"),
    Column("fold", "Int64", False, "cross-validation fold (by patient)"),
    Column("excluded", "boolean", True, "cleaning decision; rows are never deleted"),
    Column("exclude_reason", "string", False, "why the row is excluded"),
    Column("status", "string", True, "ingest status: ok, or the problem found (unreadable, ...)"),
    Column("status_detail", "string", False, "human-readable detail of the status"),
)

COLUMNS: dict[str, Column] = {c.name: c for c in SCHEMA}
LABEL_PREFIX = "label_"
SUBTYPES: tuple[str, ...] = ("ivh", "iph", "sah", "edh", "sdh")
SPLITS: tuple[str, ...] = ("train", "val", "test")
STATUS_OK = "ok"

_DEFAULTS: dict[str, Any] = {"excluded": False, "status": STATUS_OK, "source": "default"}


def label_columns(df: pd.DataFrame) -> list[str]:
    """Names of the ``label_*`` columns holding 0/1 slice labels (``label_source`` is not one)."""
    return [c for c in df.columns if c.startswith(LABEL_PREFIX) and c != "label_source"]


def float_column(df: pd.DataFrame, col: str) -> np.ndarray:
    """(N,) float64 of a numeric manifest column, nan where missing (all nan when the column is absent)."""
    if col not in df.columns:
        return np.full(len(df), np.nan)
    return df[col].astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _coerce(df: pd.DataFrame) -> pd.DataFrame:
    for col in SCHEMA:
        if col.name not in df.columns:
            default = _DEFAULTS.get(col.name)
            if col.name == "boxes":
                df[col.name] = [[] for _ in range(len(df))]
                continue
            df[col.name] = pd.Series([default] * len(df), index=df.index, dtype=col.dtype if default is None else None)
        if col.dtype != "object":
            try:
                df[col.name] = df[col.name].astype(col.dtype)
            except (TypeError, ValueError) as exc:
                raise ManifestError(f"column {col.name!r}: cannot convert to {col.dtype}: {exc}") from exc
    for name in label_columns(df):
        try:
            df[name] = df[name].astype("Int64")
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"label column {name!r} must hold 0/1/empty: {exc}") from exc
    df["boxes"] = [list(b) if isinstance(b, (list, tuple, np.ndarray)) else [] for b in df["boxes"]]
    ordered = [c.name for c in SCHEMA] + [c for c in df.columns if c not in COLUMNS]
    return df[ordered]


def new_manifest(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build a validated manifest from row dicts; missing optional columns become empty."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        df = pd.DataFrame({c.name: pd.Series(dtype=c.dtype if c.dtype != "object" else object) for c in SCHEMA})
    return validate(_coerce(df))


def validate(df: pd.DataFrame) -> pd.DataFrame:
    """Check the schema; raise :class:`ManifestError` naming the bad column and row. Returns ``df``."""
    missing = [c.name for c in SCHEMA if c.name not in df.columns]
    if missing:
        raise ManifestError(f"manifest lacks columns {missing}; expected all of {[c.name for c in SCHEMA]}")
    for col in SCHEMA:
        if not col.required:
            continue
        empty = df[col.name].isna()
        if col.dtype == "string":
            empty |= df[col.name].astype("string").fillna("").str.len() == 0
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise ManifestError(f"column {col.name!r} is required but empty at row {row} "
                                f"(image_id={df['image_id'].iloc[row]!r})")
    dup = df["image_id"].duplicated(keep=False)
    if dup.any():
        ids = sorted(df.loc[dup, "image_id"].unique())[:5]
        raise ManifestError(f"image_id must be unique; duplicated: {ids}")
    for name in label_columns(df):
        values = df[name].dropna()
        bad = ~values.isin([0, 1])
        if bad.any():
            idx = values.index[bad.to_numpy()][0]
            raise ManifestError(f"label column {name!r} must be 0, 1 or empty; got {values[idx]!r} "
                                f"at image_id={df.loc[idx, 'image_id']!r}")
    bad_split = df["split"].notna() & ~df["split"].isin(SPLITS)
    if bad_split.any():
        idx = df.index[bad_split.to_numpy()][0]
        raise ManifestError(f"split must be one of {SPLITS}; got {df.loc[idx, 'split']!r} "
                            f"at image_id={df.loc[idx, 'image_id']!r}")
    for i, boxes in enumerate(df["boxes"]):
        for box in boxes:
            if len(box) != 5 or not all(_finite(v) for v in box[:4]):
                raise ManifestError(f"boxes at row {i} (image_id={df['image_id'].iloc[i]!r}) must be "
                                    f"[x1, y1, x2, y2, label] with finite numbers; got {box!r}")
    return df


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v))


def _to_disk(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["boxes"] = [json.dumps([[float(v) for v in b[:4]] + [str(b[4])] for b in boxes]) for boxes in df["boxes"]]
    return out


def _from_disk(df: pd.DataFrame) -> pd.DataFrame:
    if "boxes" in df.columns:
        df["boxes"] = [json.loads(b) if isinstance(b, str) and b else [] for b in df["boxes"]]
    return validate(_coerce(df))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace`` (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write atomically; ``.parquet`` or ``.csv`` by suffix."""
    path = Path(path)
    validate(df)
    disk = _to_disk(df)
    if path.suffix == ".parquet":
        import io

        buf = io.BytesIO()
        disk.to_parquet(buf, index=False)
        atomic_write_bytes(path, buf.getvalue())
    elif path.suffix == ".csv":
        atomic_write_bytes(path, disk.to_csv(index=False).encode("utf-8"))
    else:
        raise ManifestError(f"manifest path must end in .parquet or .csv; got {path.name!r}")
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest` (Parquet or CSV) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"no manifest at {path}; run `medsift ingest` first")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix == ".csv":
        # text columns stay text ("007", "1", "NA" are ids/details, not numbers or missing); only empty is missing
        text = {c.name: str for c in SCHEMA if c.dtype == "string"}
        df = pd.read_csv(path, dtype={**text, "boxes": str}, keep_default_na=False, na_values=[""])
    else:
        raise ManifestError(f"manifest path must end in .parquet or .csv; got {path.name!r}")
    return _from_disk(df)


def active(df: pd.DataFrame) -> pd.DataFrame:
    """Rows usable for training/evaluation: readable and not excluded by cleaning."""
    return df[(df["status"] == STATUS_OK) & ~df["excluded"].fillna(False).astype(bool)]

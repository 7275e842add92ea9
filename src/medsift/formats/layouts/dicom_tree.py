"""DICOM layout: a folder tree of DICOM files (any names, any depth), one row per slice file.

Files are recognised by content ("DICM" at byte 128). Rows group into series by ``SeriesInstanceUID``
(else the parent folder) and are ordered by position along the slice normal (ImagePositionPatient
projected on the cross product of ImageOrientationPatient), then InstanceNumber, then id; ``slice_index`` is
that order. ``slice_thickness_mm`` is the median distance between neighbouring positions when a series has
several, else the SliceThickness tag. ``patient_id``/``study_id`` come from the header (``unknown`` when
unreadable). ``image_id`` is the file stem when stems are unique in the tree; when they clash (``IM_00.dcm`` in
every series) a readable slice gets ``<PatientID>_s<series rank in patient>_<slice_index:03d>`` (e.g.
``0001_s0_012``) and an unreadable one its relative path joined by ``__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import LayoutError
from medsift.formats.layouts.base import Candidate, LayoutScan, is_skipped, list_files, require_folder, unique_ids


def scan_dicom(src: Path, *, labels: Path | None = None) -> LayoutScan:
    """List every file of a DICOM folder tree (non-DICOM content is recorded as ``not_image``)."""
    if labels is not None:
        raise LayoutError(f"layout dicom takes no --labels (got {labels}); DICOM slices are unlabelled. "
                          f"Use --layout folder with --labels for labelled PNG/JPEG folders")
    require_folder(src, "DICOM files (any depth)")
    files, skipped = [], []
    for p in list_files(src, recursive=True):
        (skipped.append(str(p)) if is_skipped(p) else files.append(p))
    if not files:
        raise LayoutError(f"{src} holds no candidate DICOM files (only {len(skipped)} documentation/hidden files)")
    ids = unique_ids(files, src)
    cands = [Candidate(image_id=ids[p], patient_id="unknown", image_path=str(p),
                       fields={"dicom_folder": str(p.parent.relative_to(src))}) for p in files]
    return LayoutScan(cands, [], skipped, finalize=order_series)


def _position_along_normal(row: dict[str, Any]) -> float | None:
    pos = _vector(row.get("dicom_position"))
    if pos is None or len(pos) != 3:
        return None
    normal = np.array([0.0, 0.0, 1.0])
    ori = _vector(row.get("dicom_orientation"))
    if ori is not None and len(ori) == 6:
        cross = np.cross(np.array(ori[:3]), np.array(ori[3:]))
        if np.linalg.norm(cross) > 0:
            normal = cross / np.linalg.norm(cross)
    return float(np.dot(normal, np.array(pos)))


def _vector(value: Any) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return [float(v) for v in value]


def order_series(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assign ``series_id`` (fallback: folder), ``slice_index``, ``slice_position_mm`` and thickness."""
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("format") != "dicom":
            continue
        if not row.get("series_id"):
            row["series_id"] = f"folder:{row.get('dicom_folder') or '.'}"
        row["slice_position_mm"] = _position_along_normal(row)
        series.setdefault(row["series_id"], []).append(row)
    for members in series.values():
        members.sort(key=lambda r: (r["slice_position_mm"] is None, r["slice_position_mm"] or 0.0,
                                    r.get("dicom_instance_number") or 0, r["image_id"]))
        positions = [r["slice_position_mm"] for r in members if r["slice_position_mm"] is not None]
        gaps = np.diff(sorted(positions)) if len(positions) > 1 else np.array([])
        gaps = gaps[gaps > 1e-6]
        thickness = float(np.median(gaps)) if gaps.size else None
        for k, r in enumerate(members):
            r["slice_index"] = k
            if thickness is not None:
                r["slice_thickness_mm"] = thickness
    _readable_ids(rows, series)
    return rows


def _readable_ids(rows: list[dict[str, Any]], series: dict[str, list[dict[str, Any]]]) -> None:
    """Replace path-based ids (stems clashed) by ``<patient>_s<series rank>_<slice:03d>`` when unique."""
    if not any("__" in r["image_id"] for r in rows):
        return
    by_patient: dict[str, list[str]] = {}
    for sid, members in series.items():
        by_patient.setdefault(str(members[0].get("patient_id")), []).append(sid)
    rank = {sid: i for sids in by_patient.values() for i, sid in enumerate(sorted(sids))}
    taken = {r["image_id"] for r in rows if "__" not in r["image_id"]}
    for r in rows:
        if "__" not in r["image_id"] or r.get("series_id") not in rank or r.get("slice_index") is None:
            continue
        new = f"{r.get('patient_id')}_s{rank[r['series_id']]}_{int(r['slice_index']):03d}"
        if new not in taken:
            taken.add(new)
            r["image_id"] = new

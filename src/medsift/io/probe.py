"""Read a layout candidate's files once: sha256, format by content, size, DICOM/NIfTI headers, VOC boxes.

:func:`probe_candidate` is what the ingest workers run. It never raises for bad input: every problem becomes
a ``(status, detail)`` pair in the row's ``_problems`` (see :class:`medsift.formats.layouts.base.Status`).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import FormatError
from medsift.formats.layouts.base import Candidate, Kind, Status
from medsift.io.images import RASTER_FORMATS, SNIFF_BYTES, ImageTooLargeError, probe_raster, sniff_format


def _read(path: str, problems: list, status: Status, what: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        problems.append((status.value, f"{what} {path}: cannot read ({exc.strerror or exc})"))
        return None


def content_format(data: bytes) -> str | None:
    """Format of file bytes by content: raster names, ``dicom``, ``nifti`` (also gzipped), or None."""
    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt == "gzip":
        from medsift.io.nifti import sniff_gzip_nifti

        return "nifti" if sniff_gzip_nifti(data) else None
    return fmt


def _base_row(c: Candidate) -> dict[str, Any]:
    row: dict[str, Any] = {"image_id": c.image_id, "patient_id": c.patient_id, "image_path": c.image_path,
                           "mask_path": c.mask_path, "annotation_path": c.annotation_path}
    row.update(c.fields)
    return row


def probe_candidate(c: Candidate) -> list[dict[str, Any]]:
    """Rows for one candidate (one row for a 2D file, one per slice for a volume), each with ``_problems``."""
    if c.kind == Kind.VOLUME:
        return _probe_volume(c)
    row = _base_row(c)
    problems: list[tuple[str, str]] = list(c.problems)
    row["_problems"] = problems
    row["format"] = "unknown"
    data = _read(c.image_path, problems, Status.UNREADABLE, "image")
    if data is None:
        return [row]
    row["content_hash"] = hashlib.sha256(data).hexdigest()
    row["file_bytes"] = len(data)
    if not data:
        problems.append((Status.EMPTY_FILE.value, f"{c.image_path}: file is empty (0 bytes)"))
        return [row]
    fmt = content_format(data)
    row["format"] = fmt or "unknown"
    if fmt in RASTER_FORMATS:
        _probe_raster(row, data, problems)
    elif fmt == "dicom":
        _probe_dicom(row, data, problems)
    elif fmt == "nifti":
        problems.append((Status.NOT_IMAGE.value, f"{c.image_path}: a NIfTI volume in a 2D layout; "
                                                 f"expected PNG/JPEG/DICOM (use --layout nifti for volumes)"))
    else:
        problems.append((Status.NOT_IMAGE.value, f"{c.image_path}: not an image (content starts "
                                                 f"{data[:8]!r}); expected PNG, JPEG or DICOM bytes"))
    ext = Path(c.image_path).suffix.lower().lstrip(".")
    if fmt and ext and _EXT_FORMAT.get(ext, ext) != fmt and ext in _EXT_FORMAT:
        row["extension_mismatch"] = f".{ext} holds {fmt}"
    if c.mask_path:
        _probe_mask(row, problems)
    if c.annotation_path:
        _probe_annotation(row, problems)
    return [row]


_EXT_FORMAT = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "dcm": "dicom", "dicom": "dicom", "gif": "gif",
               "bmp": "bmp", "tif": "tiff", "tiff": "tiff", "nii": "nifti", "gz": "nifti"}


def _problem(exc: Exception) -> tuple[str, str]:
    """``(status, message)`` of a decode failure: too large (a decompression-bomb guard) or unreadable."""
    return (Status.TOO_LARGE if isinstance(exc, ImageTooLargeError) else Status.UNREADABLE).value, str(exc)


def _probe_raster(row: dict, data: bytes, problems: list) -> None:
    try:
        info = probe_raster(data, row["image_path"])
    except FormatError as exc:  # ImageTooLargeError included
        problems.append(_problem(exc))
        return
    row.update(format=info.format, width=info.width, height=info.height, has_hu=False, color_mode=info.mode)


def _probe_dicom(row: dict, data: bytes, problems: list) -> None:
    from medsift.io.dicom import dicom_info, parse_dicom

    try:
        ds = parse_dicom(data, row["image_path"])
    except FormatError as exc:
        problems.append(_problem(exc))
        if isinstance(exc, ImageTooLargeError):
            return
        ds = dicom_header_only(data)  # unreadable pixels: keep what the header says
        if ds is None:
            return
    header = dicom_row_fields(dicom_info(ds))
    for key, value in header.items():
        if value is None:
            continue
        if key == "patient_id":
            if row.get("patient_id") in (None, "", "unknown"):
                row["patient_id"] = value
        elif row.get(key) is None:
            row[key] = value
    row["has_hu"] = not any(p[0] == Status.UNREADABLE.value for p in problems)


def dicom_row_fields(info) -> dict[str, Any]:
    """Manifest fields from a :class:`~medsift.io.dicom.DicomInfo` (None where the header is silent)."""
    return {
        "patient_id": info.patient_id, "study_id": info.study_id, "series_id": info.series_id,
        "spacing_mm": info.spacing_mm, "slice_thickness_mm": info.slice_thickness_mm,
        "hu_slope": info.slope, "hu_intercept": info.intercept,
        "window_center": info.window_center, "window_width": info.window_width,
        "width": info.columns or None, "height": info.rows or None,
        "dicom_instance_number": info.instance_number, "dicom_modality": info.modality,
        "dicom_sop_instance_uid": info.sop_instance_uid, "dicom_bits_stored": info.bits_stored,
        "dicom_pixel_representation": info.pixel_representation, "dicom_photometric": info.photometric,
        "dicom_position": list(info.position) if info.position else None,
        "dicom_orientation": list(info.orientation) if info.orientation else None,
    }


def dicom_header_only(data: bytes):
    """The parsed header of DICOM bytes without their pixels, or None when it does not parse."""
    import io

    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception:
        return None


def _probe_mask(row: dict, problems: list) -> None:
    path = row["mask_path"]
    data = _read(path, problems, Status.MASK_UNREADABLE, "mask")
    if data is None:
        return
    try:
        info = probe_raster(data, path)
    except FormatError as exc:
        problems.append((Status.MASK_UNREADABLE.value, f"mask {exc}"))
        return
    row["mask_format"] = info.format
    if row.get("width") is not None and (info.width, info.height) != (row["width"], row["height"]):
        problems.append((Status.MASK_SIZE_MISMATCH.value,
                         f"mask {Path(path).name} is {info.width}x{info.height}; image is "
                         f"{row['width']}x{row['height']}"))


def _probe_annotation(row: dict, problems: list) -> None:
    from medsift.formats.voc import read_voc

    try:
        ann = read_voc(row["annotation_path"])
    except FormatError as exc:
        problems.append((Status.BAD_ANNOTATION.value, str(exc)))
        return
    row["boxes"] = ann.boxes
    row["voc_filename"] = ann.filename
    row["voc_width"], row["voc_height"] = ann.width, ann.height
    if row.get("label_source") == "annotation" and row.get("label_hemorrhage") is None:
        row["label_hemorrhage"] = 1 if ann.boxes else 0
    width, height = row.get("width"), row.get("height")
    if width is None or height is None:
        return
    if ann.width is not None and ann.height is not None and (ann.width, ann.height) != (width, height):
        problems.append((Status.ANNOTATION_SIZE_MISMATCH.value,
                         f"annotation says {ann.width}x{ann.height}; image is {width}x{height}"))
    bad = [b for b in ann.boxes if b[0] < 0 or b[1] < 0 or b[2] > width or b[3] > height
           or b[2] <= b[0] or b[3] <= b[1]]
    if bad:
        problems.append((Status.BOX_OUTSIDE_IMAGE.value,
                         f"{len(bad)} box(es) outside the {width}x{height} image or empty: "
                         + ", ".join(str([round(v, 1) for v in b[:4]]) for b in bad[:3])))


def _probe_volume(c: Candidate) -> list[dict[str, Any]]:
    from medsift.io.nifti import _from_bytes, _info

    base = _base_row(c)
    problems: list[tuple[str, str]] = list(c.problems)
    data = _read(c.image_path, problems, Status.UNREADABLE, "volume")
    fail = dict(base, format="nifti", _problems=problems)
    if data is None:
        return [fail]
    fail["content_hash"] = hashlib.sha256(data).hexdigest()
    if not data:
        problems.append((Status.EMPTY_FILE.value, f"{c.image_path}: file is empty (0 bytes)"))
        return [fail]
    if content_format(data) != "nifti":
        problems.append((Status.NOT_IMAGE.value, f"{c.image_path}: not a NIfTI volume (content starts "
                                                 f"{data[:8]!r})"))
        fail["format"] = content_format(data) or "unknown"
        return [fail]
    try:
        img = _from_bytes(data, c.image_path)
        info = _info(img, c.image_path)
        stored = np.asanyarray(img.dataobj)
    except (FormatError, Exception) as exc:  # nibabel raises several types on truncated data
        problems.append((Status.UNREADABLE.value, f"{c.image_path}: cannot read NIfTI ({exc})"))
        return [fail]
    if stored.ndim == 2:
        stored = stored[:, :, None]
    elif stored.ndim == 4:
        stored = stored[:, :, :, 0]
    labels = _volume_labels(c, info.shape, problems)
    file_hash = fail["content_hash"]
    rows = []
    for k in range(info.shape[2]):
        sl = np.ascontiguousarray(stored[:, :, k])
        row = dict(base)
        row.update(image_id=f"{c.image_id}_{k:03d}", format="nifti", volume_index=k, slice_index=k,
                   width=info.shape[0], height=info.shape[1], spacing_mm=info.zooms_mm[0],
                   slice_thickness_mm=info.zooms_mm[2], has_hu=True, hu_slope=info.slope,
                   hu_intercept=info.intercept, file_hash=file_hash,
                   content_hash=hashlib.sha256(sl.tobytes()).hexdigest(), _problems=list(problems))
        if labels is not None:
            row.update({name: int(flags[k]) for name, flags in labels[0].items()})
            row.update(mask_volume_index=k, label_source="mask", mask_labels=labels[1])
        elif c.mask_path:
            row["mask_path"] = None
        rows.append(row)
    return rows


HEMORRHAGE_NAMES: dict[str, str] = {
    "hemorrhage": "label_hemorrhage", "haemorrhage": "label_hemorrhage", "ich": "label_hemorrhage",
    "blood": "label_hemorrhage", "iph": "label_iph", "intraparenchymal": "label_iph", "ivh": "label_ivh",
    "intraventricular": "label_ivh", "sah": "label_sah", "subarachnoid": "label_sah", "edh": "label_edh",
    "epidural": "label_edh", "sdh": "label_sdh", "subdural": "label_sdh",
}
"""Label names (from a ``dataset.json``) that mean blood; other names (edema, background...) are not."""


def _volume_labels(c: Candidate, shape: tuple, problems: list) -> tuple[dict[str, np.ndarray], str] | None:
    """Per-slice 0/1 label columns and the JSON list of label values, or None when unusable.

    Without label names every non-zero value means hemorrhage; with ``mask_label_names`` (JSON
    ``{value: name}``) only names in :data:`HEMORRHAGE_NAMES` count, and subtype names fill their column.
    """
    import json

    from medsift.io.nifti import _from_bytes

    if not c.mask_path:
        return None
    data = _read(c.mask_path, problems, Status.MASK_UNREADABLE, "label volume")
    if data is None:
        return None
    try:
        lab = np.asanyarray(_from_bytes(data, c.mask_path).dataobj)
    except Exception as exc:
        problems.append((Status.MASK_UNREADABLE.value, f"label volume {c.mask_path}: {exc}"))
        return None
    if lab.ndim == 2:
        lab = lab[:, :, None]
    if lab.ndim == 4:
        lab = lab[:, :, :, 0]
    if tuple(lab.shape) != tuple(shape):
        problems.append((Status.MASK_SIZE_MISMATCH.value,
                         f"label volume {Path(c.mask_path).name} has shape {tuple(lab.shape)}; "
                         f"image volume {tuple(shape)}"))
        return None
    values = sorted(int(v) for v in np.unique(lab) if v != 0)
    names = c.fields.get("mask_label_names")
    flat = lab.reshape(-1, shape[2])
    if not names:
        return {"label_hemorrhage": (flat != 0).any(axis=0)}, json.dumps(values)
    by_value = {int(k): str(v).strip().lower() for k, v in json.loads(names).items()}
    columns: dict[str, np.ndarray] = {"label_hemorrhage": np.zeros(shape[2], bool)}
    for value, name in by_value.items():
        column = HEMORRHAGE_NAMES.get(name)
        if value == 0 or column is None:
            continue
        present = (flat == value).any(axis=0)
        columns[column] = columns.get(column, np.zeros(shape[2], bool)) | present
        columns["label_hemorrhage"] |= present
    return columns, json.dumps(values)

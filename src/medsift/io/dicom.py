"""DICOM slices (pydicom): header fields medsift keeps, and pixels in Hounsfield units.

HU = stored value * RescaleSlope + RescaleIntercept (slope 1, intercept 0 when absent). Multi-valued
WindowCenter/WindowWidth keep their first value. Nothing is "fixed" silently: quirks stay for the audit.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import FormatError


@dataclass(frozen=True)
class DicomInfo:
    """Header fields of one DICOM slice. Positions/spacings in mm, window in HU."""

    patient_id: str | None
    study_id: str | None
    series_id: str | None
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    rows: int
    columns: int
    spacing_mm: float | None
    slice_thickness_mm: float | None
    slope: float
    intercept: float
    window_center: float | None
    window_width: float | None
    modality: str | None
    sop_instance_uid: str | None = None
    bits_stored: int | None = None
    pixel_representation: int | None = None
    photometric: str | None = None


def _first_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if len(value) == 0:
            return None
        value = value[0]
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _floats(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if out and all(math.isfinite(v) for v in out) else None


def _text(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    text = str(value).strip() if value is not None else ""
    return text or None


def parse_dicom(data: bytes, path: str | Path = "<bytes>"):
    """Parse DICOM bytes into a :class:`pydicom.Dataset`, with pixels checked to be complete.

    Raises:
        FormatError: not DICOM, truncated header, missing or truncated pixel data, or undecodable pixels.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except InvalidDicomError as exc:
        raise FormatError(f"{path}: not a DICOM file ({exc})") from None
    except Exception as exc:  # pydicom raises many types on truncated/corrupt headers
        raise FormatError(f"{path}: cannot parse DICOM ({type(exc).__name__}: {exc})") from None
    if "PixelData" not in ds:
        raise FormatError(f"{path}: DICOM file has no PixelData; expected an image slice")
    _check_declared_size(ds, path)
    _stored(ds, path)
    return ds


def _check_declared_size(ds, path: str | Path) -> None:
    """Refuse before decoding a header declaring more pixels than :data:`medsift.io.images.MAX_IMAGE_PIXELS`
    (a few bytes of RLE/JPEG data can declare 65535 x 65535: the decoder would allocate it all)."""
    from medsift.io.images import MAX_IMAGE_PIXELS, ImageTooLargeError

    rows, cols, frames = (_int(ds.get(k)) or 1 for k in ("Rows", "Columns", "NumberOfFrames"))
    if rows * cols * frames > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(f"{path}: DICOM header declares {frames} x {rows} x {cols} pixels, refused as a "
                                 f"decompression bomb; expected at most {MAX_IMAGE_PIXELS} pixels")


def _stored(ds, path: str | Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except Exception as exc:
        raise FormatError(f"{path}: cannot decode DICOM pixels, file truncated or compressed without a "
                          f"decoder ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise FormatError(f"{path}: DICOM pixels have shape {arr.shape}; expected one 2D grayscale slice")
    return arr


def dicom_info(ds) -> DicomInfo:
    """Read the header fields medsift keeps from a parsed dataset (invalid-VR warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _dicom_info(ds)


def _dicom_info(ds) -> DicomInfo:
    spacing = _floats(ds.get("PixelSpacing"))
    instance = _first_float(ds.get("InstanceNumber"))
    slope = _first_float(ds.get("RescaleSlope"))
    intercept = _first_float(ds.get("RescaleIntercept"))
    position = _floats(ds.get("ImagePositionPatient"))
    return DicomInfo(
        patient_id=_text(ds, "PatientID"),
        study_id=_text(ds, "StudyInstanceUID"),
        series_id=_text(ds, "SeriesInstanceUID"),
        instance_number=int(instance) if instance is not None else None,
        position=position if position is not None and len(position) == 3 else None,
        orientation=_floats(ds.get("ImageOrientationPatient")),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        spacing_mm=spacing[0] if spacing else None,
        slice_thickness_mm=_first_float(ds.get("SliceThickness")),
        slope=1.0 if slope is None else slope,
        intercept=0.0 if intercept is None else intercept,
        window_center=_first_float(ds.get("WindowCenter")),
        window_width=_first_float(ds.get("WindowWidth")),
        modality=_text(ds, "Modality"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        bits_stored=_int(ds.get("BitsStored")),
        pixel_representation=_int(ds.get("PixelRepresentation")),
        photometric=_text(ds, "PhotometricInterpretation"),
    )


def _int(value: Any) -> int | None:
    number = _first_float(value)
    return int(number) if number is not None else None


def to_hu(stored: np.ndarray, *, slope: float, intercept: float) -> np.ndarray:
    """Stored DICOM values to Hounsfield units: ``stored * slope + intercept``, float32 (H, W)."""
    return (stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(np.float32)


def read_dicom_hu(path: str | Path, *, hu: bool = True) -> np.ndarray:
    """Read one DICOM slice as float32 (H, W): HU when ``hu`` (default), else the stored values."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None
    return dicom_pixels(data, path, hu=hu)


def dicom_pixels(data: bytes, path: str | Path, *, hu: bool = True) -> np.ndarray:
    """Decode DICOM bytes as float32 (H, W): HU when ``hu`` (RescaleSlope/Intercept), else the stored values."""
    ds = parse_dicom(data, Path(path))
    stored = _stored(ds, Path(path))
    if not hu:
        return stored.astype(np.float32)
    info = dicom_info(ds)
    return to_hu(stored, slope=info.slope, intercept=info.intercept)


def slice_positions(infos: list[DicomInfo]) -> list[float | None]:
    """Position of each slice along the series normal (mm), from ImagePositionPatient and orientation.

    Uses the cross product of the row/column direction cosines as the normal (z when no orientation).
    """
    out: list[float | None] = []
    for info in infos:
        if info.position is None:
            out.append(None)
            continue
        normal = np.array([0.0, 0.0, 1.0])
        if info.orientation is not None and len(info.orientation) == 6:
            row, col = np.array(info.orientation[:3]), np.array(info.orientation[3:])
            cross = np.cross(row, col)
            if np.linalg.norm(cross) > 0:
                normal = cross / np.linalg.norm(cross)
        out.append(float(np.dot(normal, np.array(info.position))))
    return out

"""Pixels of one manifest row: :func:`load_slice`, :func:`load_mask`, and :func:`read_image_file` for loose files.

A row is anything with the manifest columns as attributes or keys (a ``pandas`` row from ``iterrows``/``loc``,
a namedtuple from ``itertuples``, or a dict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import FormatError
from medsift.io.images import RASTER_FORMATS, SNIFF_BYTES, decode_gray, sniff_format


def _get(row: Any, name: str) -> Any:
    if isinstance(row, dict):
        value = row.get(name)
    elif hasattr(row, name):
        value = getattr(row, name)
    else:
        try:
            value = row[name]
        except (KeyError, IndexError, TypeError):
            value = None
    try:
        import pandas as pd

        if value is not None and not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None


def _content_format(path: str | Path, data: bytes) -> str | None:
    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt == "gzip":
        from medsift.io.nifti import sniff_gzip_nifti

        return "nifti" if sniff_gzip_nifti(data) else None
    return fmt


def _decode_2d(path: str | Path, data: bytes, *, hu: bool) -> np.ndarray:
    fmt = _content_format(path, data)
    if fmt in RASTER_FORMATS:
        return decode_gray(data, path)
    if fmt == "dicom":
        from medsift.io.dicom import dicom_pixels

        return dicom_pixels(data, path, hu=hu)
    if fmt == "nifti":
        from medsift.io.nifti import nifti_slice

        return nifti_slice(path, 0)
    raise FormatError(f"{path}: not a readable image (content starts {data[:8]!r}); expected PNG, JPEG, "
                      f"DICOM or NIfTI bytes")


def load_slice(row: Any) -> np.ndarray:
    """Pixels of a manifest row as float32 (H, W).

    HU when ``row.has_hu`` (DICOM: stored * slope + intercept; NIfTI: scaled data), else raw gray values
    (8-bit files 0..255; RGB converted to luma). Volumes read slice ``row.volume_index``; the opened
    NIfTI volume is cached so reading every slice of a volume decodes it once.

    Raises:
        FormatError: the file is missing, unreadable, or not what its content claims (message has the path).
    """
    path = _get(row, "image_path")
    if path is None:
        raise FormatError(f"row {_get(row, 'image_id')!r} has no image_path; expected a source file path")
    fmt = _get(row, "format")
    hu = bool(_get(row, "has_hu") or False)
    index = _get(row, "volume_index")
    if fmt == "nifti" or index is not None:
        from medsift.io.nifti import nifti_slice

        return nifti_slice(path, int(index or 0))
    return _decode_2d(path, _read(path), hu=hu)


def load_mask(row: Any) -> np.ndarray | None:
    """Mask of a manifest row as bool (H, W), or ``None`` when the row has no ``mask_path``.

    PNG/JPEG masks: True where the gray value is > 0. NIfTI label volumes (``mask_volume_index``): True where
    the label is non-zero — every label counts as foreground. Raises :class:`FormatError` when the mask is
    unreadable or its size differs from the row's ``width``/``height``.
    """
    path = _get(row, "mask_path")
    if path is None:
        return None
    index = _get(row, "mask_volume_index")
    if index is not None:
        from medsift.io.nifti import nifti_mask_slice

        mask = nifti_mask_slice(path, int(index))
    else:
        data = _read(path)
        fmt = _content_format(path, data)
        if fmt == "nifti":
            from medsift.io.nifti import nifti_mask_slice

            mask = nifti_mask_slice(path, 0)
        else:
            mask = _decode_2d(path, data, hu=False) > 0
    width, height = _get(row, "width"), _get(row, "height")
    if width is not None and height is not None and mask.shape != (int(height), int(width)):
        raise FormatError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH); expected the image size "
                          f"{int(width)}x{int(height)}")
    return mask


def read_image_file(path: str | Path, *, hu: bool = True) -> np.ndarray:
    """Read one loose image file as float32 (H, W), format decided by content.

    PNG/JPEG: gray values; DICOM: HU when ``hu`` (default) else stored values; NIfTI: its first slice
    (a 2D NIfTI is one slice), scaled data.
    """
    return _decode_2d(path, _read(path), hu=hu)

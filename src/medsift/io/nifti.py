"""NIfTI volumes (nibabel): header probe, cached decoding, and 2D slices.

Slice convention: a volume with data shape (X, Y, Z) gives Z slices; slice ``k`` as a 2D image is
``data[:, :, k].T`` — shape (H, W) = (Y, X), rows follow the second voxel axis. Image values are the
scaled data (``scl_slope``/``scl_inter`` applied by nibabel), which medsift takes as HU for CT volumes.
Label volumes: every non-zero label counts as foreground in :func:`nifti_mask_slice`.
"""

from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from medsift.errors import FormatError

VOLUME_CACHE_SIZE = 4


@dataclass(frozen=True)
class NiftiInfo:
    """Header of one volume: shape (X, Y, Z) and voxel size (mm) along each axis; scaling of stored values."""

    shape: tuple[int, int, int]
    zooms_mm: tuple[float, float, float]
    slope: float
    intercept: float


def sniff_gzip_nifti(data: bytes) -> bool:
    """Whether gzip bytes hold a NIfTI-1/2 header (looks only at the first decompressed bytes)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            head = fh.read(352)
    except (OSError, EOFError):
        return False
    return head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] in (b"n+2\x00", b"ni2\x00") or \
        head[:4] in (b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c", b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c")


def _from_bytes(data: bytes, path: str | Path):
    import nibabel as nib

    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return nib.Nifti1Image.from_bytes(data)
    except Exception as exc:
        try:
            return nib.Nifti2Image.from_bytes(data)
        except Exception:
            raise FormatError(f"{path}: cannot parse NIfTI ({type(exc).__name__}: {exc})") from None


def _info(img, path: str | Path) -> NiftiInfo:
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise FormatError(f"{path}: NIfTI data has shape {img.shape}; expected a 2D or 3D volume")
    raw_zooms = img.header.get_zooms()
    zooms = tuple(round(float(z), 6) for z in raw_zooms[:3]) + (1.0,) * max(0, 3 - len(raw_zooms))
    slope, inter = img.dataobj.slope, img.dataobj.inter
    slope = 1.0 if slope is None or not math.isfinite(float(slope)) or float(slope) == 0 else float(slope)
    inter = 0.0 if inter is None or not math.isfinite(float(inter)) else float(inter)
    return NiftiInfo(shape, zooms[:3], slope, inter)  # type: ignore[arg-type]


def probe_nifti(data: bytes, path: str | Path = "<bytes>") -> NiftiInfo:
    """Parse a volume from bytes and decode its data once (so truncated files fail here)."""
    img = _from_bytes(data, path)
    info = _info(img, path)
    try:
        np.asanyarray(img.dataobj)
    except Exception as exc:
        raise FormatError(f"{path}: NIfTI data cannot be read, file truncated? ({type(exc).__name__}: {exc})") \
            from None
    return info


@lru_cache(maxsize=VOLUME_CACHE_SIZE)
def load_volume(path: str) -> np.ndarray:
    """Scaled data of a volume as float32 (X, Y, Z), cached on ``path`` (last few volumes kept).

    The cached array is read-only; copy before modifying.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None
    img = _from_bytes(data, path)
    _info(img, path)
    try:
        arr = np.asarray(img.get_fdata(dtype=np.float32), dtype=np.float32)
    except Exception as exc:
        raise FormatError(f"{path}: NIfTI data cannot be read ({type(exc).__name__}: {exc})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim == 4:
        arr = arr[:, :, :, 0]
    arr.setflags(write=False)
    return arr


def nifti_slice(path: str | Path, index: int) -> np.ndarray:
    """Slice ``index`` (0-based, along the third axis) as float32 (H, W) = ``data[:, :, index].T``."""
    vol = load_volume(str(path))
    if not 0 <= int(index) < vol.shape[2]:
        raise FormatError(f"{path}: slice index {index} outside the volume; expected 0..{vol.shape[2] - 1}")
    return np.ascontiguousarray(vol[:, :, int(index)].T)


def nifti_mask_slice(path: str | Path, index: int) -> np.ndarray:
    """Label-volume slice as bool (H, W): True where the label is non-zero (every label counts)."""
    return nifti_slice(path, index) != 0


def label_values(path: str | Path) -> list[int]:
    """Distinct non-zero labels of a label volume (sorted integers)."""
    vol = load_volume(str(path))
    values = np.unique(vol)
    return [int(v) for v in values if v != 0]

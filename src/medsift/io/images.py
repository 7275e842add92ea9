"""Raster images (PNG, JPEG, ...): recognise by content, decode with Pillow behind a decompression-bomb guard.

The format of a file is decided by its first bytes (magic numbers), never by its extension:
a ``.png`` that holds JPEG bytes is read as JPEG and reported as ``jpg``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsift.errors import FormatError

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image (width x height, pixels) Pillow may decode; bigger ones are refused as decompression bombs."""

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"BM", "bmp"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (128, b"DICM", "dicom"),
    (344, b"n+1\x00", "nifti"),
    (344, b"ni1\x00", "nifti"),
    (0, b"\x1f\x8b", "gzip"),
)
RASTER_FORMATS: frozenset[str] = frozenset({"png", "jpg", "gif", "bmp", "tiff"})
SNIFF_BYTES = 352


def sniff_format(head: bytes) -> str | None:
    """Name the format of a file from its first bytes (at least :data:`SNIFF_BYTES` when available).

    Returns ``png | jpg | gif | bmp | tiff | dicom | nifti | gzip`` or ``None`` when unknown.
    A gzip stream may be a ``.nii.gz`` volume: :func:`medsift.io.nifti.sniff_gzip_nifti` tells.
    """
    for offset, magic, name in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return name
    # NIfTI-1 header without "DICM": sizeof_hdr == 348 (little or big endian) at offset 0.
    if len(head) >= 4 and head[:4] in (b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c"):
        return "nifti"
    return None


class ImageTooLargeError(FormatError):
    """An image larger than :data:`MAX_IMAGE_PIXELS` (possible decompression bomb) was refused."""


@dataclass(frozen=True)
class RasterInfo:
    """What decoding a raster file told us: its format (by content), size in pixels and Pillow mode."""

    format: str
    width: int
    height: int
    mode: str


def _open(data: bytes, path: str | Path, *, verify_only: bool = False):
    """Open with the bomb guard; decode fully, or for ``verify_only`` PNGs check every chunk CRC and the
    end of the stream without decompressing (catches truncation and corruption, ~15x faster). After a
    verify only ``size``/``mode``/``format`` of the returned image may be used."""
    from PIL import Image

    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if verify_only and img.format == "PNG":
                img.verify()
            else:
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{path}: refused as a decompression bomb ({exc}); "
                                 f"expected at most {MAX_IMAGE_PIXELS} pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous  # the guard applies to medsift's reads only
    return img


def probe_raster(data: bytes, path: str | Path = "<bytes>") -> RasterInfo:
    """Check raster bytes are complete and return format and size.

    PNG: every chunk's CRC and the IEND end marker are verified (no decompression); other formats are
    fully decoded. Either way truncated or corrupt files fail here.

    Raises:
        FormatError: not a raster image, truncated, corrupt, or larger than :data:`MAX_IMAGE_PIXELS`.
    """
    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt not in RASTER_FORMATS:
        raise FormatError(f"{path}: not a PNG/JPEG/GIF/BMP/TIFF image (content starts {data[:8]!r}, "
                          f"recognised as {fmt or 'unknown'})")
    img = _open(data, path, verify_only=True)
    return RasterInfo(fmt, int(img.width), int(img.height), str(img.mode))


def decode_gray(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode raster bytes to a float32 (H, W) gray image.

    8-bit images keep their 0..255 values; RGB(A)/palette images become luma (ITU-R 601-2, Pillow ``L``);
    16-bit and 32-bit gray images keep their raw integer values.
    """
    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt not in RASTER_FORMATS:
        raise FormatError(f"{path}: not a PNG/JPEG/GIF/BMP/TIFF image (recognised as {fmt or 'unknown'})")
    img = _open(data, path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img.convert("I") if img.mode.startswith("I;16") else img)
    elif img.mode == "L":
        arr = np.asarray(img)
    else:
        arr = np.asarray(img.convert("L"))
    return arr.astype(np.float32, copy=False)


def read_gray(path: str | Path) -> np.ndarray:
    """Read one raster file as a float32 (H, W) gray image (see :func:`decode_gray`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None
    return decode_gray(data, path)

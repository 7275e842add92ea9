"""Decode each image once and keep only small features every check reads.

Per image: file facts (bytes sha256, sniffed content type, PIL mode, bit depth, size), intensity facts
(min/max/mean/std in stored units, border and centre means after display scaling), four 64-bit
perceptual hashes (imagehash aHash, dHash, pHash, wHash), a 64x64 uint8 thumbnail, a 64-bin histogram,
and mask facts (area, bounding box, components, interior fraction, how much of it the boxes cover). Memory per
image is ~4.5 kB, so an audit stays flat in the number of images: the full arrays are dropped as soon as
features are taken.

PNG/JPEG files are decoded here with Pillow (integrity needs the raw mode and bit depth, which
:func:`medsift.io.load_slice` normalises away); DICOM and NIfTI go through :mod:`medsift.io`.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from medsift.formats.masks import mask_bbox

THUMB = 64
HIST_BINS = 64
HASH_NAMES: tuple[str, ...] = ("ahash", "dhash", "phash", "whash")
ROW_FIELDS: tuple[str, ...] = ("image_id", "image_path", "format", "mask_path", "boxes", "has_hu", "hu_slope",
                               "hu_intercept", "window_center", "window_width", "volume_index",
                               "mask_volume_index", "width", "height", "source", "patient_id", "status")
RASTER_FORMATS = frozenset({"png", "jpg", "jpeg", "bmp", "tif", "tiff"})
BOX_MARGIN = 0.25

_EXT_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".dcm": "dicom", ".dicom": "dicom",
              ".nii": "nifti", ".gz": "gzip", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff"}


@dataclass(frozen=True)
class ImageFeatures:
    """Small features of one image: ``scalars`` (JSON-able), ``thumb`` uint8 (64, 64), ``hist`` float32 (64,),
    ``hashes`` uint64 (4,)."""

    scalars: dict
    thumb: np.ndarray
    hist: np.ndarray
    hashes: np.ndarray


def sniff_type(head: bytes) -> str:
    """Content type from the first bytes of a file: png, jpeg, dicom, gzip, nifti, bmp, tiff or unknown."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00", b"n+2\x00"):
        return "nifti"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return "unknown"


def extension_type(path: str) -> str:
    """Content type the file name promises (``.nii.gz`` -> gzip)."""
    return _EXT_TYPES.get(Path(path).suffix.lower(), "unknown")


_MODE_BITS = {"1": 1, "L": 8, "P": 8, "LA": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8,
              "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}


def _display_u8(arr: np.ndarray, row: Mapping[str, Any]) -> np.ndarray:
    """uint8 array in display units 0..255: as is for 8-bit, stored window for HU, 1-99 % stretch else."""
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float32, copy=False)
    if _true(row.get("has_hu")):
        c, w = _num(row.get("window_center"), 40.0), _num(row.get("window_width"), 80.0)
        out = (arr - (c - w / 2)) / max(w, 1e-6) * 255.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 255:
            out = arr
        else:
            p1, p99 = np.percentile(arr, [1, 99])
            out = (arr - p1) / max(p99 - p1, 1e-6) * 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def _num(v: Any, default: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def _true(v: Any) -> bool:
    try:
        return bool(v) and not (isinstance(v, float) and math.isnan(v))
    except (TypeError, ValueError):
        return False


def _present(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _decode_raster(data: bytes) -> tuple[np.ndarray, str, str]:
    """Pixels (H, W gray, stored dtype: uint8 for 8-bit), PIL mode, PIL format. Raises OSError/ValueError."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        mode, fmt = im.mode, im.format or "unknown"
        if mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr", "1"):
            arr = np.asarray(im.convert("L"))
        else:
            arr = np.asarray(im)
    return arr, mode, fmt


def _hashes(disp: np.ndarray, thumb: np.ndarray) -> np.ndarray:
    """aHash, dHash, pHash, wHash (imagehash, 8x8 = 64 bits) as uint64; pHash from a 128x128 reduction of the
    display image, the others from the 64x64 thumbnail (same hash, a fraction of the time)."""
    import imagehash
    from PIL import Image

    small = Image.fromarray(thumb, mode="L")
    mid = Image.fromarray(disp, mode="L").reduce(max(min(disp.shape) // 128, 1))
    out = np.zeros(4, dtype=np.uint64)
    for k, h in enumerate((imagehash.average_hash(small), imagehash.dhash(small), imagehash.phash(mid),
                           imagehash.whash(small, image_scale=THUMB))):
        out[k] = np.uint64(int(str(h), 16))
    return out


def _thumb(disp: np.ndarray) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(disp, mode="L")
    return np.asarray(im.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.uint8)


def _mask_facts(row: Mapping[str, Any], shape: tuple[int, int] | None) -> dict:
    """Area, bbox, components, interior fraction and box coverage of the row's mask (if any).

    ``mask_interior`` is the fraction of mask pixels that survive one erosion (4-neighbour cross): 0 for a
    mask that is a line or an outline 1-2 px wide, about 0.5-0.7 for a filled region or a drawn band.
    """
    out: dict[str, Any] = {"mask_read_ok": None, "mask_error": "", "mask_area": 0, "mask_bbox": None,
                           "mask_shape_ok": None, "mask_binary": None, "mask_in_boxes": float("nan"),
                           "mask_components": 0, "mask_interior": float("nan")}
    if not _present(row.get("mask_path")):
        return out
    try:
        mask = _load_mask(row)
    except Exception as exc:  # any decoder failure is a finding, not a crash
        out.update(mask_read_ok=False, mask_error=f"{type(exc).__name__}: {exc}"[:200])
        return out
    if mask is None:
        out.update(mask_read_ok=False, mask_error="mask file missing")
        return out
    if mask.dtype == np.bool_ or mask.dtype == np.uint8:
        counts = np.bincount(mask.ravel().view(np.uint8), minlength=256)
        binary = bool(np.count_nonzero(counts[1:]) <= 1)
    else:
        binary = bool(len(np.unique(mask)) <= 2)
    m = mask > 0
    out.update(mask_read_ok=True, mask_shape_ok=shape is None or tuple(m.shape) == tuple(shape),
               mask_binary=binary, mask_area=int(m.sum()))
    if m.any():
        out["mask_bbox"] = mask_bbox(m)
        from scipy import ndimage

        from medsift.metrics.segmentation import surface

        out["mask_components"] = int(ndimage.label(m)[1])
        out["mask_interior"] = 1.0 - float(surface(m).sum() / m.sum())  # the edge HD95 and NSD use
        boxes = row.get("boxes")
        if boxes is not None and len(boxes):
            cover = np.zeros_like(m)
            for b in boxes:
                x1, y1, x2, y2 = (float(v) for v in b[:4])
                mx, my = BOX_MARGIN * max(x2 - x1, 1) + 4, BOX_MARGIN * max(y2 - y1, 1) + 4
                cover[max(int(y1 - my), 0):max(int(math.ceil(y2 + my)), 0),
                      max(int(x1 - mx), 0):max(int(math.ceil(x2 + mx)), 0)] = True
            out["mask_in_boxes"] = float((m & cover).sum() / m.sum())
    return out


def _load_mask(row: Mapping[str, Any]) -> np.ndarray | None:
    path = str(row["mask_path"])
    if Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        if not Path(path).is_file():
            return None
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("L") if im.mode not in ("L", "1", "I;16", "I") else im)
    from medsift.io import load_mask

    m = load_mask(row)
    return None if m is None else np.asarray(m)


def extract(row: Mapping[str, Any]) -> ImageFeatures:
    """Features of one manifest row (a mapping with at least :data:`ROW_FIELDS`). Never raises for bad files."""
    path = str(row["image_path"])
    fmt = str(row.get("format") or "").lower()
    s: dict[str, Any] = {"image_id": str(row["image_id"]), "read_ok": False, "error": "", "error_kind": "",
                         "file_bytes": -1, "sha256": "", "pixel_hash": "", "sniffed": "", "ext_type": extension_type(path),
                         "pil_format": "", "mode": "", "bit_depth": -1, "img_h": -1, "img_w": -1,
                         "vmin": np.nan, "vmax": np.nan, "vmean": np.nan, "vstd": np.nan, "border_mean": np.nan,
                         "center_mean": np.nan, "dark_frac": np.nan, "bright_frac": np.nan}
    thumb = np.zeros((THUMB, THUMB), np.uint8)
    hist = np.zeros(HIST_BINS, np.float32)
    hashes = np.zeros(4, np.uint64)
    arr = None
    try:
        if fmt in RASTER_FORMATS or (not fmt and s["ext_type"] in ("png", "jpeg", "bmp", "tiff")):
            data = Path(path).read_bytes()
            s["file_bytes"] = len(data)
            s["sha256"] = hashlib.sha256(data).hexdigest()
            s["sniffed"] = sniff_type(data[:512])
            arr, s["mode"], s["pil_format"] = _decode_raster(data)
            s["bit_depth"] = _MODE_BITS.get(s["mode"], -1)
        else:
            if fmt != "nifti":
                with open(path, "rb") as fh:
                    head = fh.read(512)
                s["sniffed"] = sniff_type(head)
                s["file_bytes"] = Path(path).stat().st_size
            from medsift.io import load_slice

            arr = np.asarray(load_slice(row), dtype=np.float32)
            s["mode"], s["bit_depth"] = "F", 16
        s["read_ok"] = True
    except FileNotFoundError as exc:
        s.update(error=f"missing file: {exc}"[:300], error_kind="missing")
    except Exception as exc:  # decoder failures are findings
        msg = f"{type(exc).__name__}: {exc}"[:300]
        kind = "truncated" if "truncat" in msg.lower() else "unreadable"
        s.update(error=msg, error_kind=kind)
    if arr is not None:
        if arr.ndim != 2 or arr.size == 0:
            s.update(read_ok=False, error=f"expected a 2D image; got shape {arr.shape}", error_kind="unreadable")
        else:
            s["img_h"], s["img_w"] = int(arr.shape[0]), int(arr.shape[1])
            disp = _display_u8(arr, row)
            counts = np.bincount(disp.ravel(), minlength=256)
            npx = disp.size
            if arr.dtype == np.uint8:
                levels = np.arange(256, dtype=np.float64)
                mean = float(counts @ levels / npx)
                nz = np.flatnonzero(counts)
                s.update(vmin=float(nz[0]), vmax=float(nz[-1]), vmean=mean,
                         vstd=float(np.sqrt(max(counts @ (levels - mean) ** 2 / npx, 0.0))))
            else:
                s.update(vmin=float(arr.min()), vmax=float(arr.max()), vmean=float(arr.mean()), vstd=float(arr.std()))
            h, w = disp.shape
            bh, bw = max(h // 12, 1), max(w // 12, 1)
            ring = (float(disp[:bh].mean()) * bh * w + float(disp[-bh:].mean()) * bh * w
                    + float(disp[bh:-bh, :bw].mean()) * (h - 2 * bh) * bw
                    + float(disp[bh:-bh, -bw:].mean()) * (h - 2 * bh) * bw) / (2 * bh * w + 2 * (h - 2 * bh) * bw) \
                if h > 2 * bh else float(disp.mean())
            s["border_mean"] = ring
            s["center_mean"] = float(disp[h // 4:3 * h // 4, w // 4:3 * w // 4].mean())
            s["dark_frac"] = float(counts[:16].sum() / npx)
            s["bright_frac"] = float(counts[240:].sum() / npx)
            s["pixel_hash"] = hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).hexdigest()
            thumb = _thumb(disp)
            hist = (counts.reshape(HIST_BINS, -1).sum(axis=1) / npx).astype(np.float32)
            hashes = _hashes(disp, thumb)
    s.update(_mask_facts(row, (s["img_h"], s["img_w"]) if s["read_ok"] else None))
    return ImageFeatures(s, thumb, hist, hashes)


def extract_batch(rows: list[Mapping[str, Any]]) -> list[ImageFeatures]:
    """:func:`extract` over a batch (the unit of work sent to a joblib or Dask worker)."""
    return [extract(r) for r in rows]

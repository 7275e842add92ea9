"""Binary masks: read/write PNG, mask -> boxes (connected components), boxes -> slice label.

Box convention everywhere in medsift: ``[x1, y1, x2, y2, label]`` in pixels, x right, y down, where
``x1, y1`` is the first pixel column/row inside the object and ``x2, y2`` is the **last pixel + 1**
(exclusive edge). A single foreground pixel at column 3, row 5 is the box ``[3, 5, 4, 6, label]``;
its width ``x2 - x1`` is 1. COCO ``[x, y, w, h]`` is ``[x1, y1, x2 - x1, y2 - y1]`` and YOLO
``cx, cy, w, h`` is ``((x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H)``.

Example:
    >>> import numpy as np
    >>> m = np.zeros((10, 10), bool); m[2:5, 3:7] = True
    >>> mask_to_boxes(m)
    [[3, 2, 7, 5, 'hemorrhage']]
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from medsift.errors import FormatError
from medsift.manifest import atomic_write_bytes


def _as_mask(mask: np.ndarray) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise FormatError(f"a mask must be a 2D (H, W) array; got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def mask_bbox(mask: np.ndarray) -> list[int] | None:
    """``[x1, y1, x2, y2]`` (x2/y2 = last pixel + 1) around every nonzero pixel of a 2D mask; None when empty."""
    fg = _as_mask(mask)
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    if not len(rows):
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def mask_to_boxes(mask: np.ndarray, *, min_area: int = 1, label: str = "hemorrhage",
                  connectivity: int = 2) -> list[list]:
    """One box per connected component of a binary mask.

    Args:
        mask: (H, W) array; nonzero = foreground.
        min_area: components with fewer pixels are dropped.
        label: label written in each box.
        connectivity: 1 = 4-connected, 2 = 8-connected (default) neighbourhoods.

    Returns:
        ``[[x1, y1, x2, y2, label], ...]`` as ints in pixels, x2/y2 = last pixel + 1, sorted by (y1, x1).
    """
    from skimage.measure import label as cc_label
    from skimage.measure import regionprops

    if min_area < 1:
        raise FormatError(f"min_area must be >= 1 pixel; got {min_area!r}")
    fg = _as_mask(mask)
    if not fg.any():
        return []
    labelled = cc_label(fg, connectivity=connectivity)
    boxes = []
    for region in regionprops(labelled):
        if region.area < min_area:
            continue
        r0, c0, r1, c1 = region.bbox  # skimage: max row/col are exclusive, like x2/y2 here
        boxes.append([int(c0), int(r0), int(c1), int(r1), label])
    boxes.sort(key=lambda b: (b[1], b[0], b[3], b[2]))
    return boxes


def boxes_to_label(boxes: Iterable[Sequence], *, labels: Iterable[str] | None = None) -> int:
    """Slice label from boxes: 1 when at least one box (with a label in ``labels``, if given), else 0."""
    wanted = None if labels is None else {str(x) for x in labels}
    for box in boxes:
        if wanted is None or str(box[4]) in wanted:
            return 1
    return 0


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a mask image (PNG or any raster Pillow reads) as a bool (H, W) array; nonzero = foreground.

    Gray, palette, 1-bit and 16-bit images are read by value; RGB(A) images count a pixel as foreground
    when any colour channel is nonzero (alpha ignored).

    Raises:
        FormatError: unreadable file, or not a 2D image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGB", "RGBA", "LA"):
                arr = np.asarray(img.convert("RGB")).any(axis=2)
            elif img.mode == "P":
                arr = np.asarray(img) != 0  # palette index 0 = background
            else:
                arr = np.asarray(img) != 0
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read mask image ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise FormatError(f"{path}: mask must be a 2D image; got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def encode_mask_png(mask: np.ndarray, *, value: int = 255) -> bytes:
    """PNG bytes of an 8-bit gray mask: background 0, foreground ``value`` (1 for nnU-Net labels, 255 to view)."""
    from PIL import Image

    if not 1 <= int(value) <= 255:
        raise FormatError(f"mask foreground value must be 1..255; got {value!r}")
    arr = _as_mask(mask).astype(np.uint8) * np.uint8(value)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_mask_png(path: str | Path, mask: np.ndarray, *, value: int = 255) -> Path:
    """Write a binary (H, W) mask as an 8-bit gray PNG atomically (see :func:`encode_mask_png`)."""
    path = Path(path)
    atomic_write_bytes(path, encode_mask_png(mask, value=value))
    return path

"""Render one manifest row to a display PNG: windowed gray, optional mask fill and box outlines.

Pure apart from reading the row's source files. HU data (``has_hu``) is windowed with a preset
(:data:`WINDOW_NAMES`); 8-bit data is shown as stored whatever the preset, because it was windowed
before export and cannot be re-windowed.

Example:
    >>> png = render_png(row, window="brain", overlays=(Overlay.MASK, Overlay.BOXES), size=256)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from enum import Enum
from typing import Any, Mapping, Sequence

import numpy as np

from medsift.errors import ConfigError

STORED = "stored"
AUTO = "auto"
MASK_RGB = (255, 64, 64)
BOX_RGB = (255, 215, 0)
MASK_ALPHA = 0.35


class Overlay(str, Enum):
    """What can be drawn on top of the slice."""

    MASK = "mask"
    BOXES = "boxes"


def _presets() -> dict[str, tuple[float, float]]:
    from medsift.preprocess.windowing import PRESETS

    return {name: (w.center, w.width) for name, w in PRESETS.items()}


def window_names() -> list[str]:
    """Valid window names: the CT presets, ``stored`` (the file's own window) and ``auto`` (1-99th pct)."""
    preferred = ["brain", "subdural", "stroke", "bone"]
    names = [n for n in preferred if n in _presets()] + sorted(set(_presets()) - set(preferred))
    return names + [STORED, AUTO]


def parse_overlays(text: str | None) -> tuple[Overlay, ...]:
    """``"mask,boxes"`` -> ``(Overlay.MASK, Overlay.BOXES)``; empty -> ``()``; unknown names fail."""
    out: list[Overlay] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(Overlay(part))
        except ValueError:
            raise ConfigError(f"unknown overlay {part!r}; valid: {[o.value for o in Overlay]}") from None
    return tuple(dict.fromkeys(out))


def to_display(pixels: np.ndarray, *, has_hu: bool, window: str, row: Mapping[str, Any] | None = None) -> np.ndarray:
    """Map a (H, W) slice to uint8 (H, W) for display.

    Args:
        pixels: HU when ``has_hu`` else 0..255 values.
        has_hu: whether ``pixels`` are Hounsfield units.
        window: a name from :func:`window_names`.
        row: the manifest row (``window_center``/``window_width`` for ``stored``).
    """
    presets = _presets()
    if window not in presets and window not in (STORED, AUTO):
        raise ConfigError(f"unknown window {window!r}; valid: {', '.join(window_names())}")
    img = np.asarray(pixels, dtype=np.float32)
    if not has_hu:
        lo, hi = 0.0, 255.0
        if window == AUTO:
            lo, hi = (float(v) for v in np.percentile(img, (1, 99)))
    elif window == AUTO:
        lo, hi = (float(v) for v in np.percentile(img, (1, 99)))
    else:
        if window == STORED:
            c, w = _stored_window(row) or presets["brain"]
        else:
            c, w = presets[window]
        lo, hi = c - w / 2.0, c + w / 2.0
    if hi <= lo:
        hi = lo + 1.0
    out = (img - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def _stored_window(row: Mapping[str, Any] | None) -> tuple[float, float] | None:
    if row is None:
        return None
    c, w = row.get("window_center"), row.get("window_width")
    try:
        c, w = float(c), float(w)
    except (TypeError, ValueError):
        return None
    return (c, w) if np.isfinite(c) and np.isfinite(w) and w > 0 else None


def compose(gray: np.ndarray, *, mask: np.ndarray | None, boxes: Sequence[Sequence[Any]],
            overlays: Sequence[Overlay], display_size: int | None = None) -> np.ndarray:
    """Gray uint8 (H, W) + overlays -> RGB uint8 (H, W, 3). Mask as a translucent red fill, boxes in yellow.

    Box lines are about 1.5 display pixels wide once the image is scaled to ``display_size`` (longer side).
    With nothing to draw (no overlay asked, empty mask, no boxes) the gray (H, W) array is returned as is:
    a gray PNG encodes several times faster than an RGB one.
    """
    has_mask = Overlay.MASK in overlays and mask is not None and mask.shape == gray.shape and bool(mask.any())
    if not has_mask and not (Overlay.BOXES in overlays and boxes):
        return gray
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    if has_mask:
        color = np.asarray(MASK_RGB, dtype=np.float32)
        rgb[mask] = (1 - MASK_ALPHA) * rgb[mask] + MASK_ALPHA * color
    out = rgb.astype(np.uint8)
    if Overlay.BOXES in overlays and boxes:
        h, w = gray.shape
        thick = max(1, math.ceil(1.5 * max(h, w) / (display_size or max(h, w))))
        for box in boxes:
            x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
            x1, x2 = sorted((max(0, min(w - 1, x1)), max(0, min(w - 1, x2 - 1))))
            y1, y2 = sorted((max(0, min(h - 1, y1)), max(0, min(h - 1, y2 - 1))))
            out[y1:y1 + thick, x1:x2 + 1] = BOX_RGB
            out[max(y1, y2 - thick + 1):y2 + 1, x1:x2 + 1] = BOX_RGB
            out[y1:y2 + 1, x1:x1 + thick] = BOX_RGB
            out[y1:y2 + 1, max(x1, x2 - thick + 1):x2 + 1] = BOX_RGB
    return out


def encode_png(rgb: np.ndarray, *, size: int | None = None) -> bytes:
    """RGB or gray uint8 array -> PNG bytes, downscaled so the longer side is at most ``size`` pixels."""
    from PIL import Image

    img = Image.fromarray(rgb)
    if size is not None and max(img.size) > size:
        scale = size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_png(row: Mapping[str, Any], *, window: str = "brain", overlays: Sequence[Overlay] = (),
               size: int | None = None) -> bytes:
    """Read the row's pixels (and mask when asked) and render them as PNG bytes."""
    from medsift.review.pixels import load_mask, load_pixels

    pixels, has_hu = load_pixels(row)
    gray = to_display(pixels, has_hu=has_hu, window=window, row=row)
    mask = load_mask(row) if Overlay.MASK in overlays else None
    boxes = row.get("boxes") if Overlay.BOXES in overlays else None
    rgb = compose(gray, mask=mask, boxes=list(boxes) if boxes is not None else [], overlays=overlays,
                  display_size=size)
    return encode_png(rgb, size=size)

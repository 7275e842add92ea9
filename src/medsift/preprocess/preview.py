"""Augmentation preview: a grid PNG of augmented samples with mask contours and boxes drawn.

Used by ``medsift augment-preview WS``; rows with boxes or masks are preferred so the overlays show that
image, mask and boxes moved together.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.manifest import active, atomic_write_bytes
from medsift.preprocess.config import PreprocessConfig


def pick_preview_rows(df: pd.DataFrame, n: int, *, seed: int = 0) -> pd.DataFrame:
    """Up to ``n`` active rows drawn with ``default_rng(seed)``: rows with boxes first, then rows with a
    positive ``label_*``, then the rest (a mask file alone says nothing: most are empty)."""
    from medsift.manifest import label_columns

    rows = active(df)
    if rows.empty:
        raise ConfigError("the manifest has no active rows (all excluded or unreadable); nothing to preview")
    has_boxes = rows["boxes"].map(lambda b: len(b) > 0).to_numpy()
    labels = label_columns(rows)
    positive = (rows[labels].fillna(0).astype(float) > 0).any(axis=1).to_numpy() if labels else np.zeros(len(rows), bool)
    rng = np.random.default_rng(seed)
    tiers = [np.flatnonzero(has_boxes), np.flatnonzero(~has_boxes & positive), np.flatnonzero(~has_boxes & ~positive)]
    order = np.concatenate([rng.permutation(t) for t in tiers])[:n]
    return rows.iloc[np.sort(order)]


def load_sample(row: Any, config: PreprocessConfig) -> dict[str, Any]:
    """Decode one manifest row (``medsift.io``) and preprocess it to an augment sample (torch tensors), as the
    slice cache does (the same decoding and re-windowing of 8-bit exports; no neighbouring slices, so a
    ``crop_head`` square is the slice's own)."""
    import medsift.io as mio
    from medsift.preprocess.augment import as_sample
    from medsift.preprocess.cache import _scaled_boxes, decode_row, preprocess_slice

    image, has_hu = decode_row(row, mio.load_slice, config)
    mask = mio.load_mask(row)
    chans, small, square = preprocess_slice(image, mask, config, has_hu=has_hu)
    boxes = _scaled_boxes(row["boxes"], image.shape, config.size, square)
    return as_sample({"image": chans, "mask": small if small is not None else np.zeros(chans.shape[-2:], np.uint8),
                      "boxes": np.asarray([b[:4] for b in boxes], np.float32).reshape(-1, 4),
                      "image_id": str(row["image_id"])})


def draw_grid(samples: Sequence[dict[str, Any]], out: str | Path, *, title: str = "") -> Path:
    """Write a grid PNG: channel 0 in gray, mask contour in red, boxes in yellow, image_id as caption."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if not samples:
        raise ConfigError("draw_grid needs at least one sample")
    n = len(samples)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.6 * cols, 2.8 * rows), dpi=100)
    for k, s in enumerate(samples):
        ax = fig.add_subplot(rows, cols, k + 1)
        img = np.asarray(s["image"][0], dtype=np.float32)
        ax.imshow(img, cmap="gray", vmin=float(img.min()), vmax=float(max(img.max(), img.min() + 1e-6)))
        mask = s.get("mask")
        if mask is not None:
            m = np.asarray(mask).reshape(img.shape)
            if m.any():
                ax.contour(m > 0, levels=[0.5], colors="red", linewidths=0.8)
        for x1, y1, x2, y2 in np.asarray(s.get("boxes", np.zeros((0, 4)))).reshape(-1, 4):
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="yellow", lw=0.9))
        ax.set_title(str(s.get("image_id", k)), fontsize=7)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())
    return out


def augment_preview(df: pd.DataFrame, out: str | Path, *, n: int = 16, task: str = "detect",
                    strength: str = "default", config: PreprocessConfig | None = None, seed: int = 0) -> Path:
    """Augment ``n`` manifest rows once each and draw them (see :func:`draw_grid`). Returns the PNG path."""
    from medsift.preprocess.augment import build_augment

    config = config or PreprocessConfig()
    aug = build_augment(task=task, size=config.size, strength=strength, seed=seed)
    picked = pick_preview_rows(df, n, seed=seed)
    samples = [aug(load_sample(row, config)) for _, row in picked.iterrows()]
    return draw_grid(samples, out, title=f"task={task} strength={strength} size={config.size} seed={seed} "
                                         f"(red: mask, yellow: boxes)")

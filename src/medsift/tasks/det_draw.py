"""Drawings of predicted boxes (red, with scores) against ground-truth boxes (green) on a gray slice.

Example:
    >>> import numpy as np
    >>> rgb = draw_boxes(np.zeros((32, 32), np.uint8), gt=[[4, 4, 12, 12]], pred=[[20, 20, 28, 28]], scores=[0.9])
    >>> rgb.shape, rgb[4, 8].tolist(), rgb[20, 24].tolist()
    ((32, 32, 3), [0, 220, 0], [255, 40, 40])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

GT_COLOR = (0, 220, 0)
PRED_COLOR = (255, 40, 40)


def draw_boxes(image: np.ndarray, *, gt: Sequence[Sequence[float]] = (), pred: Sequence[Sequence[float]] = (),
               scores: Sequence[float] = (), width: int = 1, label: str = "") -> np.ndarray:
    """uint8 (H, W, 3) RGB of a (H, W) uint8 / 0..1 float slice with box outlines (xyxy pixels).

    Ground truth is drawn first (green), predictions on top (red) with their score written above the box;
    ``label`` is written in the top-left corner.
    """
    from PIL import Image, ImageDraw

    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    canvas = Image.fromarray(img).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for b in gt:
        draw.rectangle([float(v) for v in b[:4]], outline=GT_COLOR, width=width)
    for k, b in enumerate(pred):
        x1, y1, x2, y2 = (float(v) for v in b[:4])
        draw.rectangle([x1, y1, x2, y2], outline=PRED_COLOR, width=width)
        if k < len(scores):
            draw.text((x1 + 1, max(y1 - 11, 0)), f"{float(scores[k]):.2f}", fill=PRED_COLOR)
    if label:
        draw.text((2, 2), label, fill=(255, 255, 0))
    return np.asarray(canvas)

"""Boxes from a fast lesion segmentation: a small U-Net learns box-filled masks; boxes are its blobs.

Targets (:func:`box_masks`) fill each ground-truth box with 1 on the input grid. Decoding
(:func:`boxes_from_prob`) labels the connected components of ``prob >= threshold``; each component's
bounding box is a detection scored by its highest probability. A slice with no component above the
threshold still yields one low-scored box (the component around its most probable pixel at half that
probability), so images can be ranked for mAP, FROC and the image-level threshold.

Example:
    >>> import numpy as np
    >>> prob = np.zeros((8, 8), np.float32); prob[2:4, 3:6] = 0.9
    >>> boxes_from_prob(prob, k=2).astype(float).round(2).tolist()
    [[3.0, 2.0, 6.0, 4.0, 0.9], [-1.0, -1.0, -1.0, -1.0, -1.0]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def box_masks(boxes: Sequence[np.ndarray], size: int) -> np.ndarray:
    """float32 (B, 1, S, S) masks with 1 inside each (n, 4) xyxy pixel box (rounded outward)."""
    out = np.zeros((len(boxes), 1, size, size), np.float32)
    for i, bx in enumerate(boxes):
        for x1, y1, x2, y2 in np.asarray(bx, np.float32).reshape(-1, 4):
            c0, r0 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
            c1, r1 = min(int(np.ceil(x2)), size), min(int(np.ceil(y2)), size)
            out[i, 0, r0:r1, c0:c1] = 1.0
    return out


def boxes_from_prob(prob: np.ndarray, *, k: int = 20, threshold: float = 0.5) -> np.ndarray:
    """Detections of one (H, W) probability map.

    Returns:
        float32 (k, 5) rows ``x1, y1, x2, y2, score`` (pixels, end-exclusive), best first; unused rows are -1.
    """
    from scipy import ndimage

    prob = np.asarray(prob, np.float32)
    out = np.full((k, 5), -1.0, np.float32)
    labels, n = ndimage.label(prob >= threshold)
    if n == 0:
        top = float(prob.max())
        if top <= 0:
            return out
        labels, _ = ndimage.label(prob >= top / 2)
        keep = labels == labels.flat[int(np.argmax(prob))]
        labels, n = keep.astype(np.int32), 1
    slices = ndimage.find_objects(labels)
    scores = ndimage.maximum(prob, labels, index=np.arange(1, n + 1))
    rows = [(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop, float(s)) for sl, s in
            zip(slices, np.atleast_1d(scores)) if sl is not None]
    rows.sort(key=lambda r: -r[4])
    for j, r in enumerate(rows[:k]):
        out[j] = r
    return out

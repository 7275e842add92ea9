"""Box statistics of a training set and anchor sizes / aspect ratios fitted to them.

Example:
    >>> import numpy as np
    >>> stats = box_statistics([np.array([[0, 0, 20, 10]]), np.zeros((0, 4)), np.array([[0, 0, 40, 40]])])
    >>> stats["n_boxes"], stats["images_with_boxes"], stats["side_p50"]  # doctest: +ELLIPSIS
    (2, 2, 27.07...)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from medsift.errors import ConfigError


def box_statistics(boxes: Sequence[np.ndarray]) -> dict[str, Any]:
    """Counts and percentiles of box sizes.

    Args:
        boxes: per image, (n, 4) xyxy pixel boxes (empty for images without a box).

    Returns:
        ``n_images``, ``images_with_boxes``, ``n_boxes``, ``max_boxes_per_image``, and the 5/25/50/75/95th
        percentiles of ``width``, ``height``, ``side`` (sqrt of area) in pixels and ``aspect`` (h / w):
        keys like ``side_p50``.
    """
    arrays = [np.asarray(b, np.float64).reshape(-1, 4) for b in boxes]
    counts = np.array([len(a) for a in arrays], dtype=int)
    out: dict[str, Any] = {"n_images": int(len(arrays)), "images_with_boxes": int((counts > 0).sum()),
                           "n_boxes": int(counts.sum()), "max_boxes_per_image": int(counts.max(initial=0))}
    if out["n_boxes"] == 0:
        return out
    a = np.concatenate(arrays)
    w, h = np.maximum(a[:, 2] - a[:, 0], 1e-6), np.maximum(a[:, 3] - a[:, 1], 1e-6)
    for name, v in (("width", w), ("height", h), ("side", np.sqrt(w * h)), ("aspect", h / w)):
        for q in (5, 25, 50, 75, 95):
            out[f"{name}_p{q}"] = float(np.percentile(v, q))
    return out


def fit_anchors(stats: dict[str, Any], *, levels: int, scales_per_level: int = 3) -> dict[str, Any]:
    """Anchor sizes (one tuple per FPN level) and aspect ratios covering the box statistics.

    Level sizes are spaced geometrically from the 5th to the 95th percentile of the box side (at least a
    factor 2 between levels is not forced: small datasets with narrow size ranges get denser anchors); each
    level adds ``scales_per_level`` intermediate scales (2^(j/scales)). Aspect ratios (h/w, torchvision's
    convention) are the 25th percentile, 1 and the 75th percentile.

    Raises:
        ConfigError: no box in the statistics.
    """
    if not stats.get("n_boxes"):
        raise ConfigError("anchor fitting needs at least one training box; the training split has none")
    lo, hi = float(stats["side_p5"]), float(stats["side_p95"])
    base = np.geomspace(max(lo * 0.8, 4.0), max(hi, lo * 1.01), num=levels)
    sizes = tuple(tuple(float(round(s * 2 ** (j / scales_per_level / 2), 1)) for j in range(scales_per_level))
                  for s in base)
    ratios = tuple(sorted({round(float(stats["aspect_p25"]), 2), 1.0, round(float(stats["aspect_p75"]), 2)}))
    return {"sizes": sizes, "aspect_ratios": ratios}

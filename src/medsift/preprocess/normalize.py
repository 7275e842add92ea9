"""Intensity normalisation: min-max and z-score, per image or with dataset statistics.

All functions take (C, H, W) or (H, W) float arrays and return float32 of the same shape.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from medsift.errors import ConfigError

_EPS = 1e-6


def minmax(image: np.ndarray) -> np.ndarray:
    """Scale each channel of one image to 0..1 (a constant channel becomes 0)."""
    x = np.asarray(image, dtype=np.float32)
    axes = (-2, -1)
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, _EPS)).astype(np.float32)


def zscore(image: np.ndarray, *, mean: np.ndarray | float | None = None,
           std: np.ndarray | float | None = None) -> np.ndarray:
    """``(x - mean) / std`` per channel.

    Args:
        image: (C, H, W) or (H, W).
        mean, std: dataset statistics (scalar or per channel (C,)); None = measure this image (per channel).
    """
    x = np.asarray(image, dtype=np.float32)
    if (mean is None) != (std is None):
        raise ConfigError("zscore needs both mean and std (dataset statistics) or neither (per image)")
    if mean is None:
        m = x.mean(axis=(-2, -1), keepdims=True)
        s = x.std(axis=(-2, -1), keepdims=True)
    else:
        m = np.asarray(mean, dtype=np.float32)
        s = np.asarray(std, dtype=np.float32)
        if x.ndim == 3 and m.ndim == 1:
            m, s = m[:, None, None], s[:, None, None]
    return ((x - m) / np.maximum(s, _EPS)).astype(np.float32)


def dataset_stats(images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over many (C, H, W) images (streamed; float64 sums).

    Returns:
        ``(mean, std)``, each float32 (C,).
    """
    total = sq = None
    count = 0
    for img in images:
        x = np.asarray(img, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
        s1 = x.sum(axis=(-2, -1))
        s2 = np.square(x).sum(axis=(-2, -1))
        total = s1 if total is None else total + s1
        sq = s2 if sq is None else sq + s2
        count += x.shape[-1] * x.shape[-2]
    if count == 0:
        raise ConfigError("dataset_stats needs at least one image; got none")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)

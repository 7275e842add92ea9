"""Pixels of one manifest row for display: the slice (HU or 0..255) and its mask, via :mod:`medsift.io`."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def has_hu(row: Mapping[str, Any]) -> bool:
    """Whether the row's pixels are Hounsfield units (``has_hu`` true; empty counts as false)."""
    value = row.get("has_hu")
    try:
        return bool(value) if value is not None else False
    except (TypeError, ValueError):  # pandas.NA
        return False


def load_pixels(row: Mapping[str, Any]) -> tuple[np.ndarray, bool]:
    """(H, W) float32 pixels of the row and whether they are HU."""
    from medsift.io import load_slice

    return np.asarray(load_slice(row), dtype=np.float32), has_hu(row)


def load_mask(row: Mapping[str, Any]) -> np.ndarray | None:
    """(H, W) bool mask of the row, or ``None`` when it has none."""
    from medsift.io import load_mask as _load_mask

    mask = _load_mask(row)
    return None if mask is None else np.asarray(mask, dtype=bool)

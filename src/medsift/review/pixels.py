"""Pixels of one manifest row for display: the slice (HU or 0..255) and its mask.

Delegates to :mod:`medsift.io` (``load_slice``/``load_mask``), the one place that knows every format.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def _has_hu(row: Mapping[str, Any]) -> bool:
    value = row.get("has_hu")
    try:
        return bool(value) if value is not None and not (isinstance(value, float) and np.isnan(value)) else False
    except (TypeError, ValueError):  # pandas.NA
        return False


def load_pixels(row: Mapping[str, Any]) -> tuple[np.ndarray, bool]:
    """(H, W) float32 pixels of the row and whether they are HU."""
    import medsift.io as mio

    loader = getattr(mio, "load_slice", None)
    if loader is None:  # medsift.io without its row-level loader yet: raster files only
        from medsift.io.images import read_gray

        return read_gray(str(row["image_path"])), False
    return np.asarray(loader(row), dtype=np.float32), _has_hu(row)


def load_mask(row: Mapping[str, Any]) -> np.ndarray | None:
    """(H, W) bool mask of the row, or ``None`` when it has none."""
    import medsift.io as mio

    loader = getattr(mio, "load_mask", None)
    if loader is not None:
        mask = loader(row)
        return None if mask is None else np.asarray(mask, dtype=bool)
    path = row.get("mask_path")
    if not isinstance(path, str) or not path:
        return None
    from medsift.io.images import read_gray

    return read_gray(path) > 0

"""Helpers for the preprocess tests: a tiny on-disk dataset of .npy slices and local loaders.

The loaders stand in for ``medsift.io.load_slice`` / ``load_mask`` (same contract: float32 (H, W) in HU when
``row.has_hu`` else 0..255; mask bool (H, W) or None) so these tests do not depend on the io package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medsift.manifest import new_manifest


def npy_load_slice(row) -> np.ndarray:
    return np.load(row["image_path"]).astype(np.float32)


def npy_load_mask(row):
    path = row["mask_path"]
    if not isinstance(path, str) or not path:
        return None
    return np.load(path).astype(bool)


def write_slices(root: Path, slices: list[dict]) -> pd.DataFrame:
    """Save each ``{"image_id", "patient_id", "array", "mask"?, "boxes"?, ...}`` and return a manifest."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in slices:
        s = dict(s)
        arr = s.pop("array")
        mask = s.pop("mask", None)
        ip = root / f"{s['image_id']}.npy"
        np.save(ip, arr)
        row = {"image_path": str(ip), "format": "png", "content_hash": f"h{s['image_id']}",
               "height": arr.shape[0], "width": arr.shape[1], **s}
        if mask is not None:
            mp = root / f"{s['image_id']}_mask.npy"
            np.save(mp, mask)
            row["mask_path"] = str(mp)
        rows.append(row)
    return new_manifest(rows)

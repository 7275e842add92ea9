"""2.5D stacks: each slice with its ``context`` neighbours on either side from the same series.

Series are grouped by ``series_id``, else ``study_id``, else ``patient_id`` (the first that is filled for
the row) and ordered by ``slice_index`` (then ``image_id``). At the ends of a series the edge slice repeats.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError


def series_key(df: pd.DataFrame) -> pd.Series:
    """One key per series: ``series_id``, else ``study_id``, else ``patient_id`` (tagged so they never collide)."""
    key = pd.Series(["p:"] * len(df), index=df.index, dtype=object) + df["patient_id"].astype(str).to_numpy()
    for col, tag in (("study_id", "st:"), ("series_id", "se:")):
        if col in df.columns:
            filled = df[col].notna() & (df[col].astype("string").fillna("") != "")
            key = key.where(~filled.to_numpy(), tag + df[col].astype(str))
    return key


def neighbour_positions(df: pd.DataFrame, context: int) -> np.ndarray:
    """Row positions of each slice's neighbours.

    Args:
        df: manifest rows (needs ``patient_id``; uses ``series_id``/``study_id``/``slice_index`` when present).
        context: neighbours on each side (>= 0).

    Returns:
        int64 (N, 2 * context + 1): row ``i`` lists positions (0..N-1 into ``df``) of the slices at offsets
        ``-context .. +context`` from slice ``i`` in its series, edges repeated. Column ``context`` is ``i``.
    """
    if context < 0:
        raise ConfigError(f"context must be >= 0 slices; got {context!r}")
    n = len(df)
    out = np.repeat(np.arange(n, dtype=np.int64)[:, None], 2 * context + 1, axis=1)
    if context == 0 or n == 0:
        return out
    order_idx = pd.Series(
        df["slice_index"].astype("Float64").fillna(np.inf).to_numpy(dtype=float) if "slice_index" in df.columns
        else np.zeros(n)
    )
    tab = pd.DataFrame({
        "key": series_key(df).to_numpy(),
        "order": order_idx.to_numpy(),
        "iid": df["image_id"].astype(str).to_numpy() if "image_id" in df.columns else np.arange(n).astype(str),
        "pos": np.arange(n),
    })
    for _, g in tab.sort_values(["key", "order", "iid"]).groupby("key", sort=False):
        pos = g["pos"].to_numpy()
        m = len(pos)
        for k, off in enumerate(range(-context, context + 1)):
            out[pos, k] = pos[np.clip(np.arange(m) + off, 0, m - 1)]
    return out


def stack_neighbours(channels: Sequence[np.ndarray] | np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Gather a 2.5D stack for one slice.

    Args:
        channels: per-slice arrays (N, W, H, X) or a list of (W, H, X) arrays, W = windows per slice.
        positions: (2 * context + 1,) neighbour positions from :func:`neighbour_positions`.

    Returns:
        ((2 * context + 1) * W, H, X) with channels neighbour-major: ``[(-c, w0), (-c, w1), ..., (+c, wK)]``.
    """
    parts = [np.asarray(channels[int(p)]) for p in positions]
    return np.concatenate(parts, axis=0)

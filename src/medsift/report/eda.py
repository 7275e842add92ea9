"""Exploratory plots of a manifest for the report: class balance, slices per patient, boxes, intensities.

Each function takes the manifest and returns PNG bytes (matplotlib, Agg backend). Pixel statistics read a
fixed, evenly spaced sample of rows so the cost does not grow with the dataset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.manifest import SPLITS, label_columns
from medsift.report.figure import matplotlib_png

INTENSITY_SAMPLE = 48


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def class_balance_png(df: pd.DataFrame) -> bytes | None:
    """Bar chart: positive fraction of each ``label_*`` column per split (and unsplit). None without labels."""
    labels = label_columns(df)
    if not labels:
        return None
    plt = _plt()
    groups = [s for s in SPLITS if (df["split"] == s).any()] or ["all"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) * len(groups) / 2 + 2), 3.0))
    width = 0.8 / len(groups)
    for g, split in enumerate(groups):
        sub = df if split == "all" else df[df["split"] == split]
        frac = [float(sub[c].dropna().mean()) if sub[c].notna().any() else 0.0 for c in labels]
        ax.bar(np.arange(len(labels)) + g * width, frac, width, label=f"{split} (n={len(sub)})")
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, [c.removeprefix("label_") for c in labels])
    ax.set_ylabel("positive fraction of slices")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return matplotlib_png(fig)


def slices_per_patient_png(df: pd.DataFrame) -> bytes:
    """Histogram of the number of slices per patient."""
    plt = _plt()
    counts = df.groupby("patient_id").size().to_numpy()
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    ax.hist(counts, bins=min(30, max(1, len(np.unique(counts)))), color="#4a7ab5")
    ax.set_xlabel("slices per patient")
    ax.set_ylabel("patients")
    ax.grid(axis="y", alpha=0.3)
    return matplotlib_png(fig)


def box_sizes_png(df: pd.DataFrame) -> bytes | None:
    """Scatter of box width vs height (pixels) and a histogram of boxes per slice. None without boxes."""
    sizes = np.array([[b[2] - b[0], b[3] - b[1]] for boxes in df["boxes"] for b in boxes], dtype=float)
    if len(sizes) == 0:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    a1.scatter(sizes[:, 0], sizes[:, 1], s=6, alpha=0.5, color="#c0504d")
    a1.set_xlabel("box width (px)")
    a1.set_ylabel("box height (px)")
    a1.grid(alpha=0.3)
    per = np.array([len(b) for b in df["boxes"]])
    a2.hist(per, bins=np.arange(per.max() + 2) - 0.5, color="#c0504d")
    a2.set_xlabel("boxes per slice")
    a2.set_ylabel("slices")
    a2.grid(axis="y", alpha=0.3)
    return matplotlib_png(fig)


def intensity_png(df: pd.DataFrame, *, sample: int = INTENSITY_SAMPLE) -> bytes | None:
    """Histogram of pixel values of an evenly spaced sample of readable rows (HU and 8-bit separately)."""
    from medsift.io import load_slice
    from medsift.errors import FormatError

    ok = df[df["status"] == "ok"]
    if ok.empty:
        return None
    idx = np.unique(np.linspace(0, len(ok) - 1, min(sample, len(ok))).round().astype(int))
    values: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for row in ok.iloc[idx].to_dict("records"):
        try:
            px = np.asarray(load_slice(row), dtype=np.float32)
        except FormatError:
            continue
        hu = bool(row.get("has_hu")) if row.get("has_hu") is not pd.NA else False
        values[hu].append(px[::4, ::4].ravel())
    kinds = [k for k in (True, False) if values[k]]
    if not kinds:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.0), squeeze=False)
    for ax, hu in zip(axes[0], kinds):
        v = np.concatenate(values[hu])
        ax.hist(np.clip(v, -1100, 2000) if hu else v, bins=100, color="#6a6a6a", log=True)
        ax.set_xlabel("HU" if hu else "stored value (0..255)")
        ax.set_ylabel("pixels (log)")
        ax.set_title(f"{len(values[hu])} slices ({'HU' if hu else '8-bit'})", fontsize=9)
    return matplotlib_png(fig)


def score_histograms_png(scores: pd.DataFrame) -> bytes | None:
    """Small multiples: the distribution of every ``<check>_score`` column of the audit scores table."""
    cols = [c for c in scores.columns if c.endswith("_score")]
    if not cols:
        return None
    plt = _plt()
    n = len(cols)
    ncol = min(4, n)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 2.2 * nrow), squeeze=False)
    for ax, c in zip(axes.ravel(), cols):
        v = pd.to_numeric(scores[c], errors="coerce").dropna().to_numpy()
        ax.hist(v, bins=np.linspace(0, 1, 21), color="#4a7ab5", log=True)
        ax.set_title(c.removesuffix("_score"), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return matplotlib_png(fig)

"""Exploratory statistics of an audited dataset: class mean/std images, histograms, contrast groups, embedding.

Everything is computed from the per-image features the audit already holds (64x64 thumbnails, 64-bin
histograms), so it costs no extra decoding. Plots are matplotlib PNGs (Agg backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.audit.base import AuditContext


@dataclass(frozen=True)
class EdaStats:
    """Class mean/std thumbnails (float 64x64, grey levels), mean histograms per class, contrast gate.

    Attributes:
        classes: class name -> number of images (readable, informative).
        mean_images / std_images: class name -> float32 (64, 64).
        histograms: class name -> float32 (64,) mean fraction of pixels per grey-level bin.
        contrast: per image, the 5-95 % grey-level range of the non-background pixels (display units).
        gate: contrast threshold (Otsu) between the low- and high-contrast groups.
        groups: {"low": n, "high": n} and per class counts.
    """

    classes: dict[str, int]
    mean_images: dict[str, np.ndarray]
    std_images: dict[str, np.ndarray]
    histograms: dict[str, np.ndarray]
    contrast: np.ndarray
    gate: float
    groups: dict[str, dict[str, int]] = field(default_factory=dict)


def _class_labels(m: pd.DataFrame) -> np.ndarray:
    if "label_hemorrhage" not in m.columns:
        return np.array(["all"] * len(m))
    lab = m["label_hemorrhage"]
    return np.where(lab.isna(), "unlabelled", np.where(lab.fillna(0).astype(int) == 1, "hemorrhage", "no hemorrhage"))


def hist_percentile(hists: np.ndarray, q: float) -> np.ndarray:
    """Grey level (0..255) below which fraction ``q`` of pixels lie, per row of 64-bin histograms."""
    cdf = np.cumsum(hists, axis=1)
    idx = (cdf < q).sum(axis=1)
    return np.clip(idx, 0, hists.shape[1] - 1) * (256 / hists.shape[1])


def compute_eda(ctx: AuditContext) -> EdaStats:
    """Class statistics and the contrast gate (over readable images; thumbnails in display grey levels)."""
    from skimage.filters import threshold_otsu

    ok = ctx.readable
    labels = _class_labels(ctx.manifest)
    fg = ctx.hists.copy()
    fg[:, 0] = 0.0  # drop the dark background bin (grey levels 0..3): contrast of the anatomy only
    fg = fg / np.maximum(fg.sum(axis=1, keepdims=True), 1e-12)
    contrast = hist_percentile(fg, 0.95) - hist_percentile(fg, 0.05)
    classes, means, stds, hists = {}, {}, {}, {}
    for c in sorted({str(v) for v in labels[ok]}):
        sel = ok & (labels == c)
        t = ctx.thumbs[sel].astype(np.float32)
        classes[c] = int(sel.sum())
        means[c], stds[c] = t.mean(axis=0), t.std(axis=0)
        hists[c] = ctx.hists[sel].mean(axis=0)
    vals = contrast[ok]
    gate = float(threshold_otsu(vals)) if len(np.unique(vals)) > 1 else float(vals[0]) if len(vals) else 0.0
    groups = {"all": {"low": int((vals <= gate).sum()), "high": int((vals > gate).sum())}}
    for c in classes:
        v = contrast[ok & (labels == c)]
        groups[c] = {"low": int((v <= gate).sum()), "high": int((v > gate).sum())}
    return EdaStats(classes, means, stds, hists, contrast, gate, groups)


def plot_eda(stats: EdaStats, out_dir: str | Path, *, embedding: np.ndarray | None = None,
             z: np.ndarray | None = None) -> dict[str, Path]:
    """Write the EDA figures as PNGs into ``out_dir``; returns name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    names = list(stats.classes)
    if names:
        cols = len(names) + (1 if len(names) >= 2 else 0)
        fig, axes = plt.subplots(2, cols, figsize=(3 * cols, 6), squeeze=False)
        for j, c in enumerate(names):
            axes[0, j].imshow(stats.mean_images[c], cmap="gray", vmin=0, vmax=255)
            axes[0, j].set_title(f"mean: {c} (n={stats.classes[c]})", fontsize=9)
            axes[1, j].imshow(stats.std_images[c], cmap="magma")
            axes[1, j].set_title(f"std: {c}", fontsize=9)
        if len(names) >= 2:
            a, b = names[0], names[1]
            diff = stats.mean_images[a] - stats.mean_images[b]
            lim = float(np.abs(diff).max()) or 1.0
            axes[0, -1].imshow(diff, cmap="coolwarm", vmin=-lim, vmax=lim)
            axes[0, -1].set_title(f"mean {a} - {b}", fontsize=9)
            sd = stats.std_images[a] - stats.std_images[b]
            lim = float(np.abs(sd).max()) or 1.0
            axes[1, -1].imshow(sd, cmap="coolwarm", vmin=-lim, vmax=lim)
            axes[1, -1].set_title(f"std {a} - {b}", fontsize=9)
        for ax in axes.ravel():
            ax.axis("off")
        fig.tight_layout()
        paths["class_images"] = out / "class_images.png"
        fig.savefig(paths["class_images"], dpi=90)
        plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    centers = (np.arange(64) + 0.5) * 4
    for c in names:
        axes[0].plot(centers, stats.histograms[c], label=c)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("grey level (display)")
    axes[0].set_ylabel("fraction of pixels")
    axes[0].set_title("intensity histogram per class")
    if names:
        axes[0].legend(fontsize=8)
    axes[1].hist(stats.contrast, bins=40, color="#4a7")
    axes[1].axvline(stats.gate, color="k", ls="--", label=f"gate {stats.gate:.0f}")
    axes[1].set_xlabel("contrast: 5-95 % grey-level range (background excluded)")
    axes[1].set_title("contrast groups (Otsu gate)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    paths["histograms"] = out / "histograms.png"
    fig.savefig(paths["histograms"], dpi=90)
    plt.close(fig)
    if embedding is not None and len(embedding) > 2 and embedding.shape[1] >= 2:
        fig, ax = plt.subplots(figsize=(5, 4))
        sc = ax.scatter(embedding[:, 0], embedding[:, 1], c=np.clip(z, 0, 10) if z is not None else None,
                        s=6, cmap="viridis")
        if z is not None:
            fig.colorbar(sc, ax=ax, label="robust z of kNN distance")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.set_title("thumbnail embedding (outliers bright)")
        fig.tight_layout()
        paths["embedding"] = out / "embedding.png"
        fig.savefig(paths["embedding"], dpi=90)
        plt.close(fig)
    return paths

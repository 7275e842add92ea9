"""Plots of training and evaluation, returned as PNG bytes (matplotlib, Agg backend, no global state kept)."""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np


def _figure(width: float = 5.0, height: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def plot_curves(history) -> bytes:
    """Train/val loss (left) and validation metrics (right) by epoch from a history DataFrame."""
    fig = _figure(10, 4)
    ax_loss, ax_metric = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    epochs = history["epoch"].to_numpy()
    for col in ("train_loss", "val_loss"):
        if col in history:
            ax_loss.plot(epochs, history[col].to_numpy(), marker="o", label=col)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    metric_cols = [c for c in history.columns if c.startswith("val_") and c not in ("val_loss", "val_threshold")]
    for col in metric_cols[:8]:
        ax_metric.plot(epochs, history[col].to_numpy(), marker="o", label=col)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel("validation metric")
    if metric_cols:
        ax_metric.legend(fontsize=7)
    return _png(fig)


def plot_roc(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """ROC curves: ``{name: (fpr, tpr)}``."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for name, (fpr, tpr) in series.items():
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_pr(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Precision-recall curves: ``{name: (recall, precision)}``."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for name, (recall, precision) in series.items():
        ax.plot(recall, precision, label=name)
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_confusion(counts: Mapping[str, int], *, labels: Sequence[str] = ("negative", "positive")) -> bytes:
    """2x2 confusion matrix from ``{tp, fp, tn, fn}`` (rows = truth, columns = prediction)."""
    m = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig = _figure(4, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(int(v)), ha="center", va="center", color="black" if v < m.max() / 2 else "white")
    ax.set_xticks([0, 1], [f"pred {labels[0]}", f"pred {labels[1]}"])
    ax.set_yticks([0, 1], [f"true {labels[0]}", f"true {labels[1]}"])
    return _png(fig)

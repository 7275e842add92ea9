"""What the label tools read from images and models: known labels, a run's probabilities and embeddings,
and cheap label-free image features.

A trained run gives, per manifest row, sigmoid probabilities ``(N, K)`` and the input of its classifier head
(the pooled CNN features, ``(N, D)``) in one pass through the workspace's slice cache. Without a run,
:func:`image_features` gives label-free features from small brain-window thumbnails (HOG + intensity
histogram of the head), cheap enough to fit linear models in seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError


def known_labels(df: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """(N, K) float32 of the labels a row already carries (nan = unknown), human or pseudo.

    ``label_<name>`` is used when the column has any value. A ``hemorrhage`` column that is absent or empty
    everywhere falls back to "the slice has a box" for rows that have an annotation file (PHE-style); rows
    without an annotation stay unknown (never read as negatives).

    Raises:
        ConfigError: a label column is absent and no fallback applies.
    """
    out = np.full((len(df), len(labels)), np.nan, dtype=np.float32)
    for k, name in enumerate(labels):
        col = f"label_{name}"
        if col in df.columns and df[col].notna().any():
            out[:, k] = df[col].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
        elif name == "hemorrhage" and "boxes" in df.columns and "annotation_path" in df.columns:
            has_ann = df["annotation_path"].notna().to_numpy()
            boxes = np.array([1.0 if len(b) else 0.0 for b in df["boxes"]], dtype=np.float32)
            out[has_ann, k] = boxes[has_ann]
        elif col not in df.columns:
            present = [c for c in df.columns if c.startswith("label_") and c != "label_source"]
            raise ConfigError(f"label {name!r} needs a column {col!r}; label columns present: {present}")
    return out


def is_pseudo(df: pd.DataFrame) -> np.ndarray:
    """(N,) bool: the row's labels come from a model (``label_source == "pseudo"``)."""
    if "label_source" not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return (df["label_source"].astype("string").fillna("") == "pseudo").to_numpy()


@dataclass(frozen=True)
class RunOutputs:
    """A run's outputs on manifest rows (row order of the ``df`` given).

    Attributes:
        image_ids: (N,) str.
        probs: (N, K) float64 sigmoid probabilities.
        embeddings: (N, D) float32 input of the classifier head (pooled CNN features).
        labels: the K label names.
        thresholds: (K,) the run's calibrated decision thresholds.
    """

    image_ids: np.ndarray
    probs: np.ndarray
    embeddings: np.ndarray
    labels: tuple[str, ...]
    thresholds: np.ndarray

    def frame(self) -> pd.DataFrame:
        """``image_id`` + ``prob_<label>`` columns."""
        cols = {"image_id": self.image_ids}
        cols.update({f"prob_{n}": self.probs[:, k] for k, n in enumerate(self.labels)})
        return pd.DataFrame(cols)


def run_outputs(run: str | Path, workspace: str | Path, df: pd.DataFrame | None = None, *,
                device: str | None = None, batch_size: int = 64) -> RunOutputs:
    """Probabilities and head-input embeddings of ``run``'s model on rows ``df`` of ``workspace``.

    Args:
        run: a finished run folder (``model.json`` + ``best.pt``).
        workspace: the workspace whose slice cache is used (built for every active row, then reused).
        df: rows to score (default: every active row); must be active rows of ``workspace``.
    """
    import torch

    from medsift.engine.runner import cache_for, load_run
    from medsift.manifest import active
    from medsift.tasks.data import SliceDataset
    from medsift.tasks.models import head_name
    from medsift.workspace import Workspace

    task, model, meta, dev = load_run(run, device=device)
    ws = Workspace.at(workspace)
    full = active(ws.read())
    df = full if df is None else df
    missing = sorted(set(df["image_id"].astype(str)) - set(full["image_id"].astype(str)))
    if missing:
        raise ConfigError(f"rows to score must be active rows of {ws.root}; not found: {missing[:5]}")
    labels = tuple(meta["labels"])
    if len(df) == 0:
        return RunOutputs(np.array([], dtype=object), np.zeros((0, len(labels))), np.zeros((0, 0), np.float32),
                          labels, np.asarray(meta["calibration"].get("thresholds", [0.5] * len(labels)), float))
    cache = cache_for(ws, full, task.config)
    dataset = SliceDataset(cache.images, cache.rows(df), np.zeros((len(df), len(labels)), np.float32),
                           image_ids=df["image_id"].astype(str).to_numpy(),
                           patients=df["patient_id"].astype(str).to_numpy())
    feats: list[np.ndarray] = []
    head = getattr(model, head_name(model))
    hook = head.register_forward_hook(lambda _m, inp, _out: feats.append(inp[0].detach().float().cpu().numpy()))
    probs = []
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                batch = task.collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
                probs.append(torch.sigmoid(model(batch["image"].to(dev)).float()).cpu().numpy())
    finally:
        hook.remove()
    thresholds = np.asarray(meta["calibration"].get("thresholds", [0.5] * len(labels)), dtype=np.float64)
    return RunOutputs(df["image_id"].astype(str).to_numpy(), np.concatenate(probs).astype(np.float64),
                      np.concatenate(feats).reshape(len(df), -1).astype(np.float32), labels, thresholds)


def thumbnail_features(thumbs: np.ndarray, *, hog_cell: int = 8, bins: int = 16) -> np.ndarray:
    """Label-free features of (N, S, S) thumbnails in 0..1: HOG (9 orientations, ``hog_cell`` px cells)
    plus a ``bins``-bin histogram of the head pixels (value > 0.02) and the head-pixel fraction.

    Returns:
        (N, D) float32.
    """
    from skimage.feature import hog

    thumbs = np.asarray(thumbs, dtype=np.float32)
    if thumbs.ndim != 3:
        raise ConfigError(f"thumbnails must be (N, S, S); got shape {thumbs.shape}")
    out = []
    for t in thumbs:
        h = hog(t, orientations=9, pixels_per_cell=(hog_cell, hog_cell), cells_per_block=(2, 2), feature_vector=True)
        head = t[t > 0.02]
        hist = np.histogram(head, bins=bins, range=(0.0, 1.0))[0] / max(len(head), 1)
        out.append(np.concatenate([h, hist, [len(head) / t.size]]))
    return np.asarray(out, dtype=np.float32)


def thumbnail_array(workspace: str | Path, df: pd.DataFrame, *, size: int = 64, n_jobs: int = 2) -> np.ndarray:
    """(N, size, size) float32 brain-window thumbnails in 0..1 of rows ``df`` of ``workspace``, built once for
    every active row under ``WS/cache/thumbs<size>-none-all`` (as ``medsift distance`` names its caches)."""
    from medsift.label.distance import thumbnails
    from medsift.manifest import active
    from medsift.workspace import Workspace

    ws = Workspace.at(workspace)
    full = active(ws.read())
    flat = thumbnails(full, ws.sub("cache", f"thumbs{size}-none-all"), size=size, n_jobs=n_jobs)
    pos = pd.Series(np.arange(len(full)), index=full["image_id"].astype(str).to_numpy())
    ids = df["image_id"].astype(str)
    missing = sorted(set(ids) - set(pos.index))
    if missing:
        raise ConfigError(f"rows must be active rows of {ws.root}; not found: {missing[:5]}")
    return flat[pos[ids].to_numpy()].reshape(len(df), size, size)


def image_features(workspace: str | Path, df: pd.DataFrame, *, size: int = 64, n_jobs: int = 2) -> np.ndarray:
    """(N, D) label-free features (:func:`thumbnail_features`) of rows ``df`` of ``workspace``."""
    return thumbnail_features(thumbnail_array(workspace, df, size=size, n_jobs=n_jobs))

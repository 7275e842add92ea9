"""Inter-annotator agreement and consensus for slice labels, masks and boxes.

Pure functions: Cohen's kappa (two raters, via scikit-learn), Fleiss' kappa (any number of raters),
majority vote, STAPLE consensus for masks (SimpleITK's ``STAPLEImageFilter``, Warfield et al. 2004),
and box matching by IoU (torchvision ``box_iou`` + Hungarian assignment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medsift.errors import ConfigError


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float:
    """Cohen's kappa of two raters' labels on the same items (1 = perfect, 0 = chance level)."""
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(f"cohen_kappa needs two 1-D label arrays of equal length; got {a.shape} and {b.shape}")
    if np.array_equal(a, b):
        return 1.0  # sklearn returns nan when both raters use a single class; identical is perfect agreement
    return float(cohen_kappa_score(a, b))


def fleiss_kappa(ratings: np.ndarray) -> float:
    """Fleiss' kappa of ``ratings`` (n_items, n_raters) holding category labels (ints).

    Every item must be rated by the same number of raters (>= 2).
    """
    ratings = np.asarray(ratings)
    if ratings.ndim != 2 or ratings.shape[1] < 2:
        raise ConfigError(f"fleiss_kappa needs (n_items, n_raters>=2) ratings; got shape {ratings.shape}")
    categories = np.unique(ratings)
    counts = (ratings[:, :, None] == categories[None, None, :]).sum(axis=1)  # (items, categories)
    return fleiss_kappa_from_counts(counts)


def fleiss_kappa_from_counts(counts: np.ndarray) -> float:
    """Fleiss' kappa from a table ``counts[item, category]`` = raters who chose that category."""
    counts = np.asarray(counts, dtype=float)
    n_raters = counts.sum(axis=1)
    if not np.allclose(n_raters, n_raters[0]) or n_raters[0] < 2:
        raise ConfigError("fleiss_kappa needs the same number (>= 2) of raters on every item")
    n, n_items = n_raters[0], counts.shape[0]
    p_items = ((counts * (counts - 1)).sum(axis=1)) / (n * (n - 1))
    p_cat = counts.sum(axis=0) / (n_items * n)
    p_bar, p_e = p_items.mean(), (p_cat ** 2).sum()
    return 1.0 if np.isclose(p_e, 1.0) else float((p_bar - p_e) / (1 - p_e))


def majority_vote(ratings: np.ndarray, *, tie: int = 1) -> np.ndarray:
    """Per-item majority of binary ``ratings`` (n_items, n_raters); ties go to ``tie`` (default: positive)."""
    ratings = np.asarray(ratings, dtype=float)
    mean = ratings.mean(axis=1)
    out = (mean > 0.5).astype(int)
    out[np.isclose(mean, 0.5)] = tie
    return out


@dataclass(frozen=True)
class StapleResult:
    """STAPLE consensus: per-pixel probability, thresholded mask, and each rater's estimated performance."""

    probability: np.ndarray
    consensus: np.ndarray
    sensitivity: list[float]
    specificity: list[float]


def staple(masks: Sequence[np.ndarray], *, threshold: float = 0.5) -> StapleResult:
    """STAPLE consensus of binary masks of one image (each (H, W) or (Z, H, W), same shape)."""
    import SimpleITK as sitk

    if len(masks) < 2:
        raise ConfigError(f"STAPLE needs at least 2 masks; got {len(masks)}")
    shapes = {np.asarray(m).shape for m in masks}
    if len(shapes) != 1:
        raise ConfigError(f"STAPLE masks must share one shape; got {sorted(shapes)}")
    stacked = np.stack([np.asarray(m, dtype=bool) for m in masks])
    if not stacked.any():
        empty = np.zeros(stacked.shape[1:], dtype=float)
        return StapleResult(empty, empty.astype(bool), [float("nan")] * len(masks), [1.0] * len(masks))
    if (stacked == stacked[0]).all():
        prob = stacked[0].astype(float)
        return StapleResult(prob, stacked[0].copy(), [1.0] * len(masks), [1.0] * len(masks))
    filt = sitk.STAPLEImageFilter()
    filt.SetForegroundValue(1.0)
    images = [sitk.GetImageFromArray(m.astype(np.uint8)) for m in stacked]
    prob = sitk.GetArrayFromImage(filt.Execute(images)).astype(float)
    return StapleResult(prob, prob >= threshold, list(filt.GetSensitivity()), list(filt.GetSpecificity()))


@dataclass(frozen=True)
class BoxMatch:
    """Boxes of two raters matched one-to-one by IoU."""

    pairs: list[tuple[int, int, float]]  # (index in a, index in b, IoU)
    unmatched_a: list[int]
    unmatched_b: list[int]

    @property
    def f1(self) -> float:
        """Agreement as F1 of matched boxes (1.0 when both raters drew nothing)."""
        n_a = len(self.pairs) + len(self.unmatched_a)
        n_b = len(self.pairs) + len(self.unmatched_b)
        return 1.0 if n_a + n_b == 0 else 2 * len(self.pairs) / (n_a + n_b)

    @property
    def mean_iou(self) -> float:
        return float(np.mean([p[2] for p in self.pairs])) if self.pairs else float("nan")


def match_boxes(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], *, iou_threshold: float = 0.5) -> BoxMatch:
    """Match boxes ``[x1, y1, x2, y2, ...]`` (pixels) of two raters, maximising total IoU (Hungarian)."""
    import torch
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_iou

    if len(a) == 0 or len(b) == 0:
        return BoxMatch([], list(range(len(a))), list(range(len(b))))
    ta = torch.tensor([list(map(float, x[:4])) for x in a])
    tb = torch.tensor([list(map(float, x[:4])) for x in b])
    iou = box_iou(ta, tb).numpy()
    rows, cols = linear_sum_assignment(-iou)
    pairs = [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols) if iou[r, c] >= iou_threshold]
    used_a, used_b = {p[0] for p in pairs}, {p[1] for p in pairs}
    return BoxMatch(pairs, [i for i in range(len(a)) if i not in used_a], [j for j in range(len(b)) if j not in used_b])

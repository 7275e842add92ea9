"""A contrast gate: route each image to the model of its contrast group (low / high RMS contrast).

Scanners, windows and reconstruction kernels change image contrast; one model per contrast group can fit each
better than one model for all. The gate measures the RMS contrast of the head (standard deviation of the
pixels above ``HEAD_LEVEL`` in a 0..1 brain-window thumbnail), splits at a threshold fitted on training
images (their median by default) and sends each image to its group's model.

Example:
    >>> gate = ContrastGate.fit(np.array([0.1, 0.2, 0.3, 0.4]))
    >>> gate.route(np.array([0.15, 0.35])).tolist()
    [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsift.errors import ConfigError

HEAD_LEVEL = 0.02
"""Thumbnail value (0..1) above which a pixel counts as head, not air."""
LOW, HIGH = 0, 1


def rms_contrast(thumbs: np.ndarray) -> np.ndarray:
    """(N,) standard deviation of head pixels of (N, S, S) thumbnails in 0..1 (0 for an empty image)."""
    t = np.asarray(thumbs, dtype=np.float64)
    if t.ndim != 3:
        raise ConfigError(f"thumbnails must be (N, S, S); got shape {t.shape}")
    out = np.zeros(len(t))
    for i, img in enumerate(t):
        head = img[img > HEAD_LEVEL]
        out[i] = float(head.std()) if len(head) > 1 else 0.0
    return out


@dataclass(frozen=True)
class ContrastGate:
    """Routes contrast values: ``< threshold`` -> group 0 (low), else group 1 (high)."""

    threshold: float

    @classmethod
    def fit(cls, contrast: np.ndarray, *, quantile: float = 0.5) -> "ContrastGate":
        """Gate at the ``quantile`` of training contrasts (median by default)."""
        c = np.asarray(contrast, dtype=np.float64)
        if len(c) == 0 or not 0.0 < quantile < 1.0:
            raise ConfigError(f"gate needs training contrasts and a quantile in (0, 1); got {len(c)} values, "
                              f"quantile {quantile!r}")
        return cls(float(np.quantile(c, quantile)))

    def route(self, contrast: np.ndarray) -> np.ndarray:
        """(N,) int group per image: 0 low contrast, 1 high contrast."""
        return (np.asarray(contrast, dtype=np.float64) >= self.threshold).astype(np.int64)


@dataclass
class GatedClassifier:
    """One scikit-learn classifier per contrast group, cloned from ``template``.

    A group whose training rows hold one class only (or none) uses the model fitted on all rows.
    """

    template: Any
    gate: ContrastGate | None = None
    models: dict[int, Any] = field(default_factory=dict)

    def fit(self, x: np.ndarray, y: np.ndarray, contrast: np.ndarray) -> "GatedClassifier":
        from sklearn.base import clone

        x, y = np.asarray(x), np.asarray(y)
        self.gate = self.gate or ContrastGate.fit(contrast)
        groups = self.gate.route(contrast)
        shared = clone(self.template).fit(x, y)
        self.models = {}
        for g in (LOW, HIGH):
            sel = groups == g
            self.models[g] = clone(self.template).fit(x[sel], y[sel]) if len(np.unique(y[sel])) == 2 else shared
        return self

    def predict_proba(self, x: np.ndarray, contrast: np.ndarray) -> np.ndarray:
        """(N, 2) class probabilities, each row from its group's model."""
        if not self.models:
            raise ConfigError("GatedClassifier must be fitted before predicting")
        x = np.asarray(x)
        groups = self.gate.route(contrast)
        out = np.zeros((len(x), 2))
        for g, model in self.models.items():
            sel = groups == g
            if sel.any():
                out[sel] = model.predict_proba(x[sel])
        return out

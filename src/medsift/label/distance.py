"""Distance between labelled datasets by optimal transport (OTDD-style, Alvarez-Melis & Fusi 2020), with POT.

The ground cost between two labelled samples is ``||x - x'||^2 + W2^2(P_y, P_y')``: feature distance plus the
squared 2-Wasserstein distance between the feature distributions of their classes. The dataset distance is the
square root of the exact OT cost (``ot.emd2``) under uniform weights. Simpler statistics come alongside:
the label-free W2, a sliced Wasserstein distance, mean-image and prevalence differences.

Features are the dataset's own slices, windowed and resized to a thumbnail through the preprocessing cache
(decoded once, reused), projected with one PCA fitted on both sets so both live in the same space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError


def _sqeuclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import ot

    return ot.dist(a, b, metric="sqeuclidean")


def wasserstein2_sq(xa: np.ndarray, xb: np.ndarray) -> float:
    """Exact squared 2-Wasserstein distance between two point clouds with uniform weights."""
    import ot

    if len(xa) == 0 or len(xb) == 0:
        raise ConfigError(f"W2 needs non-empty point clouds; got {len(xa)} and {len(xb)} points")
    wa, wb = np.full(len(xa), 1 / len(xa)), np.full(len(xb), 1 / len(xb))
    return float(max(ot.emd2(wa, wb, _sqeuclidean(xa, xb), numItermax=1_000_000), 0.0))


def label_costs(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Matrix of W2^2 between each class of A and each class of B; returns (costs, classes_a, classes_b)."""
    ca, cb = sorted(set(ya.tolist())), sorted(set(yb.tolist()))
    costs = np.array([[wasserstein2_sq(xa[ya == i], xb[yb == j]) for j in cb] for i in ca])
    return costs, ca, cb


def otdd(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> float:
    """OTDD-style distance of labelled sets ``(xa (n, d), ya (n,))`` and ``(xb (m, d), yb (m,))``."""
    import ot

    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    ya, yb = np.asarray(ya), np.asarray(yb)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1]:
        raise ConfigError(f"features must be (n, d) with the same d; got {xa.shape} and {xb.shape}")
    if len(xa) != len(ya) or len(xb) != len(yb):
        raise ConfigError("one label per feature row is required")
    costs, ca, cb = label_costs(xa, ya, xb, yb)
    ia = np.searchsorted(np.asarray(ca), ya)
    ib = np.searchsorted(np.asarray(cb), yb)
    ground = _sqeuclidean(xa, xb) + costs[ia][:, ib]
    wa, wb = np.full(len(xa), 1 / len(xa)), np.full(len(xb), 1 / len(xb))
    return float(np.sqrt(max(ot.emd2(wa, wb, ground, numItermax=1_000_000), 0.0)))


@dataclass(frozen=True)
class DistanceReport:
    """Distances between dataset A and dataset B (feature units: PCA of 0..1 thumbnails)."""

    otdd: float
    w2_features: float
    sliced_w2: float
    mean_image_l2: float
    prevalence_a: float
    prevalence_b: float
    n_a: int
    n_b: int
    label: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def thumbnails(df: pd.DataFrame, cache_dir: str | Path, *, size: int = 32, enhance: str | None = None,
               n_jobs: int = 2) -> np.ndarray:
    """Brain-window thumbnails (n, size*size) in 0..1 of ``df``'s rows, built once through the slice cache."""
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig

    cache = build_cache(df, cache_dir, PreprocessConfig(size=size, windows=("brain",), enhance=enhance),
                        n_jobs=n_jobs, progress=False)
    pos = cache.rows(df)
    return np.asarray(cache.images[pos], dtype=np.float32).reshape(len(df), -1) / 255.0


def _sample(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    return df if len(df) <= n else df.iloc[np.sort(rng.choice(len(df), size=n, replace=False))]


def dataset_distance(a: pd.DataFrame, b: pd.DataFrame, *, cache_a: str | Path, cache_b: str | Path,
                     label: str = "label_hemorrhage", max_samples: int = 600, dims: int = 32, size: int = 32,
                     enhance_a: str | None = None, enhance_b: str | None = None, seed: int = 0,
                     n_jobs: int = 2) -> DistanceReport:
    """Distance between the labelled rows of manifests ``a`` and ``b`` (rows without ``label`` are dropped)."""
    from sklearn.decomposition import PCA
    import ot

    rng = np.random.default_rng(seed)
    for name, df in (("A", a), ("B", b)):
        if label not in df.columns:
            raise ConfigError(f"dataset {name} has no column {label!r}; label columns: "
                              f"{[c for c in df.columns if c.startswith('label_')]}")
    a = _sample(a[a[label].notna()], max_samples, rng)
    b = _sample(b[b[label].notna()], max_samples, rng)
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"need at least 2 labelled images per dataset; got {len(a)} and {len(b)}")
    ta = thumbnails(a, cache_a, size=size, enhance=enhance_a, n_jobs=n_jobs)
    tb = thumbnails(b, cache_b, size=size, enhance=enhance_b, n_jobs=n_jobs)
    pca = PCA(n_components=min(dims, len(a) + len(b) - 1, ta.shape[1]), random_state=seed)
    pca.fit(np.concatenate([ta, tb]))
    xa, xb = pca.transform(ta), pca.transform(tb)
    ya, yb = a[label].to_numpy(dtype=int), b[label].to_numpy(dtype=int)
    sliced = float(ot.sliced_wasserstein_distance(xa, xb, n_projections=200, seed=seed))
    return DistanceReport(
        otdd=otdd(xa, ya, xb, yb), w2_features=float(np.sqrt(wasserstein2_sq(xa, xb))), sliced_w2=sliced,
        mean_image_l2=float(np.linalg.norm(ta.mean(0) - tb.mean(0))), prevalence_a=float(ya.mean()),
        prevalence_b=float(yb.mean()), n_a=len(a), n_b=len(b), label=label)


def closest(target: tuple[np.ndarray, np.ndarray], candidates: Sequence[tuple[np.ndarray, np.ndarray]]) -> int:
    """Index of the candidate labelled set ``(x, y)`` nearest to ``target`` by :func:`otdd`."""
    scores = [otdd(x, y, *target) for x, y in candidates]
    return int(np.argmin(scores))

"""Active learning: which unlabelled or doubtful images an expert should label next.

Scores from a model's sigmoid probabilities ``p`` (N, K), labels treated as independent:

* ``uncertainty`` (least confidence): ``1 - prod_k max(p_k, 1 - p_k)``, one minus the probability of the
  most likely joint labelling.
* ``margin``: ``1 - (P(best) - P(second best))`` over joint labellings; the second best flips the label whose
  ``min(p, 1-p) / max(p, 1-p)`` is largest.
* ``entropy``: mean binary entropy over labels, in bits (0..1).
* ``diversity``: k-center greedy (Sener & Savarese 2018) on embeddings: each pick is the image farthest from
  everything labelled or already picked; its score is that distance divided by the first pick's.
* ``random``: a uniformly random order (the baseline of the label-budget curve).

For one label the first three give the same order (closest to 0.5 first); they differ for several labels.

Example:
    >>> order, _ = rank(np.array([[0.9], [0.55], [0.2]]), strategy="uncertainty", n=2)
    >>> order.tolist()
    [1, 2]
"""

from __future__ import annotations

from enum import Enum
from typing import Callable

import numpy as np

from medsift.errors import ConfigError
from medsift.registry import Registry


class Strategy(str, Enum):
    """How to rank candidates for labelling."""

    UNCERTAINTY = "uncertainty"
    ENTROPY = "entropy"
    MARGIN = "margin"
    DIVERSITY = "diversity"
    RANDOM = "random"


class Pool(str, Enum):
    """Which rows are candidates: unlabelled ones, unlabelled or pseudo-labelled ("doubtful"), or every row."""

    UNLABELED = "unlabeled"
    DOUBTFUL = "doubtful"
    ALL = "all"


SCORES: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("active-learning score")


def _probs(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or (p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1)):
        raise ConfigError(f"probabilities must be (N, K) in 0..1; got shape {p.shape}, "
                          f"range {np.nanmin(p) if p.size else None}..{np.nanmax(p) if p.size else None}")
    return p


@SCORES.register(Strategy.UNCERTAINTY.value)
def uncertainty_scores(p: np.ndarray) -> np.ndarray:
    """(N,) least confidence of the most likely joint labelling, 0..1 (higher = more uncertain)."""
    p = _probs(p)
    return 1.0 - np.prod(np.maximum(p, 1.0 - p), axis=1)


@SCORES.register(Strategy.MARGIN.value)
def margin_scores(p: np.ndarray) -> np.ndarray:
    """(N,) one minus the probability margin between the best and second-best joint labellings, 0..1."""
    p = _probs(p)
    hi, lo = np.maximum(p, 1.0 - p), np.minimum(p, 1.0 - p)
    best = np.prod(hi, axis=1)
    second = best * np.max(lo / hi, axis=1)
    return 1.0 - (best - second)


@SCORES.register(Strategy.ENTROPY.value)
def entropy_scores(p: np.ndarray) -> np.ndarray:
    """(N,) mean binary entropy over labels in bits, 0..1."""
    p = np.clip(_probs(p), 1e-12, 1 - 1e-12)
    return np.mean(-(p * np.log2(p) + (1 - p) * np.log2(1 - p)), axis=1)


def k_center_greedy(embeddings: np.ndarray, n: int, *,
                    labelled: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n`` rows of ``embeddings`` (N, D) that cover the space (k-center greedy, Euclidean).

    The first pick is the row farthest from ``labelled`` (M, D) or, with nothing labelled, the row nearest the
    mean (deterministic). Returns ``(order (n,), distances (n,))``: the distance of each pick to its nearest
    labelled-or-picked point when it was picked.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ConfigError(f"embeddings must be (N, D); got shape {x.shape}")
    n = min(int(n), len(x))
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if labelled is not None and len(labelled):
        lab = np.asarray(labelled, dtype=np.float64)
        if lab.ndim != 2 or lab.shape[1] != x.shape[1]:
            raise ConfigError(f"labelled embeddings must be (M, {x.shape[1]}); got shape {lab.shape}")
        dist = np.full(len(x), np.inf)
        for start in range(0, len(lab), 512):
            d = ((x[:, None, :] - lab[None, start:start + 512, :]) ** 2).sum(-1)
            dist = np.minimum(dist, np.sqrt(d.min(axis=1)))
        first = int(np.argmax(dist))
        first_d = float(dist[first])
    else:
        first = int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1)))
        first_d = float("inf")
        dist = np.full(len(x), np.inf)
    order, picked_d = [first], [first_d]
    dist = np.minimum(dist, np.sqrt(((x - x[first]) ** 2).sum(axis=1)))
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        order.append(nxt)
        picked_d.append(float(dist[nxt]))
        dist = np.minimum(dist, np.sqrt(((x - x[nxt]) ** 2).sum(axis=1)))
    return np.asarray(order, dtype=np.int64), np.asarray(picked_d)


def rank(p: np.ndarray, *, strategy: Strategy | str, n: int, embeddings: np.ndarray | None = None,
         labelled_embeddings: np.ndarray | None = None, rng: np.random.Generator | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` candidates to label first.

    Args:
        p: (N, K) probabilities of the candidates (ignored by ``diversity`` and ``random``).
        strategy: a :class:`Strategy`.
        n: how many to return (at most N).
        embeddings: (N, D) candidate features, needed by ``diversity``.
        labelled_embeddings: (M, D) features of already-labelled rows (``diversity`` covers around them).
        rng: generator of the ``random`` order (default seed 0).

    Returns:
        ``(order (n,), score (n,))``: candidate positions, best first, and their scores in 0..1
        (ties keep the input order).
    """
    try:
        strategy = Strategy(strategy)
    except ValueError:
        raise ConfigError(f"strategy must be one of {[s.value for s in Strategy]}; got {strategy!r}") from None
    if n < 1:
        raise ConfigError(f"n must be >= 1; got {n!r}")
    count = len(p) if embeddings is None else len(embeddings)
    if strategy is Strategy.RANDOM:
        order = (rng or np.random.default_rng(0)).permutation(count)[:n]
        return order.astype(np.int64), np.ones(len(order))
    if strategy is Strategy.DIVERSITY:
        if embeddings is None:
            raise ConfigError("strategy 'diversity' needs embeddings (a run's CNN features or thumbnails)")
        order, dist = k_center_greedy(embeddings, n, labelled=labelled_embeddings)
        finite = dist[np.isfinite(dist)]
        top = finite.max() if len(finite) and finite.max() > 0 else 1.0
        return order, np.where(np.isfinite(dist), dist / top, 1.0).clip(0.0, 1.0)
    scores = SCORES.get(strategy.value)(p)
    order = np.argsort(-scores, kind="stable")[:n]
    return order.astype(np.int64), scores[order]

"""Bootstrap confidence intervals that resample patients (clusters), not slices.

Slices of one patient are correlated; resampling them independently makes intervals too narrow. Here each
resample draws patients with replacement and takes all their slices.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from medsift.errors import ConfigError


def patient_bootstrap_ci(fn: Callable[[np.ndarray, np.ndarray], float], y, p, groups, *, n: int = 1000,
                         seed: int = 0, alpha: float = 0.05) -> tuple[float, float, float]:
    """Point estimate and percentile ``1 - alpha`` interval of ``fn(y, p)`` under patient resampling.

    Args:
        fn: metric of ``(y, p)`` arrays (first axis = slices); may return nan (then that resample is skipped).
        y, p: arrays with slices on the first axis (1-D or (N, K)).
        groups: (N,) patient id of each slice.
        n: number of resamples.
        seed: seed of the explicit ``numpy.random.Generator``.
        alpha: 0.05 gives a 95% interval.

    Returns:
        ``(estimate, low, high)``; low/high are nan when fewer than 10 resamples gave a finite value.
    """
    out = bootstrap_dict(lambda a, b: {"value": float(fn(a, b))}, y, p, groups, n=n, seed=seed, alpha=alpha)
    return out["value"], out["value_ci_low"], out["value_ci_high"]


def with_cis(metrics: dict[str, Callable[[np.ndarray, np.ndarray], float]], y, p, groups, *, n: int = 1000,
             seed: int = 0) -> dict[str, float]:
    """Flat dict ``{key, key_ci_low, key_ci_high}`` for every named metric function."""
    out: dict[str, float] = {}
    for i, (key, fn) in enumerate(metrics.items()):
        est, low, high = patient_bootstrap_ci(fn, y, p, groups, n=n, seed=seed + i)
        out[key], out[f"{key}_ci_low"], out[f"{key}_ci_high"] = est, low, high
    return out


def bootstrap_dict(fn: Callable[[np.ndarray, np.ndarray], dict[str, float]], y, p, groups, *, n: int = 1000,
                   seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Like :func:`patient_bootstrap_ci` for a function returning several metrics at once (one resample loop).

    Returns:
        Flat ``{key, key_ci_low, key_ci_high}`` for every key of ``fn(y, p)``.
    """
    if n < 1:
        raise ConfigError(f"bootstrap n must be >= 1; got {n!r}")
    y = np.asarray(y)
    p = np.asarray(p)
    g = np.asarray(groups).astype(str)
    if not (len(y) == len(p) == len(g)):
        raise ConfigError(f"y, p and groups must have the same length; got {len(y)}, {len(p)}, {len(g)}")
    point = {k: float(v) for k, v in fn(y, p).items()}
    names, inv = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inv == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n):
        pick = rng.integers(0, len(names), size=len(names))
        idx = np.concatenate([members[i] for i in pick])
        for k, v in fn(y[idx], p[idx]).items():
            if k in samples and np.isfinite(v):
                samples[k].append(float(v))
    out: dict[str, float] = {}
    for k, est in point.items():
        vals = samples[k]
        out[k] = est
        if len(vals) < 10:
            out[f"{k}_ci_low"], out[f"{k}_ci_high"] = float("nan"), float("nan")
        else:
            low, high = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
            out[f"{k}_ci_low"], out[f"{k}_ci_high"] = float(low), float(high)
    return out

"""Near-duplicates: exact (same pixels) and near (perceptual) copies, within and across patients and splits.

1. Exact: equal pixel hashes (blake2b of the decoded array), found by sorting.
2. Candidates for near copies: pairs within a Hamming distance on dHash or pHash (vectorised
   multi-index search, :mod:`medsift.audit.hamming`) plus each image's nearest neighbours by a
   translation-invariant Fourier descriptor (a copy shifted by a few pixels keeps its Fourier magnitude).
3. A candidate is a near duplicate when its descriptor distance is tiny in absolute terms and much smaller
   than the distance of either image to its own volume neighbours (adjacent CT slices look alike; a copy
   looks far more alike). Aligned SSIM/PSNR of the thumbnails confirm it and are reported as evidence.

Pairs in different splits are leakage (error). Flat images (all black) are left to the integrity check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame
from medsift.audit.hamming import exact_groups, hamming, pairs_within
from medsift.audit.similarity import aligned_ssim_psnr, fourier_descriptors, informative, neighbours, rms

HASH_MAX_DIST = 4        # bits, per hash (dHash, pHash)
KNN = 3
MAX_FOURIER_DIST = 0.15  # rms of log-magnitude
REL_FOURIER_DIST = 0.35  # times the distance to the nearest volume neighbour
MIN_SSIM = 0.8


def _pair_codes(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    a, b = np.minimum(i, j), np.maximum(i, j)
    keep = a != b
    return np.unique(a[keep].astype(np.int64) * n + b[keep])


def nearest(x: np.ndarray, k: int, *, block: int = 2048) -> np.ndarray:
    """Indices (N, k) of the k nearest rows of ``x`` (float (N, D)) by Euclidean distance, self included;
    blocked matrix products, so memory is ``block * N`` floats (block shrinks so that stays under 2**24)."""
    block = max(1, min(block, 2**24 // max(len(x), 1)))
    x = x.astype(np.float32)
    sq = (x * x).sum(axis=1)
    out = np.empty((len(x), k), dtype=np.int64)
    for s in range(0, len(x), block):
        d = sq[s:s + block, None] - 2.0 * x[s:s + block] @ x.T + sq[None, :]
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, axis=1).argsort(axis=1)
        out[s:s + block] = np.take_along_axis(part, order, axis=1)
    return out


def candidate_pairs(ctx: AuditContext, desc: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash-close pairs and Fourier-descriptor nearest neighbours among ``usable`` rows (global row numbers)."""
    idx = np.flatnonzero(usable)
    n = len(ctx.manifest)
    codes = [np.zeros(0, np.int64)]
    for k in (1, 2):  # dHash, pHash (aHash and wHash are too coarse on CT: most slices are a bright ellipse)
        i, j, _ = pairs_within(ctx.hashes[idx, k], HASH_MAX_DIST)
        codes.append(_pair_codes(idx[i], idx[j], n))
    if len(idx) > 1:
        kk = min(KNN + 1, len(idx))
        nb = nearest(desc[idx], kk)
        codes.append(_pair_codes(np.repeat(idx, kk), idx[nb.ravel()], n))
    code = np.unique(np.concatenate(codes))
    return code // n, code % n


def _baseline(nb: dict, fd_prev: np.ndarray, fd_next: np.ndarray, i: np.ndarray, j: np.ndarray,
              fallback: float) -> np.ndarray:
    """Per pair: smallest descriptor distance of i or j to a volume neighbour other than the partner."""
    cands = []
    for a, b in ((i, j), (j, i)):
        for side, dist in (("prev", fd_prev), ("next", fd_next)):
            o = nb[side][a]
            cands.append(np.where((o >= 0) & (o != b), dist[a], np.inf))
    base = np.min(np.stack(cands), axis=0)
    return np.where(np.isfinite(base), base, fallback)


@CHECKS.register("duplicate")
def check_duplicates(ctx: AuditContext) -> CheckResult:
    """Flag exact and near duplicate pairs (both images, ``related_id`` = partner).

    Severity: exact copy = error; near copy = warning inside one patient, error across patients; any pair
    split over train/val/test = error (leakage). Score: 1 for exact, else 1 - d / threshold.
    """
    m, f = ctx.manifest, ctx.features
    ids = ctx.ids.to_numpy()
    n = len(m)
    usable = informative(ctx)
    scores = ctx.zeros()
    rows: list[dict] = []
    pairs_ev: list[dict] = []
    pid = m["patient_id"].astype(str).to_numpy()
    split = m["split"].astype("string").fillna("").to_numpy() if "split" in m else np.array([""] * n)
    ph = f["pixel_hash"].astype(str).to_numpy().copy()
    ph[~usable] = ""
    ei, ej = exact_groups(ph)
    exact_codes = set((np.minimum(ei, ej) * n + np.maximum(ei, ej)).tolist())
    desc = fourier_descriptors(ctx.thumbs)
    nb = neighbours(ctx)
    fd_prev = np.where(nb["prev"] >= 0, rms(desc, desc[np.maximum(nb["prev"], 0)]), np.nan)
    fd_next = np.where(nb["next"] >= 0, rms(desc, desc[np.maximum(nb["next"], 0)]), np.nan)
    fallback = float(np.nanmedian(np.concatenate([fd_prev, fd_next]))) if np.isfinite(fd_prev).any() else 1.0
    ci, cj = candidate_pairs(ctx, desc, usable)
    not_exact = ~np.isin(ci * n + cj, np.fromiter(exact_codes, dtype=np.int64, count=len(exact_codes)))
    ci, cj = ci[not_exact], cj[not_exact]
    d = rms(desc[ci], desc[cj])
    base = _baseline(nb, fd_prev, fd_next, ci, cj, fallback)
    thr = np.minimum(MAX_FOURIER_DIST, REL_FOURIER_DIST * base)
    near = d < thr
    kinds: dict[str, int] = {}

    def emit(i: int, j: int, kind: str, score: float, extra: str) -> None:
        cross_patient = pid[i] != pid[j]
        leak = split[i] != "" and split[j] != "" and split[i] != split[j]
        severity = "error" if kind == "exact_duplicate" or cross_patient or leak else "warning"
        where = "across patients" if cross_patient else "same patient"
        if leak:
            where += f", leakage: {split[i]} vs {split[j]}"
        hd = [int(hamming(ctx.hashes[i, k], ctx.hashes[j, k])) for k in range(4)]
        s, p, shift = aligned_ssim_psnr(ctx.thumbs[i], ctx.thumbs[j])
        ev = f"{extra}; hash distances a/d/p/w={hd[0]}/{hd[1]}/{hd[2]}/{hd[3]}; SSIM {s:.3f}, PSNR {p:.1f} dB"
        if kind == "near_duplicate" and s < MIN_SSIM:
            return
        kinds[kind] = kinds.get(kind, 0) + 1
        pairs_ev.append({"a": ids[i], "b": ids[j], "kind": kind, "ssim": s, "psnr": p, "hash_dist": hd,
                         "severity": severity, "where": where, "shift": shift})
        for a, b in ((i, j), (j, i)):
            rows.append({"image_id": ids[a], "check": "duplicate", "severity": severity, "score": score,
                         "detail": f"{kind}: of {ids[b]} ({where}); {ev}", "related_id": ids[b]})
            scores.iloc[a] = max(scores.iloc[a], score)

    for i, j in zip(ei.tolist(), ej.tolist()):
        same_file = f["sha256"].iloc[i] != "" and f["sha256"].iloc[i] == f["sha256"].iloc[j]
        emit(i, j, "exact_duplicate", 1.0, "identical file bytes" if same_file else "identical pixels")
    for i, j, dist, t in zip(ci[near].tolist(), cj[near].tolist(), d[near].tolist(), thr[near].tolist()):
        emit(i, j, "near_duplicate", float(np.clip(1.0 - dist / max(t, 1e-9) * 0.5, 0.5, 1.0)),
             f"Fourier descriptor distance {dist:.3f} (threshold {t:.3f})")
    findings = findings_frame(rows)
    summary = {"kinds": kinds, "n_pairs": len(pairs_ev), "n_candidate_pairs": int(len(ci)),
               "n_flat_images_skipped": int((~usable & ctx.readable).sum()),
               "thresholds": {"hash_max_dist": HASH_MAX_DIST, "max_fourier_dist": MAX_FOURIER_DIST,
                              "rel_fourier_dist": REL_FOURIER_DIST, "min_ssim": MIN_SSIM}}
    return CheckResult(scores, findings, summary, {"pairs": pairs_ev})

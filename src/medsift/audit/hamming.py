"""Vectorised search for pairs of 64-bit hashes within a Hamming distance (multi-index hashing by sorting).

Each hash is cut into 4 chunks of 16 bits. Two hashes within distance ``t`` agree, in at least one chunk,
up to ``t // 4`` bits (pigeonhole). So for every chunk and every 16-bit flip pattern of at most ``t // 4``
bits, candidates are looked up in a table of the chunk values sorted into 65,536 buckets, then their exact
distance is computed with ``np.bitwise_count``. No Python loop over pairs.

Example:
    >>> h = np.array([0, 1, 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64)
    >>> i, j, d = pairs_within(h, 2)
    >>> list(zip(i.tolist(), j.tolist(), d.tolist()))
    [(0, 1, 1)]
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from medsift.errors import ConfigError

CHUNKS = 4
CHUNK_BITS = 16


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of two uint64 arrays (broadcasting), as int."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def _flip_masks(radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(CHUNK_BITS), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


def pairs_within(hashes: np.ndarray, max_dist: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` with ``hamming(hashes[i], hashes[j]) <= max_dist``.

    Args:
        hashes: uint64 (N,).
        max_dist: 0..16 bits.

    Returns:
        ``(i, j, d)`` int64 arrays sorted by ``(i, j)``.
    """
    if not 0 <= max_dist <= 16:
        raise ConfigError(f"max_dist must be 0..16 bits; got {max_dist}")
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(h)
    empty = np.zeros(0, np.int64)
    if n < 2:
        return empty, empty, empty
    radius = max_dist // CHUNKS
    flips = _flip_masks(radius)
    found: list[np.ndarray] = []
    for c in range(CHUNKS):
        keys = (h >> np.uint64(c * CHUNK_BITS)) & np.uint64(0xFFFF)
        ikeys = keys.astype(np.int64)
        order = np.argsort(ikeys, kind="stable")
        bucket_n = np.bincount(ikeys, minlength=1 << CHUNK_BITS)
        bucket_start = np.cumsum(bucket_n) - bucket_n
        for flip in flips.astype(np.int64):
            q = ikeys ^ flip
            lo, counts = bucket_start[q], bucket_n[q]
            total = int(counts.sum())
            if total == 0:
                continue
            ii = np.repeat(np.arange(n), counts)
            starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
            jj = order[starts + np.arange(total)]
            keep = ii < jj
            ii, jj = ii[keep], jj[keep]
            d = hamming(h[ii], h[jj])
            ok = d <= max_dist
            found.append(ii[ok].astype(np.int64) * n + jj[ok])
    if not found:
        return empty, empty, empty
    code = np.unique(np.concatenate(found))
    i, j = code // n, code % n
    return i, j, hamming(h[i], h[j])


def exact_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``i < j`` with equal keys (any dtype; empty strings ignored), by sorting."""
    keys = np.asarray(keys)
    valid = np.flatnonzero(keys != "") if keys.dtype.kind in "UO" else np.arange(len(keys))
    if len(valid) < 2:
        z = np.zeros(0, np.int64)
        return z, z
    _, inv, counts = np.unique(keys[valid], return_inverse=True, return_counts=True)
    out_i, out_j = [], []
    for g in np.flatnonzero(counts > 1):  # loop over duplicate groups only (few), pairs inside are small
        members = valid[inv == g]
        a, b = np.triu_indices(len(members), 1)
        out_i.append(members[a])
        out_j.append(members[b])
    if not out_i:
        z = np.zeros(0, np.int64)
        return z, z
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)

"""Outliers by embedding distance: images far from every other image of the dataset.

Embedding: the 64x64 thumbnails area-reduced to 16x16, centred, projected on their top principal components
(numpy SVD). Distance: mean Euclidean distance to the ``K`` nearest other images. A robust z-score
(median / MAD over the dataset) turns it into a flag.
"""

from __future__ import annotations

import numpy as np

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame
from medsift.audit.duplicates import nearest

N_COMPONENTS = 16
K = 5
Z_WARN = 5.0


def embed(thumbs: np.ndarray, *, n_components: int = N_COMPONENTS) -> np.ndarray:
    """PCA embedding (N, n_components) of uint8 thumbnails (N, 64, 64)."""
    n = len(thumbs)
    x = thumbs.reshape(n, 16, 4, 16, 4).mean(axis=(2, 4)).reshape(n, -1).astype(np.float64) / 255.0
    x -= x.mean(axis=0)
    if n < 2:
        return x[:, :n_components]
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return (x @ vt[:n_components].T).astype(np.float32)


@CHECKS.register("outlier")
def check_outlier(ctx: AuditContext) -> CheckResult:
    """Flag images whose mean distance to their 5 nearest neighbours has a robust z-score > 5 (warning).

    Score = z / (2 * Z_WARN) clipped to 0..1 (flagged images score > 0.5). Unreadable images are left out.
    """
    scores = ctx.zeros()
    ids = ctx.ids.to_numpy()
    idx = np.flatnonzero(ctx.readable)
    rows: list[dict] = []
    if len(idx) <= K + 1:
        return CheckResult(scores, findings_frame(rows), {"skipped": f"needs more than {K + 1} readable images"})
    emb = embed(ctx.thumbs[idx])
    nb = nearest(emb, K + 1)[:, 1:]
    dist = np.sqrt(((emb[:, None, :] - emb[nb]) ** 2).sum(-1)).mean(axis=1)
    med = float(np.median(dist))
    mad = float(np.median(np.abs(dist - med))) * 1.4826 + 1e-9
    z = (dist - med) / mad
    scores.iloc[idx] = np.clip(z / (2 * Z_WARN), 0.0, 1.0)
    for a in np.flatnonzero(z > Z_WARN):
        i = idx[a]
        rows.append({"image_id": ids[i], "check": "outlier", "severity": "warning", "score": float(scores.iloc[i]),
                     "detail": f"outlier: far from every other image (kNN distance {dist[a]:.2f}, robust z={z[a]:.1f})",
                     "related_id": ids[idx[nb[a, 0]]]})
    return CheckResult(scores, findings_frame(rows), {"n_flagged": len(rows), "z_warn": Z_WARN,
                                                      "median_knn_distance": med},
                       {"embedding": emb, "rows": idx, "z": z})

"""Sequence: a slice far from both neighbours of its own volume (out-of-order or foreign slices).

The rule of the issue, ``d(left, this) > t and d(this, right) > t``, with ``t`` set per slice so that it adapts
to slice thickness and anatomy: ``t = max(d(left, right), K * median adjacent distance of the volume)``. A
slice that belongs between its neighbours is closer to each of them than they are to each other; a foreign
slice is not. End slices use ``d(this, n1) > max(2 * d(n1, n2), K * median)``. ``d`` is the RMS difference of
blurred 16x16 descriptors of the thumbnails (grey levels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame
from medsift.audit.similarity import neighbours, rms

K_MEDIAN = 2.5


@CHECKS.register("sequence")
def check_sequence(ctx: AuditContext) -> CheckResult:
    """Flag slices unlike both volume neighbours (warning; ``related_id`` = the nearer neighbour).

    Score: ``0.5 * min(d_left / t, d_right / t)`` clipped to 0..1, so flagged slices score > 0.5.
    """
    nb = neighbours(ctx)
    desc, prev, nxt, dp, dn = nb["desc"], nb["prev"], nb["next"], nb["d_prev"], nb["d_next"]
    ids = ctx.ids.to_numpy()
    m = ctx.manifest
    vol = (m["source"].astype(str) + "|" + m["patient_id"].astype(str)).to_numpy()
    med = pd.Series(dp).groupby(vol).transform("median").to_numpy()  # each adjacent pair once
    scores = ctx.zeros()
    rows: list[dict] = []
    ratios = np.zeros(len(ids))
    for i in range(len(ids)):
        p, n = prev[i], nxt[i]
        if p >= 0 and n >= 0:
            skip = float(rms(desc[p], desc[n]))
            t = max(skip, K_MEDIAN * med[i])
            left, right = dp[i], dn[i]
            ratio = min(left, right) / max(t, 1e-6)
            where = f"d(left {ids[p]})={left:.1f}, d(right {ids[n]})={right:.1f}, d(left, right)={skip:.1f}"
            related = ids[p] if left <= right else ids[n]
        elif p >= 0 or n >= 0:
            n1 = p if p >= 0 else n
            n2 = prev[n1] if p >= 0 else nxt[n1]
            d1 = dp[i] if p >= 0 else dn[i]
            d12 = float(rms(desc[n1], desc[n2])) if n2 >= 0 else 0.0
            t = max(2.0 * d12, K_MEDIAN * med[i])
            ratio = d1 / max(t, 1e-6)
            where = f"end slice: d({ids[n1]})={d1:.1f}, d({ids[n1]}, next)={d12:.1f}"
            related = ids[n1]
        else:
            continue
        if not np.isfinite(ratio):
            continue
        ratios[i] = ratio
        score = float(np.clip(0.5 * ratio, 0.0, 1.0))
        scores.iloc[i] = score
        if ratio > 1.0:
            rows.append({"image_id": ids[i], "check": "sequence", "severity": "warning", "score": score,
                         "detail": f"out_of_sequence: unlike both neighbours ({where}; threshold {t:.1f})",
                         "related_id": related, "_prev": ids[p] if p >= 0 else "", "_next": ids[n] if n >= 0 else ""})
    ev = [{"image_id": r["image_id"], "prev": r.pop("_prev"), "next": r.pop("_next")} for r in rows]
    findings = findings_frame(rows)
    return CheckResult(scores, findings, {"n_flagged": len(rows), "k_median": K_MEDIAN,
                                          "median_adjacent_distance": float(np.nanmedian(dp))
                                          if np.isfinite(dp).any() else None},
                       {"neighbours": ev})

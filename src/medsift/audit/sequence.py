"""Sequence: a slice far from both neighbours of its own volume (out-of-order or foreign slices).

The rule of the issue, ``d(left, this) > t and d(this, right) > t``, in a form that adapts to slice thickness
and anatomy: the detour ``d(left, this) + d(this, right)`` must exceed ``2.4 * max(d(left, right), m)`` where
``m`` is the volume's median adjacent distance (``2.5 * m`` replaces ``d(left, right)`` when left and right are
near copies of each other). A slice that belongs between its neighbours lies on the way from one to the other
(detour ratio about 1 to 1.8 on real head CT); a foreign slice does not. End slices use
``d(this, n1) > max(2 * d(n1, n2), 1.5 * m)``. ``d`` is the RMS difference of blurred 16x16 descriptors of the
thumbnails (grey levels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame
from medsift.audit.similarity import neighbours, rms

K_MEDIAN = 1.5     # end slices: d(this, n1) must exceed 1.5 x the volume's median adjacent distance
K_DETOUR = 2.4     # middle slices: the detour left -> this -> right must be 2.4 x longer than left -> right
K_DEGENERATE = 2.5  # when the two neighbours are (near) copies of each other, d(left, right) says nothing


@CHECKS.register("sequence")
def check_sequence(ctx: AuditContext) -> CheckResult:
    """Flag slices unlike both volume neighbours (warning; ``related_id`` = the nearer neighbour).

    Score: ``0.5 * ratio`` clipped to 0..1 (ratio = detour / threshold), so flagged slices score > 0.5.
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
            base = max(skip, med[i]) if skip >= 0.5 * med[i] else K_DEGENERATE * med[i]
            t = K_DETOUR * base
            left, right = dp[i], dn[i]
            ratio = (left + right) / max(t, 1e-6)
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
    return CheckResult(scores, findings, {"n_flagged": len(rows), "k_median": K_MEDIAN, "k_detour": K_DETOUR,
                                          "median_adjacent_distance": float(np.nanmedian(dp))
                                          if np.isfinite(dp).any() else None},
                       {"neighbours": ev})

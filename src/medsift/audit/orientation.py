"""Orientation and intensity checks: rotated / upside-down and inverted images.

``orientation`` needs the learned detector (:mod:`medsift.audit.learned`). ``intensity`` combines a fast
histogram rule (a windowed head CT has a dark background; an inverted one has a bright border ring) with the
learned inversion head when ``learned`` is on.
"""

from __future__ import annotations

import numpy as np

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame
from medsift.audit.learned import DetectorOutput, TrainConfig, cross_fit
from medsift.audit.similarity import informative

P_FLAG = 0.5            # probability above which the learned detector flags
BRIGHT_BORDER = 128.0   # display grey level of the border ring above which an image looks inverted


def detector(ctx: AuditContext, *, config: TrainConfig | None = None) -> DetectorOutput:
    """Train (once per audit, cached on the context) and apply the self-supervised detectors."""
    if "detector" not in ctx.cache:
        cfg = config or ctx.cache.get("train_config") or TrainConfig(n_threads=min(2, max(ctx.n_jobs, 1)))
        groups = (ctx.manifest["source"].astype(str) + "|" + ctx.manifest["patient_id"].astype(str)).to_numpy()
        ctx.cache["detector"] = cross_fit(ctx.thumbs, groups, informative(ctx), seed=ctx.seed, config=cfg)
    return ctx.cache["detector"]


def correction_gain(ctx: AuditContext, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much closer each image gets to its volume neighbours once corrected.

    Two corrections are tried: undo the rotation ``k`` (rot90 by -k), and, where k = 2, an up-down flip. Returns
    ``(gain, flip_better)``: ratio of corrected to original distance to the neighbour it helps most (NaN without
    neighbours; < 1 means the correction helps) and whether the flip was the better correction.
    """
    from medsift.audit.similarity import descriptors, neighbours, rms

    nb = neighbours(ctx)
    desc, prev, nxt = nb["desc"], nb["prev"], nb["next"]

    def nb_dist(x: np.ndarray) -> np.ndarray:  # (2, N): distance to previous and next slice (NaN if none)
        return np.stack([np.where(prev >= 0, rms(x, desc[np.maximum(prev, 0)]), np.nan),
                         np.where(nxt >= 0, rms(x, desc[np.maximum(nxt, 0)]), np.nan)])

    def ratio(x: np.ndarray) -> np.ndarray:  # best neighbour: one odd neighbour (itself rotated) cannot hide a fix
        with np.errstate(invalid="ignore", divide="ignore"):
            r = nb_dist(x) / np.maximum(base, 1e-6)
        return np.where(np.isnan(r).all(axis=0), np.nan, np.nanmin(np.where(np.isnan(r), np.inf, r), axis=0))

    base = nb_dist(desc)
    rot = descriptors(np.ascontiguousarray(np.stack([np.rot90(t, -int(r)) for t, r in zip(ctx.thumbs, k)])))
    flip = descriptors(np.ascontiguousarray(ctx.thumbs[:, ::-1, :]))
    g_rot = ratio(rot)
    g_flip = np.where(k == 2, ratio(flip), np.inf)
    flip_better = g_flip < g_rot
    return np.where(flip_better, g_flip, g_rot), flip_better


MAX_GAIN = 0.8      # the correction must bring the slice at least 20 % closer to its neighbours
P_ALONE = 0.95      # without volume neighbours, the detector alone must be this sure


@CHECKS.register("orientation")
def check_orientation(ctx: AuditContext) -> CheckResult:
    """Flag images the self-supervised detector finds rotated or flipped (warning).

    A flag needs P(not upright) > 0.5 and, where the slice has volume neighbours, the correction (undo the
    rotation, or flip up-down) must bring it > 20 % closer to them; a slice without neighbours needs P > 0.95.
    Kinds: ``rotated`` (90/180/270 degrees) or ``flipped`` (up-down; chosen when the flip fits the neighbours
    better than a 180-degree turn). Score = 1 - P(upright).
    """
    scores = ctx.zeros()
    rows: list[dict] = []
    if not ctx.learned:
        return CheckResult(scores, findings_frame(rows), {"skipped": "learned detectors off (--no-learned)"})
    out = detector(ctx)
    ids = ctx.ids.to_numpy()
    s = np.where(out.trained, 1.0 - out.p_rot[:, 0], 0.0)
    scores[:] = s
    k = out.p_rot.argmax(axis=1)
    gain, flip_better = correction_gain(ctx, k)
    with np.errstate(invalid="ignore"):
        confirmed = np.where(np.isfinite(gain), gain < MAX_GAIN, s > P_ALONE)
    for i in np.flatnonzero(out.trained & (s > P_FLAG) & (k != 0) & confirmed):
        if flip_better[i]:
            kind, what = "flipped", "flipped up-down"
        else:
            kind, what = "rotated", f"rotated {90 * int(k[i])} degrees counter-clockwise"
        ev = f"; corrected it is {gain[i]:.2f}x as far from its neighbours" if np.isfinite(gain[i]) else ""
        rows.append({"image_id": ids[i], "check": "orientation", "severity": "warning", "score": float(s[i]),
                     "detail": f"{kind}: looks {what} (P(upright)={out.p_rot[i, 0]:.2f}{ev})"})
    return CheckResult(scores, findings_frame(rows), {"n_flagged": len(rows), "train_seconds": round(out.seconds, 1),
                                                      "n_scored": int(out.trained.sum()),
                                                      "max_gain": MAX_GAIN, "p_alone": P_ALONE})


@CHECKS.register("intensity")
def check_intensity(ctx: AuditContext) -> CheckResult:
    """Flag inverted images (warning): bright border ring (histogram rule) or the learned inversion head.

    Score = max(border mean / 255 when above the rule's threshold, learned P(inverted)).
    """
    scores = ctx.zeros()
    ids = ctx.ids.to_numpy()
    usable = informative(ctx)
    border = ctx.features["border_mean"].to_numpy(dtype=float)
    rule = usable & (border > BRIGHT_BORDER)
    rule_score = np.where(rule, border / 255.0, 0.0)
    p_inv = np.zeros(len(ids))
    if ctx.learned:
        out = detector(ctx)
        p_inv = np.where(out.trained, out.p_inv, 0.0)
    s = np.maximum(rule_score, p_inv)
    scores[:] = s
    rows = []
    for i in np.flatnonzero(usable & (rule | (p_inv > P_FLAG))):
        why = []
        if rule[i]:
            why.append(f"border ring mean {border[i]:.0f}/255 (background should be dark)")
        if p_inv[i] > P_FLAG:
            why.append(f"learned P(inverted)={p_inv[i]:.2f}")
        rows.append({"image_id": ids[i], "check": "intensity", "severity": "warning", "score": float(s[i]),
                     "detail": "inverted: " + "; ".join(why)})
    return CheckResult(scores, findings_frame(rows), {"n_flagged": len(rows), "n_rule": int(rule.sum()),
                                                      "n_learned": int((p_inv > P_FLAG).sum()),
                                                      "bright_border_threshold": BRIGHT_BORDER})

"""Label consistency: boxes vs masks, boxes outside the image, tiny or degenerate boxes and masks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame

MIN_BOX_SIDE = 2.0      # pixels
MIN_MASK_AREA = 10      # pixels
MIN_COVERAGE = 0.5      # fraction of mask pixels inside the (margin-expanded) boxes
LINE_INTERIOR = 0.1     # a mask with fewer pixels inside its edge than this is a line or outline...
REGION_INTERIOR = 0.3   # ...worth a flag only where the source's typical mask is a region (median above this)
TRACED_SHARE = 0.5      # a patient with at least this share of line masks (and two or more) was traced throughout


def _present(v) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _slice_neighbours(m: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from medsift.audit.similarity import volume_order

    t = volume_order(m)
    prev = np.full(len(m), -1)
    nxt = np.full(len(m), -1)
    pos, vol = t["pos"].to_numpy(), t["vol"].to_numpy()
    same = vol[1:] == vol[:-1]
    nxt[pos[:-1][same]] = pos[1:][same]
    prev[pos[1:][same]] = pos[:-1][same]
    return prev, nxt


def _overlaps(bbox, boxes) -> bool:
    if bbox is None or boxes is None or (isinstance(bbox, float) and np.isnan(bbox)):
        return False
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return any(min(x2, float(b[2])) > max(x1, float(b[0])) and min(y2, float(b[3])) > max(y1, float(b[1]))
               for b in boxes)


def traced_masks(m: pd.DataFrame, f: pd.DataFrame, prev: np.ndarray, nxt: np.ndarray) -> tuple[dict, dict]:
    """Masks drawn as a 1-2 px line or outline where a region was meant: ``({row: detail}, {source: median})``.

    A mask is a line when under ``LINE_INTERIOR`` of its pixels survive one erosion (``mask_interior``). It is
    reported only where the source's median mask is a region (``REGION_INTERIOR``; at 64 px every rim is a line),
    and only when the line is out of place: the patient's masks are mostly lines (traced throughout), or the
    slices above and below carry region masks (the lesion goes on, drawn another way). A thin crescent at the end
    of a lesion, or a thin lesion drawn thin on every slice of a region-drawing patient, is not reported.
    """
    source = m["source"].astype(str).to_numpy()
    patient = source + "/" + m["patient_id"].astype(str).to_numpy()
    interior = pd.to_numeric(f["mask_interior"], errors="coerce").to_numpy(dtype=float)
    sized = pd.to_numeric(f["mask_area"], errors="coerce").fillna(0).to_numpy() >= MIN_MASK_AREA
    line, region = sized & (interior < LINE_INTERIOR), sized & (interior >= LINE_INTERIOR)
    typical = {s: float(np.nanmedian(interior[(source == s) & sized])) if ((source == s) & sized).any() else 0.0
               for s in np.unique(source)}
    counts = pd.DataFrame({"p": patient, "line": line, "sized": sized}).groupby("p")[["line", "sized"]].sum()
    out: dict[int, str] = {}
    for i in np.flatnonzero(line):
        if typical[source[i]] < REGION_INTERIOR:
            continue
        n_line, n_sized = (int(v) for v in counts.loc[patient[i]])
        head = (f"only {interior[i]:.0%} of the mask's {int(f['mask_area'].iloc[i])} px lie inside its edge (a 1-2 px "
                f"line or outline; the source's median mask has {typical[source[i]]:.0%})")
        if n_line >= 2 and n_line >= TRACED_SHARE * n_sized:
            out[i] = f"{head}; {n_line} of the patient's {n_sized} masks are traced this way"
        elif prev[i] >= 0 and nxt[i] >= 0 and region[prev[i]] and region[nxt[i]]:
            out[i] = f"{head}, while the slices above and below carry region masks"
    return out, typical


@CHECKS.register("label_consistency")
def check_label_consistency(ctx: AuditContext) -> CheckResult:
    """Flag labels that contradict each other or the image.

    Only where a source has both masks and boxes: ``box_without_mask`` (warning; the mask is empty although the
    masks of both neighbouring slices overlap the box: the mask is missing in the middle of a lesion),
    ``mask_without_box`` (warning) and ``box_mask_disagree`` (error; less than half of the mask lies inside its
    boxes grown by 25 % + 4 px; score = 1 - covered fraction). Always: ``line_mask`` (warning; see
    :func:`traced_masks`), ``box_outside`` (error; a box leaves the image), ``degenerate_box`` (error;
    x2 <= x1 or y2 <= y1), ``tiny_box`` (warning; a side < 2 px), ``tiny_mask`` (warning; 1..9 px),
    ``mask_not_binary`` and ``mask_size`` (warning), ``mask_unreadable`` (error).
    """
    m, f = ctx.manifest, ctx.features
    ids = ctx.ids
    scores = ctx.zeros()
    rows: list[dict] = []
    has_mask_path = np.array([_present(v) for v in m["mask_path"].astype("string").fillna("")])
    n_boxes = np.array([len(b) if b is not None else 0 for b in m["boxes"]])
    has_ann = np.array([_present(v) for v in m["annotation_path"].astype("string").fillna("")]) \
        if "annotation_path" in m else n_boxes > 0
    source = m["source"].astype(str).to_numpy()
    prev, nxt = _slice_neighbours(m)
    both = {s: bool(has_mask_path[source == s].any() and (n_boxes[source == s] > 0).any()) for s in np.unique(source)}
    traced, typical = traced_masks(m, f, prev, nxt)

    def add(i: int, severity: str, score: float, detail: str) -> None:
        rows.append({"image_id": ids[i], "check": "label_consistency", "severity": severity, "score": score,
                     "detail": detail})
        scores.iloc[i] = max(scores.iloc[i], score)

    for i in range(len(m)):
        r = f.iloc[i]
        w, h = int(r["img_w"]), int(r["img_h"])
        for b in (m["boxes"].iloc[i] or []):
            x1, y1, x2, y2 = (float(v) for v in b[:4])
            if x2 <= x1 or y2 <= y1:
                add(i, "error", 1.0, f"degenerate_box: {[x1, y1, x2, y2]} has no area")
                continue
            if w > 0 and (x1 < 0 or y1 < 0 or x2 > w or y2 > h):
                add(i, "error", 1.0, f"box_outside: {[x1, y1, x2, y2]} leaves the {w}x{h} image")
            if min(x2 - x1, y2 - y1) < MIN_BOX_SIDE:
                add(i, "warning", 0.7, f"tiny_box: {[x1, y1, x2, y2]} has a side < {MIN_BOX_SIDE:g} px")
        if has_mask_path[i]:
            if r["mask_read_ok"] is False or r["mask_read_ok"] == 0:
                add(i, "error", 1.0, f"mask_unreadable: {r['mask_error']}")
                continue
            if r["mask_shape_ok"] is False:
                add(i, "warning", 0.8, "mask_size: mask and image sizes differ")
            if r["mask_binary"] is False:
                add(i, "warning", 0.5, "mask_not_binary: mask holds more than two values")
            area = int(r["mask_area"])
            if 0 < area < MIN_MASK_AREA:
                add(i, "warning", 0.7, f"tiny_mask: {area} px")
            elif i in traced:
                add(i, "warning", 0.6, f"line_mask: {traced[i]}")
        if not both[source[i]]:
            continue
        area = int(r["mask_area"]) if has_mask_path[i] else 0
        if n_boxes[i] > 0 and area == 0:
            # a box with no mask is normal (a lesion without edema) unless the neighbouring slice's mask runs
            # through this box: then the mask stops where the lesion goes on
            hits = [ids[j] for j in (prev[i], nxt[i]) if j >= 0 and _overlaps(f["mask_bbox"].iloc[j], m["boxes"].iloc[i])]
            if len(hits) == 2:
                add(i, "warning", 0.6, f"box_without_mask: {n_boxes[i]} box(es) but the mask is empty, while the "
                                       f"masks of both neighbours {hits[0]} and {hits[1]} overlap the box")
        elif area > 0 and n_boxes[i] == 0 and has_ann[i]:
            add(i, "warning", 0.6, f"mask_without_box: mask of {area} px but the annotation has no box")
        elif area > 0 and n_boxes[i] > 0:
            cov = float(r["mask_in_boxes"])
            if np.isfinite(cov) and cov < MIN_COVERAGE:
                add(i, "error", 1.0 - cov, f"box_mask_disagree: only {cov:.0%} of the mask ({area} px, bbox "
                                           f"{r['mask_bbox']}) lies inside the boxes")
    findings = findings_frame(rows)
    kinds = findings["detail"].str.split(":").str[0].value_counts().to_dict() if len(findings) else {}
    return CheckResult(scores, findings, {"kinds": {str(k): int(v) for k, v in kinds.items()},
                                          "sources_with_masks_and_boxes": [s for s, v in both.items() if v],
                                          "median_mask_interior": {str(k): round(v, 3) for k, v in typical.items()}})

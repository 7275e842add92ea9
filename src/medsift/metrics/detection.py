"""Detection metrics: COCO mAP (pycocotools, the reference implementation), FROC, image-level outcomes.

Boxes are ``[x1, y1, x2, y2]`` in pixels. Predictions and ground truth are given per image as dicts
``{image_id: array (n, 4)}`` plus scores ``{image_id: array (n,)}``; images without boxes must still be listed
(with empty arrays): they are where false positives happen and where "no hemorrhage" is right.
"""

from __future__ import annotations

import contextlib
import io
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError

Boxes = Mapping[str, np.ndarray]
Scores = Mapping[str, np.ndarray]


def _arr(boxes) -> np.ndarray:
    a = np.asarray(boxes, dtype=float).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    if not np.isfinite(a).all() or (a[:, 2] < a[:, 0]).any() or (a[:, 3] < a[:, 1]).any():
        raise ConfigError(f"boxes must be finite [x1, y1, x2, y2] with x2 >= x1, y2 >= y1; got {a.tolist()[:3]}")
    return a


def _check(gt: Boxes, pred: Boxes, scores: Scores) -> list[str]:
    ids = sorted(gt)
    extra = sorted(set(pred) - set(gt))
    if extra:
        raise ConfigError(f"predictions for images without ground-truth entry: {extra[:5]}")
    for i in pred:
        if len(pred[i]) != len(scores.get(i, [])):
            raise ConfigError(f"image {i!r}: {len(pred[i])} boxes but {len(scores.get(i, []))} scores")
    return ids


def coco_map(gt: Boxes, pred: Boxes, scores: Scores, *, max_dets: int = 100) -> dict[str, float]:
    """COCO-style mAP@0.5, mAP@0.5:0.95 and per-size APs via pycocotools (one class).

    Returns:
        ``map50``, ``map50_95``, ``map_small``, ``map_medium``, ``map_large``, ``ar100`` (COCO definitions;
        -1 from pycocotools, e.g. no box of that size, becomes NaN).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = _check(gt, pred, scores)
    num = {i: k + 1 for k, i in enumerate(ids)}
    images, anns, dets = [], [], []
    for i in ids:
        g = _arr(gt[i])
        images.append({"id": num[i], "width": 4096, "height": 4096, "file_name": str(i)})
        for b in g:
            anns.append({"id": len(anns) + 1, "image_id": num[i], "category_id": 1, "iscrowd": 0,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
        for b, s in zip(_arr(pred.get(i, [])), np.asarray(scores.get(i, []), float)):
            dets.append({"image_id": num[i], "category_id": 1, "score": float(s),
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    if not anns:
        raise ConfigError("mAP needs at least one ground-truth box")
    nan = float("nan")
    if not dets:
        return {"map50": 0.0, "map50_95": 0.0, "map_small": nan, "map_medium": nan, "map_large": nan, "ar100": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "lesion"}]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = [nan if v < 0 else float(v) for v in ev.stats]
    return {"map50_95": s[0], "map50": s[1], "map_small": s[3], "map_medium": s[4], "map_large": s[5],
            "ar100": s[8]}


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of xyxy boxes ``a`` (n, 4) and ``b`` (m, 4); empty inputs give an empty matrix."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def froc(gt: Boxes, pred: Boxes, scores: Scores, *, iou_threshold: float = 0.5,
         fp_rates: Sequence[float] = (0.5, 1, 2, 4)) -> dict[str, float]:
    """Lesion sensitivity at given average false positives per image (FROC operating points).

    Each prediction, highest score first, hits the unmatched ground-truth box of the same image with the
    highest IoU >= ``iou_threshold``; otherwise it is a false positive.

    Returns:
        ``froc_<rate>fp`` keys (e.g. ``froc_1fp``) and ``froc_mean`` (their average).
    """
    ids = _check(gt, pred, scores)
    n_gt = sum(len(_arr(gt[i])) for i in ids)
    if n_gt == 0:
        raise ConfigError("FROC needs at least one ground-truth box")
    events: list[tuple[float, int]] = []  # (score, 1 = hit, 0 = false positive)
    for i in ids:
        g, p = _arr(gt[i]), _arr(pred.get(i, []))
        s = np.asarray(scores.get(i, []), float)
        order = np.argsort(-s, kind="stable")
        iou = iou_matrix(p, g)
        used = np.zeros(len(g), bool)
        for k in order:
            cand = np.where(~used & (iou[k] >= iou_threshold))[0] if len(g) else []
            if len(cand):
                used[cand[np.argmax(iou[k, cand])]] = True
                events.append((s[k], 1))
            else:
                events.append((s[k], 0))
    events.sort(key=lambda e: -e[0])
    hits = np.cumsum([e[1] for e in events]) if events else np.zeros(0)
    fps = np.cumsum([1 - e[1] for e in events]) if events else np.zeros(0)
    out = {}
    for rate in fp_rates:
        allowed = rate * len(ids)
        ok = fps <= allowed
        sens = float(hits[ok].max() / n_gt) if ok.any() else 0.0
        out[f"froc_{rate:g}fp".replace(".", "_")] = sens
    out["froc_mean"] = float(np.mean(list(out.values())))
    return out


def image_level(gt: Boxes, scores: Scores, *, threshold: float) -> pd.DataFrame:
    """Per-image outcome: an image is predicted positive when its best box scores >= ``threshold``.

    Returns:
        DataFrame (image_id, truth, max_score, predicted, outcome in TP/FP/FN/TN), images without boxes included.
    """
    ids = sorted(gt)
    truth = np.array([len(_arr(gt[i])) > 0 for i in ids])
    best = np.array([float(np.max(scores[i])) if len(scores.get(i, [])) else 0.0 for i in ids])
    pred = best >= threshold
    outcome = np.where(truth, np.where(pred, "TP", "FN"), np.where(pred, "FP", "TN"))
    return pd.DataFrame({"image_id": ids, "truth": truth.astype(int), "max_score": best,
                         "predicted": pred.astype(int), "outcome": outcome})


def image_level_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Recall, precision, specificity, F1 and the TP/FP/FN/TN counts of an :func:`image_level` table."""
    c = table["outcome"].value_counts()
    tp, fp, fn, tn = (int(c.get(k, 0)) for k in ("TP", "FP", "FN", "TN"))
    rec = tp / (tp + fn) if tp + fn else float("nan")
    prec = tp / (tp + fp) if tp + fp else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"image_recall": rec, "image_precision": prec, "image_specificity": spec, "image_f1": f1,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def threshold_for_recall(table_truth: Sequence[int], max_scores: Sequence[float], *, target_recall: float = 0.95) -> float:
    """Highest image-score threshold whose image-level recall is >= ``target_recall`` (chosen on validation)."""
    truth = np.asarray(table_truth, bool)
    s = np.asarray(max_scores, float)
    pos = np.sort(s[truth])[::-1]
    if len(pos) == 0:
        raise ConfigError("threshold_for_recall needs at least one positive image")
    k = int(np.ceil(target_recall * len(pos))) - 1
    return float(pos[max(k, 0)])

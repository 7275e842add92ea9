"""Evaluation of detect runs: box metrics, image-level outcome, curves, prediction CSV and drawings.

Files written into the evaluation folder:

``predictions.csv``        every kept box: image_id, patient_id, score, x1, y1, x2, y2 (original pixels)
``image_level.csv``        one row per image (images without boxes included): truth, max_score, predicted, outcome
``classification_report.txt``  scikit-learn's report of the image-level calls
``confusion.png``, ``pr.png`` (box precision/recall at IoU 0.5), ``froc.png``
``draws/<tp|fp|fn>_<image>.png``  ground truth (green) vs predictions (red) for a sample of hits and misses
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medsift.manifest import atomic_write_bytes
from medsift.metrics.detection import iou_matrix  # noqa: F401  (one IoU for metrics and tasks)


def match_events(gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], scores: Sequence[np.ndarray], *,
                 iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """Greedy per-image matching (best score first, best IoU >= threshold, each truth once).

    Returns:
        ``(scores, hit)`` of every prediction sorted by decreasing score (hit = 1 for a true positive) and
        the number of ground-truth boxes.
    """
    all_s, all_h = [], []
    n_gt = 0
    for g, p, s in zip(gt, pred, scores):
        g = np.asarray(g, float).reshape(-1, 4)
        n_gt += len(g)
        s = np.asarray(s, float)
        iou = iou_matrix(p, g)
        used = np.zeros(len(g), bool)
        for k in np.argsort(-s, kind="stable"):
            cand = np.flatnonzero(~used & (iou[k] >= iou_threshold)) if len(g) else np.zeros(0, int)
            hit = len(cand) > 0
            if hit:
                used[cand[np.argmax(iou[k, cand])]] = True
            all_s.append(s[k])
            all_h.append(int(hit))
    order = np.argsort(-np.asarray(all_s, float), kind="stable")
    return np.asarray(all_s, float)[order], np.asarray(all_h, int)[order], n_gt


def pr_curve(gt, pred, scores, *, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Box ``(recall, precision)`` at every score cut (IoU ``iou_threshold`` matching)."""
    _, hit, n_gt = match_events(gt, pred, scores, iou_threshold=iou_threshold)
    tp = np.cumsum(hit)
    fp = np.cumsum(1 - hit)
    return tp / max(n_gt, 1), tp / np.maximum(tp + fp, 1)


def froc_curve(gt, pred, scores, *, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(false positives per image, lesion sensitivity)`` at every score cut."""
    _, hit, n_gt = match_events(gt, pred, scores, iou_threshold=iou_threshold)
    return np.cumsum(1 - hit) / max(len(gt), 1), np.cumsum(hit) / max(n_gt, 1)


def _image_fn(threshold: float):
    def fn(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        pred = p >= threshold
        tp, fn_ = int((pred & (y == 1)).sum()), int((~pred & (y == 1)).sum())
        fp, tn = int((pred & (y == 0)).sum()), int((~pred & (y == 0)).sum())
        nan = float("nan")
        return {"image_recall": tp / (tp + fn_) if tp + fn_ else nan,
                "image_precision": tp / (tp + fp) if tp + fp else nan,
                "image_specificity": tn / (tn + fp) if tn + fp else nan,
                "image_f1": 2 * tp / (2 * tp + fp + fn_) if tp + fp + fn_ else nan}
    return fn


def evaluate_detection(task, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                       out_dir: str | Path | None = None, n_boot: int = 1000) -> dict[str, float]:
    """Flat metrics of a detect task's predictions on ``dataset`` (see :meth:`DetectTask.evaluate`).

    Keys: ``map50``, ``map50_95``, ``map_small/medium/large``, ``ar100``, ``froc_0_5fp`` .. ``froc_4fp``,
    ``froc_mean``, ``image_recall/precision/specificity/f1`` (with ``_ci_low``/``_ci_high``, patient
    bootstrap), ``tp/fp/fn/tn``, ``threshold``, ``n_images``, ``n_patients``, ``n_boxes``, ``n_images_with_box``.
    """
    from medsift.metrics.bootstrap import bootstrap_dict
    from medsift.metrics.detection import coco_map, froc, image_level, image_level_metrics

    idx, det = task.aligned(predictions, dataset)
    boxes, scores = task.split_detections(det, frame=dataset.frame[idx])
    ids = [str(dataset.image_ids[i]) for i in idx]
    patients = np.asarray([str(dataset.patients[i]) for i in idx])
    gt_list = [dataset.gt_boxes[i] for i in idx]
    gt, pred, sc = dict(zip(ids, gt_list)), dict(zip(ids, boxes)), dict(zip(ids, scores))
    thr = float(calibration.get("threshold", calibration.get("thresholds", [0.5])[0]))
    n_gt = int(sum(len(g) for g in gt_list))
    out: dict[str, float] = {}
    if n_gt:
        out.update(coco_map(gt, pred, sc))
        out.update(froc(gt, pred, sc))
    table = image_level(gt, sc, threshold=thr)
    counts = image_level_metrics(table)
    truth = table["truth"].to_numpy(int)
    best = table["max_score"].to_numpy(float)
    by_id = dict(zip(ids, patients))
    groups = np.asarray([by_id[i] for i in table["image_id"]])
    out.update(bootstrap_dict(_image_fn(thr), truth, best, groups, n=max(int(n_boot), 1), seed=int(task.config.seed)))
    out.update({k: float(counts[k]) for k in ("tp", "fp", "fn", "tn")})
    out.update({"threshold": thr, "n_images": float(len(ids)), "n_patients": float(len(np.unique(patients))),
                "n_boxes": float(n_gt), "n_images_with_box": float(int(truth.sum()))})
    if out_dir is not None:
        _write_outputs(Path(out_dir), task, dataset, idx, ids, patients, gt_list, boxes, scores, table, thr)
    return out


def _write_outputs(out_dir: Path, task, dataset, idx, ids, patients, gt_list, boxes, scores, table, thr) -> None:
    import pandas as pd
    from sklearn.metrics import classification_report

    from medsift.report.plots import plot_confusion, plot_pr
    from medsift.tasks.detect import boxes_to_cache
    from medsift.tasks.seg_outputs import png_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [(i, p, float(s), *map(float, b)) for i, p, bs, ss in zip(ids, patients, boxes, scores)
            for b, s in zip(bs, ss)]
    csv = pd.DataFrame(rows, columns=["image_id", "patient_id", "score", "x1", "y1", "x2", "y2"])
    atomic_write_bytes(out_dir / "predictions.csv", csv.to_csv(index=False, float_format="%.4f").encode())
    by_id = dict(zip(ids, patients))
    table = table.assign(patient_id=[by_id[i] for i in table["image_id"]])
    atomic_write_bytes(out_dir / "image_level.csv", table.to_csv(index=False).encode())
    report = classification_report(table["truth"], table["predicted"], labels=[0, 1],
                                   target_names=["none", "hemorrhage"], zero_division=0)
    atomic_write_bytes(out_dir / "classification_report.txt",
                       f"image level, threshold {thr:.4f} on the best box score\n\n{report}".encode())
    counts = table["outcome"].value_counts()
    atomic_write_bytes(out_dir / "confusion.png", plot_confusion(
        {k.lower(): int(counts.get(k, 0)) for k in ("TP", "FP", "FN", "TN")}, labels=("none", "hemorrhage")))
    if sum(len(g) for g in gt_list):
        rec, prec = pr_curve(gt_list, boxes, scores)
        atomic_write_bytes(out_dir / "pr.png", plot_pr({"boxes, IoU 0.5": (rec, prec)}))
        fpi, sens = froc_curve(gt_list, boxes, scores)
        atomic_write_bytes(out_dir / "froc.png", _plot_froc(fpi, sens))
    per = int(task.options.draw_per_case)
    if per <= 0:
        return
    order = {i: k for k, i in enumerate(ids)}
    for outcome in ("TP", "FN", "FP"):
        part = table[table["outcome"] == outcome]
        part = part.sort_values("max_score", ascending=outcome == "FN").head(per)
        for image_id in part["image_id"]:
            k = order[image_id]
            i = idx[k]
            raw = np.asarray(dataset.images[dataset.positions[i]])
            gray = raw[raw.shape[0] // 2]
            keep = scores[k] >= min(thr, 1.0)
            rgb = _draw(gray, boxes_to_cache(gt_list[k], dataset.frame[i]),
                        boxes_to_cache(boxes[k][keep], dataset.frame[i]), scores[k][keep],
                        label=f"{outcome} {image_id} best {table.loc[table['image_id'] == image_id, 'max_score'].iat[0]:.2f}")
            atomic_write_bytes(out_dir / "draws" / f"{outcome.lower()}_{image_id}.png", png_bytes(rgb))


def _draw(gray, gt, pred, scores, *, label: str) -> np.ndarray:
    from medsift.tasks.det_draw import draw_boxes

    return draw_boxes(gray, gt=gt, pred=pred, scores=scores, label=label)


def _plot_froc(fpi: np.ndarray, sens: np.ndarray) -> bytes:
    from medsift.report.plots import _figure, _png

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpi, sens)
    for r in (0.5, 1, 2, 4):
        ax.axvline(r, color="0.8", lw=0.8)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("lesion sensitivity (IoU >= 0.5)")
    ax.set_ylim(0, 1.02)
    return _png(fig)

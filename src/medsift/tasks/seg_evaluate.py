"""Full evaluation of a segmentation run's predictions: metrics three ways, slice classification, volumes,
overlays and exports.

Writes into ``out_dir`` (when given)::

    metrics.json             flat keys (see :func:`evaluate_segmentation`), with _ci_low/_ci_high
    per_image.csv            image_id, patient_id, counts, scores, hd95 (pixels, or mm when spacing is known)
    per_patient.csv          3D scores per patient, volumes in mL when spacing and thickness are known
    conventions.json         what each view means, the empty-mask convention, units
    slice_confusion.png      segmentation -> slice classification confusion matrix
    bland_altman.png         predicted vs true volume per patient (only when volumes are known)
    overlays/{best,median,worst}_<k>_<image_id>.png   truth green, prediction red, overlap yellow
    predictions/masks/<image_id>.png, predictions/nifti/<patient>.nii.gz, predictions/coco_rle.json
                             the post-processed masks in each file's own pixels (resized back from the model's
                             S x S frame, out of the head square with crop_head), NIfTI with the source spacing
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medsift.manifest import atomic_write_bytes

CONVENTIONS = {
    "global": "one confusion table over all pixels of all evaluated images",
    "per_image": "mean over images whose ground truth has a lesion (specificity: over all images)",
    "per_patient": "slices stacked by slice_index into one 3D mask per patient; mean over patients with lesion",
    "empty": "a ratio with a zero denominator (empty truth and empty prediction) counts as 1.0",
    "hd95": "95th percentile symmetric surface distance; mean over lesion images where the prediction is not "
            "empty (hd95_undefined counts the others); pixels unless every image has the same spacing (then mm)",
    "nsd": "normalised surface Dice: share of both surfaces within 2 px (2 mm with spacing) of the other; "
           "nsd_global pools all surface pixels, nsd_per_image/_per_patient average images/patients with lesion; "
           "1 when both masks are empty, 0 when one is",
    "slice_classification": "a slice is predicted positive when its post-processed mask has >= min_lesion_pixels",
    "intervals": "95% percentile bootstrap over patients (medsift.metrics.bootstrap.patient_bootstrap_ci)",
}


def _common_spacing(values: np.ndarray) -> float | None:
    v = np.asarray(values, float)
    if v.size and np.isfinite(v).all() and (v > 0).all() and np.allclose(v, v[0]):
        return float(v[0])
    return None


def evaluate_segmentation(task, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                          out_dir=None, n_boot: int = 1000, seed: int = 0, export: bool = True) -> dict[str, float]:
    """Score post-processed predictions of a :class:`~medsift.tasks.segment.SegmentDataset`.

    Keys: ``dice|iou|sensitivity|specificity|precision|nsd`` x ``_global|_per_image|_per_patient``, ``hd95``,
    ``hd95_per_patient``, ``hd95_undefined``, ``n_images``, ``n_images_with_lesion``, ``n_patients``,
    ``n_patients_with_lesion``, ``slice_*`` (accuracy, precision, recall, specificity, f1, auc, pr_auc, tp, fp,
    fn, tn), ``volume_bias_ml``/``volume_loa_low_ml``/``volume_loa_high_ml`` when volumes are known,
    ``threshold``; point estimates with ``_ci_low``/``_ci_high``.
    """
    from medsift.metrics import segmentation as sm
    from medsift.metrics.classification import binary_metrics
    from medsift.tasks.seg_predict import to_file_frame

    order = np.argsort(predictions["index"], kind="stable")
    idx, probs = predictions["index"][order], predictions["prob"][order]
    positions = dataset.positions[idx]
    center = int(getattr(dataset, "center_channel", 0))
    images = [np.asarray(dataset.images[p, center]) for p in positions]  # (H, W) centre slices
    truth = [np.asarray(dataset.masks[p]) > 0 for p in positions]
    preds = task.masks_from_probs(probs, images, calibration=calibration)
    patients = dataset.patients[idx].astype(str)
    image_ids = dataset.image_ids[idx].astype(str)
    sidx = np.asarray(dataset.slice_index)[idx]
    spacing = np.asarray(getattr(dataset, "spacing_mm", np.full(len(dataset), np.nan)))[idx]
    thick = np.asarray(getattr(dataset, "slice_thickness_mm", np.full(len(dataset), np.nan)))[idx]

    table = sm.per_image_table(preds, truth, spacing=_common_spacing(spacing))
    patient_table = sm.per_patient_table(preds, truth, patients, sidx, spacing_mm=spacing,
                                         slice_thickness_mm=thick)
    out = sm.segmentation_report(table, patients, patient_table=patient_table, n_boot=n_boot, seed=seed)

    # segmentation -> slice classification
    min_px = int(task.options.min_lesion_pixels)
    y_true = (table["true_pixels"].to_numpy() > 0).astype(int)
    pred_px = table["pred_pixels"].to_numpy()
    cls = binary_metrics(y_true, pred_px, threshold=min_px) if len(np.unique(y_true)) > 1 else {}
    cls.update({"auc_max_prob": _auc(y_true, probs)})
    counts = sm.slice_detection_counts(pred_px, table["true_pixels"].to_numpy(), min_pixels=min_px)
    out.update({f"slice_{k}": float(v) for k, v in cls.items()})
    out.update({f"slice_{k}": int(v) for k, v in counts.items()})
    out["threshold"] = float(task.postprocess_config(calibration).threshold)

    ba = None
    if "volume_true_ml" in patient_table.columns:
        vols = patient_table.dropna(subset=["volume_true_ml", "volume_pred_ml"])
        if len(vols) >= 2:
            ba = sm.bland_altman(vols["volume_pred_ml"].to_numpy(), vols["volume_true_ml"].to_numpy())
            out.update({"volume_bias_ml": ba["bias"], "volume_loa_low_ml": ba["loa_low"],
                        "volume_loa_high_ml": ba["loa_high"]})
    out = {k: (float(v) if isinstance(v, (float, np.floating)) else int(v) if isinstance(v, (int, np.integer)) else v)
           for k, v in out.items()}

    if out_dir is not None:
        exported = None
        if export:  # the masks go back to each file's pixels only when they are written
            frames = getattr(dataset, "file_frames", None)
            exported = (preds, spacing) if frames is None else (
                [to_file_frame(p.astype(np.uint8), frames[i][0], square=frames[i][1]) for p, i in zip(preds, idx)],
                np.asarray(dataset.source_spacing_mm, dtype=float)[idx])
        _write_outputs(Path(out_dir), out, table, patient_table, image_ids, patients, sidx, thick, images,
                       truth, preds, counts, bland=ba, export=exported)
    return out


def _auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    from medsift.metrics.classification import roc_auc
    from medsift.tasks.segment import slice_scores

    return roc_auc(y_true, slice_scores(probs)) if len(probs) else math.nan


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _write_outputs(out: Path, metrics: dict[str, Any], table: pd.DataFrame, patient_table: pd.DataFrame,
                   image_ids, patients, sidx, thick, images, truth, preds, counts, *, bland,
                   export: tuple[list[np.ndarray], np.ndarray] | None) -> None:
    """Tables, plots and overlays (the model's frame); with ``export`` = (masks in each file's pixels, their mm per
    pixel) the predicted masks as PNG, NIfTI and COCO RLE."""
    from medsift.tasks import seg_outputs as so

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "metrics.json", json.dumps(_json_safe(metrics), indent=1).encode())
    atomic_write_bytes(out / "conventions.json", json.dumps(CONVENTIONS, indent=1).encode())
    t = table.copy()
    t.insert(0, "patient_id", patients)
    t.insert(0, "image_id", image_ids)
    atomic_write_bytes(out / "per_image.csv", t.to_csv(index=False).encode())
    atomic_write_bytes(out / "per_patient.csv", patient_table.to_csv(index=False).encode())
    atomic_write_bytes(out / "slice_confusion.png",
                       so.plot_confusion(counts, title="segmentation as slice classification"))
    if bland is not None:
        vols = patient_table.dropna(subset=["volume_true_ml", "volume_pred_ml"])
        atomic_write_bytes(out / "bland_altman.png",
                           so.plot_bland_altman(vols["volume_pred_ml"], vols["volume_true_ml"]))
    lesion = np.flatnonzero(table["true_pixels"].to_numpy() > 0)
    cases = so.pick_cases(table["dice"].to_numpy()[lesion], per_group=2)
    for group, picks in cases.items():
        for k, j in enumerate(picks):
            i = int(lesion[j])
            rgb = so.overlay(images[i], truth[i], preds[i])
            atomic_write_bytes(out / "overlays" / f"{group}_{k}_{image_ids[i]}.png", so.png_bytes(rgb))
    if export is not None:
        masks, spacing = export
        pred_dir = out / "predictions"
        so.export_png_masks(pred_dir / "masks", image_ids, masks)
        so.export_nifti_volumes(pred_dir / "nifti", patients, sidx, masks, spacing_mm=spacing,
                                slice_thickness_mm=thick)
        so.export_coco_rle(pred_dir / "coco_rle.json", image_ids, masks)

"""Segmentation metrics for binary lesion masks: Dice, IoU, sensitivity, specificity, precision, HD95, NSD.

Every score is reported three ways, and every key says which:

* ``*_global``: one confusion table summed over all pixels of all images (a big lesion weighs more).
* ``*_per_image``: mean of per-image scores over the images whose ground truth holds a lesion
  (images without lesion have no Dice to speak of; they are judged by specificity and by the
  slice-classification view, :func:`slice_detection_counts`).
* ``*_per_patient``: slices stacked into one 3D mask per patient, one score per patient, mean over the
  patients whose ground truth holds a lesion.

Empty-mask convention (:class:`EmptyConvention`): a ratio whose denominator is 0 (empty truth and empty
prediction for Dice/IoU, no true positive pixel for sensitivity, no predicted pixel for precision) is 1.0
under ``ONE`` (the default: nothing to find and nothing found is a perfect answer) and NaN under ``NAN``
(excluded from means). HD95 is 0.0 when both masks are empty and NaN (undefined) when exactly one is;
means of HD95 skip NaN and report how many were skipped.

HD95 follows MONAI's ``compute_hausdorff_distance(percentile=95)``: the surfaces are the mask pixels
removed by one binary erosion (cross-shaped structuring element, outside the image counts as
background); the 95th percentile of the distances from each surface to the other, the larger of the two
directions. Distances are in pixels, or in mm when ``spacing`` is given.

NSD (normalised surface Dice, Nikolov et al. 2021; recommended by Metrics Reloaded where the boundary itself is
uncertain, as for a thin edema rim drawn by hand): the share of both surfaces that lies within ``tolerance``
(``NSD_TOLERANCE`` = 2 px, or mm with ``spacing``) of the other, on the same surfaces as HD95, as MONAI's
``compute_surface_dice``. 1.0 when both masks are empty, 0.0 when exactly one is. ``nsd_global`` pools the
surface pixels of all images; ``nsd_per_image``/``nsd_per_patient`` are means over images/patients with lesion.

Example:
    >>> import numpy as np
    >>> t = np.zeros((4, 4), bool); t[1:3, 1:3] = True
    >>> p = np.zeros((4, 4), bool); p[1:3, 1:2] = True
    >>> round(segmentation_scores(p, t)["dice"], 4)
    0.6667
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError

SCORES: tuple[str, ...] = ("dice", "iou", "sensitivity", "specificity", "precision")
NSD_TOLERANCE = 2.0


class EmptyConvention(str, Enum):
    """What a ratio with a zero denominator (e.g. Dice of two empty masks) is worth."""

    ONE = "one"
    NAN = "nan"


@dataclass(frozen=True)
class Counts:
    """Pixel (or voxel) confusion counts of a binary mask against its ground truth."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def n_true(self) -> int:
        return self.tp + self.fn

    @property
    def n_pred(self) -> int:
        return self.tp + self.fp


def _binary(mask: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if arr.size and not np.isin(np.unique(arr), (0, 1, 255)).all():
        raise ConfigError(f"{name} must be a binary mask (bool, 0/1 or 0/255); got values "
                          f"{np.unique(arr)[:6].tolist()}")
    return arr > 0


def _check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = _binary(pred, "pred"), _binary(target, "target")
    if p.shape != t.shape:
        raise ConfigError(f"prediction shape {p.shape} differs from ground-truth shape {t.shape}")
    return p, t


def confusion_counts(pred: np.ndarray, target: np.ndarray) -> Counts:
    """Confusion counts of two binary masks of the same shape (any dimension)."""
    p, t = _check_pair(pred, target)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Counts(tp, fp, fn, int(p.size) - tp - fp - fn)


def _ratio(num: float, den: float, empty: EmptyConvention) -> float:
    if den == 0:
        return 1.0 if EmptyConvention(empty) is EmptyConvention.ONE else math.nan
    return float(num) / float(den)


def scores_from_counts(c: Counts, *, empty: EmptyConvention = EmptyConvention.ONE) -> dict[str, float]:
    """Dice, IoU, sensitivity, specificity and precision of one confusion table (see module doc for empties)."""
    return {
        "dice": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, empty),
        "iou": _ratio(c.tp, c.tp + c.fp + c.fn, empty),
        "sensitivity": _ratio(c.tp, c.tp + c.fn, empty),
        "specificity": _ratio(c.tn, c.tn + c.fp, empty),
        "precision": _ratio(c.tp, c.tp + c.fp, empty),
    }


def segmentation_scores(pred: np.ndarray, target: np.ndarray, *,
                        empty: EmptyConvention = EmptyConvention.ONE) -> dict[str, float]:
    """All :data:`SCORES` of one binary prediction against its ground truth."""
    return scores_from_counts(confusion_counts(pred, target), empty=empty)


def dice(pred: np.ndarray, target: np.ndarray, *, empty: EmptyConvention = EmptyConvention.ONE) -> float:
    """Dice coefficient 2|P∩T| / (|P|+|T|)."""
    return segmentation_scores(pred, target, empty=empty)["dice"]


def iou(pred: np.ndarray, target: np.ndarray, *, empty: EmptyConvention = EmptyConvention.ONE) -> float:
    """Intersection over union |P∩T| / |P∪T|."""
    return segmentation_scores(pred, target, empty=empty)["iou"]


def surface(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a binary mask: the pixels one erosion removes (outside the array is background)."""
    from scipy import ndimage

    m = _binary(mask, "mask")
    if not m.any():
        return m.copy()
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    return m & ~ndimage.binary_erosion(m, structure=structure, border_value=0)


def _surface_distances(p: np.ndarray, t: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each surface pixel of ``p`` to the surface of ``t`` and back (both masks non-empty)."""
    from scipy import ndimage

    sp = None if spacing is None else np.broadcast_to(np.asarray(spacing, float), (p.ndim,)).tolist()
    # distances only involve the two masks: work in their joint bounding box (1 px margin, same borders)
    box = tuple(slice(max(int(ix.min()) - 1, 0), int(ix.max()) + 2) for ix in np.nonzero(p | t))
    ps, ts = surface(p[box]), surface(t[box])
    return ndimage.distance_transform_edt(~ts, sampling=sp)[ps], ndimage.distance_transform_edt(~ps, sampling=sp)[ts]


def surface_scores(pred: np.ndarray, target: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                   tolerance: float = NSD_TOLERANCE, percentile: float = 95.0) -> dict[str, float]:
    """``hd95``, ``nsd`` and the NSD's pooled parts ``nsd_hits``/``nsd_surface`` (surface pixels within
    ``tolerance`` of the other surface / all surface pixels of both masks) from one distance computation."""
    p, t = _check_pair(pred, target)
    if not p.any() and not t.any():
        return {"hd95": 0.0, "nsd": 1.0, "nsd_hits": 0, "nsd_surface": 0}
    if not p.any() or not t.any():
        return {"hd95": math.nan, "nsd": 0.0, "nsd_hits": 0, "nsd_surface": int(surface(p | t).sum())}
    d_pt, d_tp = _surface_distances(p, t, spacing)
    hits = int((d_pt <= tolerance).sum() + (d_tp <= tolerance).sum())
    total = int(d_pt.size + d_tp.size)
    return {"hd95": float(max(np.percentile(d_pt, percentile), np.percentile(d_tp, percentile))),
            "nsd": hits / total, "nsd_hits": hits, "nsd_surface": total}


def hausdorff95(pred: np.ndarray, target: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance between two binary masks (2D or 3D).

    Args:
        pred, target: binary masks of the same shape.
        spacing: pixel size per axis (mm); ``None`` means 1 (distances in pixels).
        percentile: 95 for HD95, 100 for the classical Hausdorff distance.

    Returns:
        The larger of the two directed percentile distances; 0.0 if both masks are empty, NaN if one is.
    """
    return surface_scores(pred, target, spacing=spacing, percentile=percentile)["hd95"]


def surface_dice(pred: np.ndarray, target: np.ndarray, *, tolerance: float = NSD_TOLERANCE,
                 spacing: Sequence[float] | float | None = None) -> float:
    """Normalised surface Dice at ``tolerance`` (pixels, or mm with ``spacing``); see the module docstring."""
    return surface_scores(pred, target, spacing=spacing, tolerance=tolerance)["nsd"]


def lesion_volume_ml(mask: np.ndarray, *, spacing_mm: float, slice_thickness_mm: float) -> float:
    """Volume of a 3D (or stacked 2D) binary mask in millilitres: voxels x dx x dy x dz / 1000."""
    if not (spacing_mm > 0 and slice_thickness_mm > 0):
        raise ConfigError(f"spacing must be positive mm; got spacing_mm={spacing_mm}, "
                          f"slice_thickness_mm={slice_thickness_mm}")
    return float(np.count_nonzero(_binary(mask, "mask"))) * spacing_mm * spacing_mm * slice_thickness_mm / 1000.0


def bland_altman(pred: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    """Bland-Altman agreement of two paired measurements (e.g. volumes in mL).

    Returns ``bias`` (mean of pred - truth), ``sd`` of the differences (ddof=1) and the 95% limits of
    agreement ``loa_low``/``loa_high`` = bias -/+ 1.96 sd, plus ``n``.
    """
    p, t = np.asarray(pred, float), np.asarray(truth, float)
    if p.shape != t.shape or p.ndim != 1:
        raise ConfigError(f"bland_altman needs two 1-D sequences of equal length; got {p.shape} and {t.shape}")
    diff = p - t
    n = diff.size
    bias = float(diff.mean()) if n else math.nan
    sd = float(diff.std(ddof=1)) if n > 1 else math.nan
    return {"bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd, "n": n}


def per_image_table(preds: Iterable[np.ndarray], targets: Iterable[np.ndarray], *,
                    spacing: Sequence[float] | float | None = None,
                    empty: EmptyConvention = EmptyConvention.ONE) -> pd.DataFrame:
    """One row per image: counts, the :data:`SCORES`, ``hd95``, ``nsd`` (+ ``nsd_hits``/``nsd_surface``),
    ``true_pixels`` and ``pred_pixels``."""
    rows = []
    for p, t in zip(preds, targets):
        c = confusion_counts(p, t)
        row = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn, "true_pixels": c.n_true, "pred_pixels": c.n_pred}
        row.update(scores_from_counts(c, empty=empty))
        row.update(surface_scores(p, t, spacing=spacing))
        rows.append(row)
    return pd.DataFrame(rows)


def slice_detection_counts(pred_pixels: Sequence[int], true_pixels: Sequence[int], *,
                           min_pixels: int = 1) -> dict[str, int]:
    """Segmentation seen as slice classification: a slice is called positive when its prediction holds at
    least ``min_pixels`` pixels; truth is "any lesion pixel". Returns the confusion matrix entries."""
    pred = np.asarray(pred_pixels) >= max(int(min_pixels), 1)
    true = np.asarray(true_pixels) > 0
    return {"tp": int((pred & true).sum()), "fp": int((pred & ~true).sum()),
            "fn": int((~pred & true).sum()), "tn": int((~pred & ~true).sum())}


def _nanmean(values: Iterable[float]) -> float:
    arr = np.asarray(list(values), float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


def summarize(table: pd.DataFrame, *, patient_table: pd.DataFrame | None = None) -> dict[str, float]:
    """Flat metrics from a per-image table (:func:`per_image_table`) and an optional per-patient table.

    ``table`` needs the count columns, the score columns, ``hd95`` and the ``nsd`` columns; ``patient_table`` the
    same computed on 3D stacks (:func:`per_patient_table`). Keys: ``<score>_global``, ``<score>_per_image``,
    ``<score>_per_patient``, ``nsd_global|_per_image|_per_patient``, ``hd95`` (mean over images with lesion where
    it is defined),
    ``hd95_per_patient``, ``hd95_undefined`` (lesion images with an empty prediction), ``n_images``,
    ``n_images_with_lesion``, ``n_patients``, ``n_patients_with_lesion``.
    """
    out: dict[str, float] = {}
    total = Counts(*(int(table[k].sum()) for k in ("tp", "fp", "fn", "tn")))
    for name, value in scores_from_counts(total).items():
        out[f"{name}_global"] = value
    lesion = table[table["true_pixels"] > 0]
    for name in SCORES:
        src = table if name == "specificity" else lesion
        out[f"{name}_per_image"] = _nanmean(src[name])
    out["hd95"] = _nanmean(lesion["hd95"])
    out["hd95_undefined"] = int(lesion["hd95"].isna().sum())
    out["nsd_global"] = _pooled_nsd(table[["nsd_hits", "nsd_surface"]].to_numpy(dtype=float))
    out["nsd_per_image"] = _nanmean(lesion["nsd"])
    out["n_images"] = int(len(table))
    out["n_images_with_lesion"] = int(len(lesion))
    if patient_table is not None:
        pl = patient_table[patient_table["true_pixels"] > 0]
        for name in SCORES:
            src = patient_table if name == "specificity" else pl
            out[f"{name}_per_patient"] = _nanmean(src[name])
        out["hd95_per_patient"] = _nanmean(pl["hd95"])
        out["nsd_per_patient"] = _nanmean(pl["nsd"])
        out["n_patients"] = int(len(patient_table))
        out["n_patients_with_lesion"] = int(len(pl))
    return out


def stack_patient(masks: Sequence[np.ndarray], slice_index: Sequence[int]) -> np.ndarray:
    """Stack a patient's 2D slices into a (Z, H, W) volume ordered by ``slice_index``."""
    order = np.argsort(np.asarray(slice_index), kind="stable")
    return np.stack([np.asarray(masks[i]) > 0 for i in order], axis=0)


def per_patient_table(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], patient_ids: Sequence[str],
                      slice_index: Sequence[int], *, spacing_mm: Sequence[float] | None = None,
                      slice_thickness_mm: Sequence[float] | None = None,
                      empty: EmptyConvention = EmptyConvention.ONE) -> pd.DataFrame:
    """One row per patient from 3D stacks: counts, scores, ``hd95`` and ``nsd`` (mm when spacing is known, else
    pixels with slice step 1), and ``volume_pred_ml``/``volume_true_ml`` when spacing and thickness are known."""
    pids = np.asarray([str(p) for p in patient_ids])
    sidx = np.asarray(slice_index)
    rows = []
    for pid in pd.unique(pids):
        idx = np.flatnonzero(pids == pid)
        p3 = stack_patient([preds[i] for i in idx], sidx[idx])
        t3 = stack_patient([targets[i] for i in idx], sidx[idx])
        sp = _first_finite(spacing_mm, idx)
        dz = _first_finite(slice_thickness_mm, idx)
        c = confusion_counts(p3, t3)
        row = {"patient_id": pid, "n_slices": len(idx), "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
               "true_pixels": c.n_true, "pred_pixels": c.n_pred}
        row.update(scores_from_counts(c, empty=empty))
        spacing3 = None if sp is None else (dz if dz is not None else 1.0, sp, sp)
        row.update(surface_scores(p3, t3, spacing=spacing3))
        if sp is not None and dz is not None:
            row["volume_pred_ml"] = lesion_volume_ml(p3, spacing_mm=sp, slice_thickness_mm=dz)
            row["volume_true_ml"] = lesion_volume_ml(t3, spacing_mm=sp, slice_thickness_mm=dz)
        rows.append(row)
    return pd.DataFrame(rows)


def _first_finite(values: Sequence[float] | None, idx: np.ndarray) -> float | None:
    if values is None:
        return None
    for i in idx:
        v = values[i]
        if v is not None and not pd.isna(v) and float(v) > 0:
            return float(v)
    return None


_TABLE_COLS: tuple[str, ...] = ("tp", "fp", "fn", "tn", "true_pixels") + SCORES + ("hd95", "nsd", "nsd_hits",
                                                                                  "nsd_surface")


def _pooled_nsd(parts: np.ndarray) -> float:
    """NSD over all images at once from (N, 2) rows of (hits, surface pixels); 1.0 when no image has a surface."""
    total = float(parts[:, 1].sum())
    return float(parts[:, 0].sum() / total) if total else 1.0


def _global_fn(score: str):
    def fn(y: np.ndarray, _p: np.ndarray) -> float:
        c = Counts(*(int(v) for v in y[:, :4].sum(axis=0)))
        return scores_from_counts(c)[score]
    return fn


def _mean_fn(score: str, *, lesion_only: bool):
    col = _TABLE_COLS.index(score)

    def fn(y: np.ndarray, _p: np.ndarray) -> float:
        rows = y[y[:, 4] > 0] if lesion_only else y
        return _nanmean(rows[:, col])
    return fn


def segmentation_report(table: pd.DataFrame, image_patient_ids: Sequence[str], *,
                        patient_table: pd.DataFrame | None = None, n_boot: int = 1000,
                        seed: int = 0) -> dict[str, float]:
    """Flat metrics (:func:`summarize`) plus patient-bootstrap 95% intervals ``<key>_ci_low/_ci_high``.

    Intervals resample patients (``medsift.metrics.bootstrap.patient_bootstrap_ci``): image-level keys
    resample the images of each drawn patient, per-patient keys resample rows of ``patient_table``.

    Args:
        table: :func:`per_image_table` output, one row per image.
        image_patient_ids: patient of each row of ``table``.
        patient_table: :func:`per_patient_table` output (adds ``*_per_patient`` keys).
        n_boot: bootstrap resamples (0 = no intervals).
        seed: seed of the resampling generator.
    """
    from medsift.metrics.bootstrap import patient_bootstrap_ci

    out = summarize(table, patient_table=patient_table)
    if n_boot <= 0 or len(table) == 0:
        return out
    y = table[list(_TABLE_COLS)].to_numpy(dtype=float)
    groups = np.asarray([str(g) for g in image_patient_ids])
    fns = {f"{s}_global": _global_fn(s) for s in SCORES}
    fns.update({f"{s}_per_image": _mean_fn(s, lesion_only=s != "specificity") for s in SCORES})
    fns["hd95"] = _mean_fn("hd95", lesion_only=True)
    hits = _TABLE_COLS.index("nsd_hits")
    fns["nsd_global"] = lambda y_, _p: _pooled_nsd(y_[:, hits:hits + 2])
    fns["nsd_per_image"] = _mean_fn("nsd", lesion_only=True)
    for i, (key, fn) in enumerate(fns.items()):
        _, out[f"{key}_ci_low"], out[f"{key}_ci_high"] = patient_bootstrap_ci(fn, y, y, groups, n=n_boot,
                                                                               seed=seed + i)
    if patient_table is not None and len(patient_table):
        yp = patient_table[list(_TABLE_COLS)].to_numpy(dtype=float)
        pg = patient_table["patient_id"].astype(str).to_numpy()
        pfns = {f"{s}_per_patient": _mean_fn(s, lesion_only=s != "specificity") for s in SCORES}
        pfns["hd95_per_patient"] = _mean_fn("hd95", lesion_only=True)
        pfns["nsd_per_patient"] = _mean_fn("nsd", lesion_only=True)
        for i, (key, fn) in enumerate(pfns.items()):
            _, out[f"{key}_ci_low"], out[f"{key}_ci_high"] = patient_bootstrap_ci(
                fn, yp, yp, pg, n=n_boot, seed=seed + 100 + i)
    return out

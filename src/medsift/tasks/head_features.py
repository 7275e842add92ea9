"""Hand-made head-CT features of one slice: where in the skull the hyperdense (blood-like) pixels lie.

The features a radiologist reads a subtype from, measured instead of learnt: an epidural or subdural bleed lies
against the inner table of the skull, a subarachnoid one in the sulci a few millimetres in, an intraventricular
one deep in the ventricles, an intraparenchymal one as a compact blob in the brain. For each depth band below
the skull (in mm, and as a fraction of the head's radius) the slice gets a histogram of its HU, and the
connected hyperdense blobs get their size, count, depth and left-right balance.

They need no training and no GPU, and a gradient-boosted model on them (:mod:`medsift.tasks.gbm`) learns in
seconds from a thousand slices, where a CNN from scratch sees too few of each subtype.

Input: one windowed slice in HU, ``(H, W)`` float, whose values at the window's top (``top_hu``) are taken as
bone. Pixels below the window's bottom are air.

Example:
    >>> import numpy as np
    >>> hu = np.zeros((64, 64), np.float32)
    >>> head_features(hu, mm_per_px=1.0, low_hu=0.0, top_hu=80.0).shape == (len(FEATURE_NAMES),)
    True
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: HU bin edges of the depth-band histograms (a brain window spans about 0..80 HU)
HU_EDGES = (-np.inf, 8.0, 18.0, 28.0, 38.0, 48.0, 58.0, 68.0, 78.0, np.inf)
#: depth bands below the inner table of the skull, mm
DEPTH_MM = ((0.0, 2.0), (2.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, np.inf))
#: depth bands as fractions of the head's largest depth (scanners and heads differ in size)
DEPTH_REL = ((0.0, 0.12), (0.12, 0.25), (0.25, 0.45), (0.45, np.inf))
#: HU from which a pixel counts as blood-like (acute blood is about 50-90 HU)
BLOOD_HU = (55.0, 65.0)
_BLOB = ("count", "log_area_largest", "log_area_total", "n_over_30px", "depth_min_largest_mm", "depth_mean_largest_mm",
         "area_at_skull_k", "area_deep_k", "lr_imbalance")


def _names() -> tuple[str, ...]:
    names = ["intracranial_area_cm2", "bone_area_cm2", "max_depth_cm", "head_fraction", "csf_deep_cm2",
             "mirror_difference_hu"]
    bins = [f"hu{int(lo) if np.isfinite(lo) else 'lo'}" for lo in HU_EDGES[:-1]]
    for lo, hi in DEPTH_MM:
        tag = f"d{lo:g}-{hi:g}mm"
        names += [f"{tag}_{b}" for b in bins] + [f"{tag}_fraction", f"{tag}_mean_hu", f"{tag}_std_hu"]
    for lo, hi in DEPTH_REL:
        tag = f"r{lo:g}-{hi:g}"
        names += [f"{tag}_{b}" for b in bins] + [f"{tag}_fraction", f"{tag}_mean_hu", f"{tag}_std_hu"]
    for thr in BLOOD_HU:
        names += [f"blood{int(thr)}_{k}" for k in _BLOB]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _names()


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (1 + int(np.argmax(sizes)))


def intracranial_mask(hu: np.ndarray, *, low_hu: float, top_hu: float) -> tuple[np.ndarray, np.ndarray]:
    """(intracranial space, bone) as bool (H, W): the largest region enclosed by the bright skull, without it.

    When no closed skull is found (a slice through the vertex, or a skull-stripped image) the head itself
    (largest non-air region, holes filled) stands in for the intracranial space.
    """
    bone = hu >= top_hu - 1e-3
    head = ndi.binary_fill_holes(_largest(hu > low_hu + 1e-3))
    enclosed = ndi.binary_fill_holes(ndi.binary_closing(bone, iterations=2)) & ~ndi.binary_dilation(bone)
    inside = _largest(enclosed)
    if inside.sum() < 0.2 * max(head.sum(), 1):
        inside = head & ~bone
    return inside, bone & head


def _band_stats(hu: np.ndarray, region: np.ndarray, total: int) -> list[float]:
    values = hu[region]
    n = max(values.size, 1)
    hist = np.histogram(values, bins=np.asarray(HU_EDGES))[0] / n
    mean = float(values.mean()) if values.size else 0.0
    std = float(values.std()) if values.size else 0.0
    return hist.tolist() + [values.size / max(total, 1), mean, std]


def _blob_stats(blood: np.ndarray, depth_mm: np.ndarray, mm2: float, centre_x: float) -> list[float]:
    lab, n = ndi.label(blood)
    if n == 0:
        return [0.0] * len(_BLOB)
    which = lab[blood] - 1
    depth = depth_mm[blood]
    area = np.bincount(which, minlength=n).astype(np.float64)
    dmean = np.bincount(which, weights=depth, minlength=n) / area
    dmin = np.full(n, np.inf)
    np.minimum.at(dmin, which, depth)
    big = int(np.argmax(area))
    cols = np.nonzero(blood)[1]
    left, right = float((cols < centre_x).sum()), float((cols >= centre_x).sum())
    return [n / 10.0, np.log1p(area[big] * mm2), np.log1p(area.sum() * mm2), float((area * mm2 > 30).sum()),
            float(dmin[big]), float(dmean[big]), float((area * (dmin < 2.0)).sum() * mm2 / 1e3),
            float((area * (dmean > 25.0)).sum() * mm2 / 1e3), abs(left - right) / (left + right + 1.0)]


def head_features(hu: np.ndarray, *, mm_per_px: float, low_hu: float, top_hu: float) -> np.ndarray:
    """float32 ``(len(FEATURE_NAMES),)`` features of one slice (see the module docstring).

    Args:
        hu: (H, W) slice in HU after windowing (values clipped to ``low_hu..top_hu``).
        mm_per_px: in-plane pixel size of ``hu`` in mm (after any resizing).
        low_hu: the window's bottom (air and fat are at or below it).
        top_hu: the window's top (bone is at it).
    """
    hu = np.asarray(hu, dtype=np.float32)
    mm2 = float(mm_per_px) ** 2
    inside, bone = intracranial_mask(hu, low_hu=low_hu, top_hu=top_hu)
    n_in = int(inside.sum())
    depth_px = ndi.distance_transform_edt(inside)
    depth_mm = depth_px * float(mm_per_px)
    rel = depth_px / (depth_px.max() + 1e-6)
    cy, cx = ndi.center_of_mass(inside) if n_in else (hu.shape[0] / 2.0, hu.shape[1] / 2.0)
    shift = int(round(2 * cx - (hu.shape[1] - 1)))
    clipped = np.where(inside, np.clip(hu, 0.0, 100.0), 0.0)
    mirror = np.roll(clipped[:, ::-1], shift, axis=1)
    out = [n_in * mm2 / 100.0, float(bone.sum()) * mm2 / 100.0, float(depth_mm.max()) / 10.0,
           n_in / hu.size, float((inside & (hu < 15.0) & (depth_mm > 25.0)).sum()) * mm2 / 100.0,
           float(np.abs(clipped - mirror).sum()) / max(n_in, 1)]
    for lo, hi in DEPTH_MM:
        out += _band_stats(hu, inside & (depth_mm >= lo) & (depth_mm < hi), n_in)
    for lo, hi in DEPTH_REL:
        out += _band_stats(hu, inside & (rel >= lo) & (rel < hi), n_in)
    for thr in BLOOD_HU:
        blood = ndi.binary_opening(inside & (hu >= thr) & (hu < top_hu - 1.0))
        out += _blob_stats(blood, depth_mm, mm2, cx)
    return np.asarray(out, dtype=np.float32)

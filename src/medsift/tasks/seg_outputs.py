"""What segmentation evaluation writes besides numbers: overlays, plots and exported predicted masks.

* :func:`overlay` — a slice with ground truth (green) and prediction (red) outlines; overlap shows yellow.
* :func:`pick_cases` — best, median and worst images by Dice among the images with lesion.
* :func:`plot_bland_altman`, :func:`plot_confusion` — PNG bytes (matplotlib, Agg).
* :func:`export_png_masks`, :func:`export_nifti_volumes`, :func:`export_coco_rle` — predictions in the
  three formats, each with a reader round trip (``read_mask_png``, nibabel, ``rle_to_mask``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from medsift.errors import ConfigError
from medsift.manifest import atomic_write_bytes

GT_COLOR = (0, 220, 0)
PRED_COLOR = (255, 40, 40)


def overlay(image: np.ndarray, truth: np.ndarray | None, pred: np.ndarray | None, *, fill: float = 0.35) -> np.ndarray:
    """uint8 (H, W, 3) RGB: the gray slice, truth in green, prediction in red (half-transparent fill plus a
    solid outline), overlap in yellow.

    Args:
        image: (H, W) uint8 or float 0..1 slice.
        truth, pred: (H, W) binary masks or None.
        fill: opacity of the filled regions.
    """
    from scipy import ndimage

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ConfigError(f"overlay needs a 2D (H, W) image; got shape {img.shape}")
    if img.max(initial=0) <= 1.0:
        img = img * 255.0
    rgb = np.repeat(img[..., None], 3, axis=2)
    for mask, color in ((truth, GT_COLOR), (pred, PRED_COLOR)):
        if mask is None:
            continue
        m = np.asarray(mask) > 0
        if m.shape != img.shape:
            raise ConfigError(f"mask shape {m.shape} differs from image shape {img.shape}")
        c = np.asarray(color, dtype=np.float32)
        rgb[m] = rgb[m] * (1 - fill) + c * fill
        edge = m & ~ndimage.binary_erosion(m)
        rgb[edge] = c
    if truth is not None and pred is not None:
        both = (np.asarray(truth) > 0) & (np.asarray(pred) > 0)
        rgb[both] = rgb[both] * 0.5 + np.asarray((255, 230, 0), np.float32) * 0.5
    return np.clip(rgb, 0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an (H, W) or (H, W, 3) uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def pick_cases(dice: Sequence[float], *, per_group: int = 2) -> dict[str, list[int]]:
    """Positions of the ``per_group`` best, median and worst finite Dice values (ties by position)."""
    d = np.asarray(dice, dtype=float)
    valid = np.flatnonzero(np.isfinite(d))
    if valid.size == 0:
        return {"best": [], "median": [], "worst": []}
    order = valid[np.argsort(-d[valid], kind="stable")]
    k = min(per_group, order.size)
    mid = order.size // 2
    lo = max(0, min(mid - k // 2, order.size - k))
    return {"best": order[:k].tolist(), "median": order[lo:lo + k].tolist(), "worst": order[::-1][:k].tolist()}


def _fig_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_bland_altman(pred_ml: Sequence[float], true_ml: Sequence[float], *, title: str = "") -> bytes:
    """Bland-Altman plot (difference vs mean of predicted and true volume, mL) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medsift.metrics.segmentation import bland_altman

    p, t = np.asarray(pred_ml, float), np.asarray(true_ml, float)
    ba = bland_altman(p, t)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter((p + t) / 2, p - t, s=14)
    for y, style, name in ((ba["bias"], "-", "bias"), (ba["loa_low"], "--", "-1.96 SD"),
                           (ba["loa_high"], "--", "+1.96 SD")):
        if np.isfinite(y):
            ax.axhline(y, color="gray", linestyle=style)
            ax.annotate(f"{name} {y:.2f}", (ax.get_xlim()[1], y), ha="right", va="bottom", fontsize=8)
    ax.set_xlabel("mean of predicted and true volume (mL)")
    ax.set_ylabel("predicted - true (mL)")
    ax.set_title(title or f"Bland-Altman, {ba['n']} patients")
    return _fig_png(fig)


def plot_confusion(counts: dict[str, int], *, title: str = "") -> bytes:
    """2x2 confusion matrix (rows = truth, columns = prediction) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mat = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(mat, cmap="Blues")
    for (i, j), v in np.ndenumerate(mat):
        ax.text(j, i, str(v), ha="center", va="center", color="black", fontsize=12)
    ax.set_xticks([0, 1], ["no lesion", "lesion"])
    ax.set_yticks([0, 1], ["no lesion", "lesion"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(title)
    return _fig_png(fig)


def export_png_masks(folder: str | Path, image_ids: Sequence[str], masks: Sequence[np.ndarray]) -> list[Path]:
    """One 0/255 PNG per image, ``folder/<image_id>.png``."""
    from medsift.formats.masks import write_mask_png

    folder = Path(folder)
    return [write_mask_png(folder / f"{iid}.png", m) for iid, m in zip(image_ids, masks)]


def export_nifti_volumes(folder: str | Path, patients: Sequence[str], slice_index: Sequence[int],
                         masks: Sequence[np.ndarray], *, spacing_mm: Sequence[float] | None = None,
                         slice_thickness_mm: Sequence[float] | None = None) -> list[Path]:
    """One uint8 label volume per patient, ``folder/<patient>.nii.gz``, slices stacked by ``slice_index``.

    The NIfTI array is (W, H, Z) (x, y, z as nibabel expects) with a diagonal affine of the pixel spacing and
    slice thickness in mm (1 when unknown); label 1 = lesion.
    """
    import nibabel as nib

    from medsift.metrics.segmentation import stack_patient

    folder = Path(folder)
    pids = np.asarray([str(p) for p in patients])
    sidx = np.asarray(slice_index)
    out = []
    for pid in dict.fromkeys(pids):
        idx = np.flatnonzero(pids == pid)
        vol = stack_patient([masks[i] for i in idx], sidx[idx]).astype(np.uint8)  # (Z, H, W)
        sp = _first_pos(spacing_mm, idx)
        dz = _first_pos(slice_thickness_mm, idx)
        affine = np.diag([sp, sp, dz, 1.0])
        img = nib.Nifti1Image(np.transpose(vol, (2, 1, 0)), affine)
        img.header.set_xyzt_units("mm")
        buf = io.BytesIO()
        file_map = nib.Nifti1Image.make_file_map({"image": buf})
        img.to_file_map(file_map)
        import gzip

        path = folder / f"{pid}.nii.gz"
        atomic_write_bytes(path, gzip.compress(buf.getvalue(), mtime=0))
        out.append(path)
    return out


def read_nifti_volume(path: str | Path) -> np.ndarray:
    """Inverse of :func:`export_nifti_volumes` for one file: bool (Z, H, W)."""
    import nibabel as nib

    data = np.asarray(nib.load(str(path)).dataobj)
    return np.transpose(data, (2, 1, 0)) > 0


def export_coco_rle(path: str | Path, image_ids: Sequence[str], masks: Sequence[np.ndarray]) -> Path:
    """``{"<image_id>": {"size": [H, W], "counts": str}, ...}`` JSON of compressed COCO RLEs (one per image,
    empty masks included) via :func:`medsift.formats.coco.mask_to_rle`."""
    from medsift.formats.coco import mask_to_rle

    data = {str(iid): mask_to_rle(np.asarray(m) > 0) for iid, m in zip(image_ids, masks)}
    path = Path(path)
    atomic_write_bytes(path, json.dumps(data).encode("utf-8"))
    return path


def read_coco_rle(path: str | Path) -> dict[str, np.ndarray]:
    """Inverse of :func:`export_coco_rle`: ``{image_id: bool (H, W)}``."""
    from medsift.formats.coco import rle_to_mask

    return {k: rle_to_mask(v) for k, v in json.loads(Path(path).read_text()).items()}


def _first_pos(values: Sequence[float] | None, idx: np.ndarray) -> float:
    if values is not None:
        for i in idx:
            v = values[i]
            try:
                if v is not None and float(v) > 0:
                    return float(v)
            except (TypeError, ValueError):
                continue
    return 1.0

"""Derive a hematoma (the bleed itself) mask from labels that outline something else.

Know your labels: in PHE-SICH-CT-IDS the PNG masks outline the **perihematomal edema** (PHE), a dark rim
of swollen tissue *around* the hematoma, and the Pascal VOC boxes cover the **hemorrhage region**. Neither
is a hematoma mask. The hematoma is the bright (fresh blood, ~50-90 HU) blob that the edema surrounds, so
it can be recovered as the bright pixels inside the region the labels enclose:

1. region: the inside of the edema rim (rim closed, holes filled, rim removed), and/or the boxes;
2. band: pixels of the windowed slice within ``(low, high]``; ``low`` defaults to Otsu's threshold of the
   region's and the rim's pixels (blood is the bright mode, edema the dark one), ``high`` (254) leaves out
   saturated bone;
3. cleanup: holes filled, components under ``min_pixels`` dropped.

It is a heuristic label (``label_source = "derived"``): check it (:func:`compare_masks` on phantoms whose
true hematoma is known) before trusting it.

Example:
    >>> import numpy as np
    >>> img = np.full((40, 40), 60, np.uint8); img[15:25, 15:25] = 200          # bright bleed
    >>> rim = np.zeros((40, 40), bool); rim[11:29, 11:29] = True; rim[14:26, 14:26] = False
    >>> int(derive_hematoma_mask(img, rim=rim).sum())
    100
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Sequence

import numpy as np

from medsift.errors import ConfigError


class HematomaRegion(str, Enum):
    """Where the hematoma is looked for."""

    RIM = "rim"            # inside the edema rim
    BOX = "box"            # inside the hemorrhage boxes
    RIM_OR_BOX = "rim_or_box"


def rim_interior(rim: np.ndarray, *, closing_radius: int = 3) -> np.ndarray:
    """Pixels enclosed by an edema rim, rim excluded (H, W) bool.

    The rim is closed with a disk of ``closing_radius`` pixels (seals small gaps) and its holes filled; a
    rim still open after that falls back to the convex hull of each of its components.
    """
    from scipy.ndimage import binary_fill_holes
    from skimage.measure import label
    from skimage.morphology import closing, convex_hull_image, disk

    r = np.asarray(rim, dtype=bool)
    if r.ndim != 2:
        raise ConfigError(f"rim must be a 2D (H, W) mask; got shape {r.shape}")
    if not r.any():
        return np.zeros_like(r)
    closed = closing(r, disk(closing_radius)) if closing_radius > 0 else r
    inside = binary_fill_holes(closed) & ~r
    lab = label(closed, connectivity=2)
    for k in range(1, int(lab.max()) + 1):
        comp = lab == k
        if not (binary_fill_holes(comp) & ~comp).any():  # encloses nothing: an open rim
            inside |= convex_hull_image(comp) & ~r
    return inside


def boxes_region(shape: Sequence[int], boxes: Iterable[Sequence]) -> np.ndarray:
    """(H, W) bool of the union of ``[x1, y1, x2, y2, ...]`` pixel boxes (x2/y2 exclusive, clipped)."""
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), bool)
    for b in boxes:
        x1, y1, x2, y2 = (int(round(float(v))) for v in b[:4])
        out[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)] = True
    return out


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    if values.size < 2 or values.min() == values.max():  # one grey level: no split, keep it all
        return float(values.min()) - 0.5 if values.size else 0.0
    return float(threshold_otsu(values))


def derive_hematoma_mask(image: np.ndarray, *, rim: np.ndarray | None = None,
                         boxes: Iterable[Sequence] | None = None,
                         region: HematomaRegion | str = HematomaRegion.RIM_OR_BOX,
                         low: float | None = None, high: float = 254.0, min_pixels: int = 10,
                         closing_radius: int = 3) -> np.ndarray:
    """Hematoma mask of one brain-windowed 8-bit slice from its edema rim and/or hemorrhage boxes.

    Args:
        image: (H, W) windowed slice, 0..255 (blood bright).
        rim: (H, W) perihematomal edema mask, or None.
        boxes: hemorrhage boxes ``[x1, y1, x2, y2, label]`` in pixels, or None.
        region: where to look (:class:`HematomaRegion`).
        low: lower bound of the blood band (pixel value); None = Otsu threshold of region + rim pixels.
        high: upper bound (bone saturates at 255 in a brain window).
        min_pixels: components smaller than this are dropped.
        closing_radius: pixels, to seal small gaps of the rim.

    Returns:
        (H, W) bool hematoma mask (empty when the labels enclose nothing).
    """
    from scipy.ndimage import binary_fill_holes

    from medsift.tasks.seg_postprocess import remove_small_components

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ConfigError(f"image must be 2D (H, W); got shape {img.shape}")
    try:
        region = HematomaRegion(region)
    except ValueError:
        raise ConfigError(f"region must be one of {[r.value for r in HematomaRegion]}; got {region!r}") from None
    area = np.zeros(img.shape, bool)
    if rim is not None and region in (HematomaRegion.RIM, HematomaRegion.RIM_OR_BOX):
        r = np.asarray(rim) > 0
        if r.shape != img.shape:
            raise ConfigError(f"rim shape {r.shape} differs from image shape {img.shape}")
        area |= rim_interior(r, closing_radius=closing_radius)
    if boxes is not None and region in (HematomaRegion.BOX, HematomaRegion.RIM_OR_BOX):
        box_area = boxes_region(img.shape, boxes)
        if rim is not None:
            box_area &= ~(np.asarray(rim) > 0)  # the edema itself is never hematoma
        area |= box_area
    if not area.any():
        return area
    reference = area | (np.asarray(rim) > 0) if rim is not None else area  # the dark edema as the other class
    lo = _otsu(img[reference]) if low is None else float(low)
    mask = area & (img > lo) & (img <= high)
    mask = binary_fill_holes(mask) & area
    return remove_small_components(mask, min_pixels=int(min_pixels))


def compare_masks(derived: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> dict[str, float]:
    """How a derived label agrees with a known one: global and per-image (lesion images) Dice/IoU/sensitivity/
    precision (:mod:`medsift.metrics.segmentation` conventions)."""
    from medsift.metrics.segmentation import per_image_table, summarize

    table = per_image_table(derived, truth)
    out = summarize(table)
    keep = ("dice_global", "iou_global", "sensitivity_global", "precision_global", "dice_per_image",
            "iou_per_image", "n_images", "n_images_with_lesion")
    return {k: out[k] for k in keep}

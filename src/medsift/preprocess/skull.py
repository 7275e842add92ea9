"""Background and skull removal: threshold, morphology (opening/closing), largest connected component.

* :func:`head_mask` — everything that is not air/background (the head, scalp included), holes filled.
* :func:`brain_mask` — soft tissue inside the skull: not bone, not air, opened to cut thin bridges
  through the skull base, largest component kept, closed and hole-filled (ventricles and bleeds stay in).
* :func:`strip_skull` — zero the pixels outside a mask.
* :func:`head_square` / :func:`crop_square` — the square around the head, and a crop to it (air beyond the
  image's edge is padded with the fill value), so a resize spends its pixels on the head.

Thresholds are in HU for HU data; for 8-bit data (already brain-windowed, 0..255) they are pixel values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from medsift.errors import ConfigError

#: soft-tissue range (HU): CSF, brain, fresh blood; bone is above, air/fat below
HU_TISSUE = (-20.0, 150.0)
#: soft-tissue range for 8-bit brain-windowed pixels: above air, below saturated bone
U8_TISSUE = (1.0, 250.0)
HU_AIR = -300.0
U8_AIR = 1.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component of a (H, W) bool mask (empty stays empty)."""
    from skimage.measure import label

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    lab = label(mask, connectivity=2)
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    return lab == int(np.argmax(counts))


def head_mask(image: np.ndarray, *, has_hu: bool = True, threshold: float | None = None,
              closing_radius: int = 2) -> np.ndarray:
    """Head (non-background) mask of one slice.

    Args:
        image: (H, W) in HU (``has_hu``) or 0..255.
        has_hu: units of ``image``.
        threshold: pixels above it are foreground; default -300 HU or 1 (8-bit).
        closing_radius: disk radius in pixels of the closing that seals small gaps.

    Returns:
        bool (H, W): largest foreground component, closed, holes filled.
    """
    from scipy.ndimage import binary_fill_holes
    from skimage.morphology import closing, disk

    image = _check2d(image)
    thr = threshold if threshold is not None else (HU_AIR if has_hu else U8_AIR)
    fg = largest_component(image > thr)
    if closing_radius > 0:
        fg = closing(fg, disk(closing_radius))
    return binary_fill_holes(fg)


def brain_mask(image: np.ndarray, *, has_hu: bool = True, tissue: tuple[float, float] | None = None,
               opening_radius: int = 2, closing_radius: int = 3) -> np.ndarray:
    """Brain (intracranial soft tissue) mask of one slice.

    Args:
        image: (H, W) in HU (``has_hu``) or 0..255 brain-windowed pixels.
        has_hu: units of ``image``.
        tissue: ``(low, high)`` soft-tissue range; default -20..150 HU or 1..250 (8-bit).
        opening_radius: disk radius (pixels) of the opening that detaches scalp and skull-base bridges.
        closing_radius: disk radius (pixels) of the closing that smooths the kept component.

    Returns:
        bool (H, W): True inside the brain, False on bone, scalp and background.
    """
    from scipy.ndimage import binary_fill_holes
    from skimage.morphology import closing, disk, opening

    image = _check2d(image)
    low, high = tissue if tissue is not None else (HU_TISSUE if has_hu else U8_TISSUE)
    if not low < high:
        raise ConfigError(f"tissue range must be (low, high) with low < high; got {(low, high)!r}")
    soft = (image >= low) & (image <= high)
    if opening_radius > 0:
        soft = opening(soft, disk(opening_radius))
    brain = largest_component(soft)
    if closing_radius > 0:
        brain = closing(brain, disk(closing_radius))
    brain = binary_fill_holes(brain)
    bone = image > high
    return brain & ~bone


def strip_skull(image: np.ndarray, mask: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Set pixels outside ``mask`` to ``fill``.

    Args:
        image: (H, W) or (C, H, W).
        mask: bool (H, W).
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.shape[-2:] != mask.shape:
        raise ConfigError(f"mask shape {mask.shape} does not match image (H, W) {image.shape[-2:]}")
    return np.where(mask, image, np.asarray(fill, dtype=image.dtype))


def head_square(head: np.ndarray, *, margin: float = 0.04) -> tuple[int, int, int] | None:
    """``(y0, x0, side)`` of the square centred on the bounding box of a head mask, ``margin`` of its side
    larger on each edge; may reach past the image (:func:`crop_square` pads). None for an empty mask."""
    from medsift.formats.masks import mask_bbox

    head = np.asarray(head, dtype=bool)
    if head.ndim != 2:
        raise ConfigError(f"expected a 2D (H, W) mask; got shape {head.shape}")
    box = mask_bbox(head)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    side = max(int(np.ceil(max(y2 - y1, x2 - x1) * (1.0 + 2.0 * margin))), 8)
    return int(np.floor((y1 + y2 - side) / 2.0)), int(np.floor((x1 + x2 - side) / 2.0)), side


def union_square(squares: Sequence[tuple[int, int, int] | None]) -> tuple[int, int, int] | None:
    """The smallest square centred on the bounding box of ``squares`` (``(y0, x0, side)`` each; None entries are
    skipped) that holds them all; None when none is given."""
    boxes = np.asarray([s for s in squares if s is not None], dtype=np.int64).reshape(-1, 3)
    if not len(boxes):
        return None
    y0, x0 = int(boxes[:, 0].min()), int(boxes[:, 1].min())
    y1, x1 = int((boxes[:, 0] + boxes[:, 2]).max()), int((boxes[:, 1] + boxes[:, 2]).max())
    side = max(y1 - y0, x1 - x0)
    return (y0 + y1 - side) // 2, (x0 + x1 - side) // 2, side


def crop_square(image: np.ndarray, square: tuple[int, int, int], *, fill: float = 0.0) -> np.ndarray:
    """The ``(y0, x0, side)`` square of ``image`` ((H, W) or (C, H, W)), padded with ``fill`` where it leaves
    the image."""
    image = np.asarray(image)
    y0, x0, side = (int(v) for v in square)
    if side < 1:
        raise ConfigError(f"crop side must be >= 1 pixel; got {side}")
    h, w = image.shape[-2:]
    out = np.full(image.shape[:-2] + (side, side), fill, dtype=image.dtype)
    sy, sx = max(y0, 0), max(x0, 0)
    ey, ex = min(y0 + side, h), min(x0 + side, w)
    if sy < ey and sx < ex:
        out[..., sy - y0:ey - y0, sx - x0:ex - x0] = image[..., sy:ey, sx:ex]
    return out


def paste_square(patch: np.ndarray, square: tuple[int, int, int], shape: tuple[int, int], *,
                 fill: float = 0.0) -> np.ndarray:
    """The inverse of :func:`crop_square`: a ``(side, side)`` patch put back at ``(y0, x0)`` of an image of
    ``shape`` (H, W) filled with ``fill``; the parts of the square outside the image are dropped."""
    patch = np.asarray(patch)
    y0, x0, side = (int(v) for v in square)
    if patch.shape[-2:] != (side, side):
        raise ConfigError(f"patch shape {patch.shape[-2:]} differs from the square's side {side}")
    h, w = (int(v) for v in shape)
    out = np.full(patch.shape[:-2] + (h, w), fill, dtype=patch.dtype)
    sy, sx = max(y0, 0), max(x0, 0)
    ey, ex = min(y0 + side, h), min(x0 + side, w)
    if sy < ey and sx < ex:
        out[..., sy:ey, sx:ex] = patch[..., sy - y0:ey - y0, sx - x0:ex - x0]
    return out


def _check2d(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ConfigError(f"expected a 2D (H, W) slice; got shape {image.shape}")
    return image

"""Resampling: slices to a target size or pixel spacing, volumes to isotropic voxels, boxes along.

Images use linear interpolation (with anti-aliasing when shrinking), masks nearest neighbour so labels
stay labels. Sizes are ``(height, width)`` in pixels, spacings in mm.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from medsift.errors import ConfigError


def _shape2(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ConfigError(f"target size must be positive (height, width) pixels; got {size!r}")
    return h, w


def resize_image(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize a slice with bilinear interpolation, anti-aliased when shrinking (Pillow, float32 mode "F").

    Args:
        image: (H, W) or (C, H, W) array.
        size: output side ``S`` (square) or ``(h, w)`` in pixels.

    Returns:
        float32 (h, w) or (C, h, w); values stay in the input range.
    """
    from PIL import Image

    h, w = _shape2(size)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise ConfigError(f"resize_image expects (H, W) or (C, H, W); got shape {image.shape}")
    if image.shape[-2:] == (h, w):
        return image.copy()
    if image.ndim == 3:  # per channel: channels are never mixed
        return np.stack([resize_image(c, (h, w)) for c in image], axis=0)
    out = Image.fromarray(np.ascontiguousarray(image), mode="F").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32)


def resize_mask(mask: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize a label mask (H, W) with nearest-neighbour interpolation (pixel centres); dtype is kept."""
    from PIL import Image

    h, w = _shape2(size)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ConfigError(f"resize_mask expects (H, W); got shape {mask.shape}")
    if mask.shape == (h, w):
        return mask.copy()
    src = Image.fromarray(np.ascontiguousarray(mask, dtype=np.float32), mode="F")
    return np.asarray(src.resize((w, h), Image.Resampling.NEAREST)).astype(mask.dtype)


def scale_boxes(boxes: np.ndarray, src_hw: Sequence[int], dst_hw: Sequence[int]) -> np.ndarray:
    """Scale xyxy pixel boxes (N, 4) from an image of ``src_hw`` to one of ``dst_hw`` (float32 out)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    sy = float(dst_hw[0]) / float(src_hw[0])
    sx = float(dst_hw[1]) / float(src_hw[1])
    return boxes * np.array([sx, sy, sx, sy], dtype=np.float32)


def cached_spacing_mm(spacing_mm, height, width, size: int) -> np.ndarray:
    """mm per pixel once (height x width) slices of ``spacing_mm`` pixels are resized to ``size`` x ``size``: the
    geometric mean of the two axes' factors, so areas stay right for a non-square slice. One side unknown: the
    slice is taken as square; both unknown: as not resized."""
    h, w = np.asarray(height, dtype=float), np.asarray(width, dtype=float)
    h, w = np.where(np.isfinite(h), h, w), np.where(np.isfinite(w), w, h)
    scale = np.sqrt(h * w) / float(size)
    return np.asarray(spacing_mm, dtype=float) * np.where(np.isfinite(scale), scale, 1.0)


def median_cached_spacing_mm(df, size: int) -> float | None:
    """Median :func:`cached_spacing_mm` over a manifest's rows that know their ``spacing_mm`` (and ``height``,
    ``width``); None when none does."""
    from medsift.manifest import float_column

    mm = cached_spacing_mm(float_column(df, "spacing_mm"), float_column(df, "height"), float_column(df, "width"),
                           size)
    mm = mm[np.isfinite(mm) & (mm > 0)]
    return float(np.median(mm)) if len(mm) else None


def size_for_spacing(shape_hw: Sequence[int], spacing_mm: float, target_mm: float) -> tuple[int, int]:
    """Output (h, w) in pixels that gives ``target_mm`` pixels from ``spacing_mm`` pixels."""
    if not (spacing_mm > 0 and target_mm > 0):
        raise ConfigError(f"spacings must be > 0 mm; got spacing {spacing_mm!r}, target {target_mm!r}")
    f = float(spacing_mm) / float(target_mm)
    return max(1, int(round(shape_hw[0] * f))), max(1, int(round(shape_hw[1] * f)))


def resample_to_spacing(image: np.ndarray, spacing_mm: float, target_mm: float, *, is_mask: bool = False) -> np.ndarray:
    """Resample an (H, W) slice with square pixels of ``spacing_mm`` to pixels of ``target_mm``."""
    hw = size_for_spacing(np.shape(image)[-2:], spacing_mm, target_mm)
    return resize_mask(image, hw) if is_mask else resize_image(image, hw)


def resample_volume(volume: np.ndarray, spacing_zyx: Sequence[float], target_mm: float = 1.0, *,
                    is_mask: bool = False) -> np.ndarray:
    """Resample a (Z, Y, X) volume to isotropic ``target_mm`` voxels.

    Args:
        volume: (Z, Y, X) array.
        spacing_zyx: voxel size in mm along (Z, Y, X).
        target_mm: output voxel side in mm.
        is_mask: nearest neighbour (labels) instead of linear.

    Returns:
        (Z', Y', X') array with ``Z' = round(Z * spacing_z / target_mm)`` etc.; float32 for images,
        the input dtype for masks.
    """
    from scipy.ndimage import zoom

    volume = np.asarray(volume)
    if volume.ndim != 3 or len(spacing_zyx) != 3:
        raise ConfigError(f"resample_volume expects a (Z, Y, X) volume and 3 spacings; "
                          f"got shape {volume.shape}, spacing {tuple(spacing_zyx)!r}")
    if not (target_mm > 0 and all(s > 0 for s in spacing_zyx)):
        raise ConfigError(f"spacings must be > 0 mm; got {tuple(spacing_zyx)!r}, target {target_mm!r}")
    out_shape = [max(1, int(round(n * s / target_mm))) for n, s in zip(volume.shape, spacing_zyx)]
    factors = [o / n for o, n in zip(out_shape, volume.shape)]
    if is_mask:
        return zoom(volume, factors, order=0, mode="nearest", grid_mode=True).astype(volume.dtype)
    return zoom(volume.astype(np.float32), factors, order=1, mode="nearest", grid_mode=True).astype(np.float32)

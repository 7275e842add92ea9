"""Contrast enhancement (scikit-image): global histogram equalisation and CLAHE, as options.

Inputs are float (H, W) in 0..1 (a windowed channel); outputs float32 in 0..1.
"""

from __future__ import annotations

import numpy as np

from medsift.errors import ConfigError


def equalize(image: np.ndarray, *, mask: np.ndarray | None = None, nbins: int = 256) -> np.ndarray:
    """Global histogram equalisation; with ``mask`` the histogram is measured inside it only."""
    from skimage.exposure import equalize_hist

    image = _check(image)
    return equalize_hist(image, nbins=nbins, mask=mask).astype(np.float32)


def clahe(image: np.ndarray, *, clip_limit: float = 0.01, kernel_size: int | None = None,
          nbins: int = 256) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation.

    Args:
        image: (H, W) float in 0..1.
        clip_limit: 0..1, higher = more contrast.
        kernel_size: tile side in pixels (default 1/8 of the image).
    """
    from skimage.exposure import equalize_adapthist

    image = _check(image)
    if not 0 < clip_limit <= 1:
        raise ConfigError(f"clip_limit must be in (0, 1]; got {clip_limit!r}")
    return equalize_adapthist(image, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins).astype(np.float32)


def enhance(image: np.ndarray, method: str) -> np.ndarray:
    """Apply the named enhancement (``"hist_eq"`` or ``"clahe"``) to (H, W) or each channel of (C, H, W)."""
    from medsift.preprocess.config import Enhance

    try:
        kind = Enhance(method)
    except ValueError:
        raise ConfigError(f"enhance must be one of {[m.value for m in Enhance]}; got {method!r}") from None
    fn = equalize if kind is Enhance.HIST_EQ else clahe
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        return np.stack([fn(c) for c in image], axis=0)
    return fn(image)


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ConfigError(f"expected a 2D (H, W) slice in 0..1; got shape {image.shape}")
    return np.clip(image, 0.0, 1.0)

"""Post-processing of predicted lesion masks: drop small components, keep what lies inside the head.

Example:
    >>> import numpy as np
    >>> m = np.zeros((8, 8), bool); m[0, 0] = True; m[3:6, 3:6] = True
    >>> int(remove_small_components(m, min_pixels=4).sum())
    9
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from medsift.errors import ConfigError


@dataclass(frozen=True)
class PostprocessConfig:
    """How probabilities become a mask.

    Attributes:
        threshold: probability above which a pixel is lesion (0..1).
        min_pixels: connected components (8-connected, per slice) smaller than this are removed; 0 keeps all.
        inside_head: zero predictions outside the head mask of the input image.
        head_threshold: pixel value above which the (8-bit, windowed) image is head, for the head mask.
    """

    threshold: float = 0.5
    min_pixels: int = 0
    inside_head: bool = True
    head_threshold: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"threshold must be a probability in 0..1; got {self.threshold!r}")
        if int(self.min_pixels) < 0:
            raise ConfigError(f"min_pixels must be >= 0; got {self.min_pixels!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PostprocessConfig":
        known = {k: v for k, v in dict(data).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def remove_small_components(mask: np.ndarray, *, min_pixels: int) -> np.ndarray:
    """Remove 8-connected components with fewer than ``min_pixels`` pixels from a (H, W) bool mask."""
    from skimage.measure import label

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ConfigError(f"mask must be 2D (H, W); got shape {m.shape}")
    if min_pixels <= 1 or not m.any():
        return m.copy()
    lab = label(m, connectivity=2)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[lab]


def head_region(image: np.ndarray, *, threshold: float = 1.0) -> np.ndarray:
    """Head mask of a (H, W) 8-bit windowed slice (largest foreground component, holes filled)."""
    from medsift.preprocess.skull import head_mask

    return head_mask(np.asarray(image, dtype=np.float32), has_hu=False, threshold=threshold)


def postprocess(prob: np.ndarray, image: np.ndarray | None = None, *,
                config: PostprocessConfig = PostprocessConfig()) -> np.ndarray:
    """Probability map (H, W) in 0..1 -> bool mask: threshold, keep inside the head, drop small components.

    Args:
        prob: (H, W) foreground probability.
        image: (H, W) the input slice (0..255) for the head mask; required when ``config.inside_head``.
        config: thresholds and switches.
    """
    p = np.asarray(prob, dtype=np.float32)
    if p.ndim != 2:
        raise ConfigError(f"prob must be 2D (H, W); got shape {p.shape}")
    mask = p > config.threshold
    if config.inside_head and mask.any():
        if image is None:
            raise ConfigError("inside_head post-processing needs the input image; pass image= or set "
                              "inside_head=False")
        img = np.asarray(image)
        if img.shape != p.shape:
            raise ConfigError(f"image shape {img.shape} differs from prob shape {p.shape}")
        mask &= head_region(img, threshold=config.head_threshold)
    return remove_small_components(mask, min_pixels=int(config.min_pixels))

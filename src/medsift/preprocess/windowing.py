"""CT intensity windows: map Hounsfield units (HU) to 0..1 display values, and stack several as channels.

A window ``(center, width)`` maps ``center - width/2`` HU to 0 and ``center + width/2`` HU to 1, linearly,
clipping outside. Presets (HU): brain 40/80, subdural 80/200, bone 600/2800, stroke 40/40.

8-bit data (``has_hu`` False: PNG/JPG exported already windowed) carries no HU, so it cannot be re-windowed:
it passes through as ``value / 255`` and a request for several windows repeats that one channel. When the
window it was exported with is known (``window_center``/``window_width`` from a sheet or header),
:func:`display_to_hu` maps it back to approximate HU inside that window (``preprocess.rewindow_8bit``), so
slices exported with different windows get one contrast.

Example:
    >>> import numpy as np
    >>> float(window(np.float32(40.0), 40, 80))
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medsift.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """A display window in HU."""

    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0


PRESETS: dict[str, Window] = {
    "brain": Window(40.0, 80.0),
    "subdural": Window(80.0, 200.0),
    "bone": Window(600.0, 2800.0),
    "stroke": Window(40.0, 40.0),
}


def get_window(name: str) -> Window:
    """The preset called ``name``; an unknown name fails listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown window {name!r}; valid: {', '.join(sorted(PRESETS))}") from None


def window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Apply one window.

    Args:
        hu: array of HU values, any shape.
        center: window centre in HU.
        width: window width in HU (> 0).

    Returns:
        float32 array of the same shape in 0..1.
    """
    if not width > 0:
        raise ConfigError(f"window width must be > 0 HU; got {width!r}")
    low = center - width / 2.0
    out = (np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(width)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def display_to_hu(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Approximate HU of 8-bit display values (0..255) exported with window ``(center, width)``: the inverse of
    :func:`window` inside the window. Values at 0 or 255 were clipped, so they only say "<= low" / ">= high".

    Raises:
        ConfigError: the width is not a positive number of HU.
    """
    if not (np.isfinite(center) and np.isfinite(width) and width > 0):
        raise ConfigError(f"source window must have a finite centre and width > 0 HU; got {center!r}/{width!r}")
    low = np.float32(center - width / 2.0)
    return (low + np.asarray(values, dtype=np.float32) * np.float32(width / 255.0)).astype(np.float32, copy=False)


def stack_windows(image: np.ndarray, names: Sequence[str], *, has_hu: bool = True) -> np.ndarray:
    """Apply several named windows and stack them as channels.

    Args:
        image: (H, W) slice, in HU when ``has_hu`` else 8-bit values 0..255.
        names: preset names, e.g. ``("brain", "subdural", "bone")``.
        has_hu: False for 8-bit data, which passes through as ``image / 255`` repeated per name.

    Returns:
        float32 (C, H, W) in 0..1 with ``C = len(names)``.
    """
    if len(names) == 0:
        raise ConfigError("stack_windows needs at least one window name; got none")
    windows = [get_window(n) for n in names]
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ConfigError(f"stack_windows expects a 2D (H, W) slice; got shape {image.shape}")
    if not has_hu:
        one = np.clip(image / np.float32(255.0), 0.0, 1.0).astype(np.float32)
        return np.repeat(one[None], len(names), axis=0)
    return np.stack([window(image, w.center, w.width) for w in windows], axis=0)

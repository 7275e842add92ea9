"""Preprocessing configuration: one frozen dataclass, serialisable to the dict of a YAML task config.

Example:
    >>> cfg = PreprocessConfig(size=128, windows=("brain", "subdural", "bone"))
    >>> PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.channels
    3
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any, Mapping

from medsift.errors import ConfigError
from medsift.preprocess.windowing import get_window


class Normalize(str, Enum):
    """Intensity normalisation applied when a cached slice is read (the cache stores 0..1 as uint8)."""

    NONE = "none"
    MINMAX = "minmax"                    # per image, to 0..1
    ZSCORE_IMAGE = "zscore_image"        # per image and channel: (x - mean) / std
    ZSCORE_DATASET = "zscore_dataset"    # per channel with mean/std measured over the whole cache


class Enhance(str, Enum):
    """Optional contrast enhancement applied before caching."""

    HIST_EQ = "hist_eq"   # global histogram equalisation
    CLAHE = "clahe"       # contrast-limited adaptive histogram equalisation


def _enum(cls: type[Enum], value: Any, name: str) -> Enum:
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise ConfigError(f"{name} must be one of {valid}; got {value!r}") from None


@dataclass(frozen=True)
class PreprocessConfig:
    """How slices become network inputs.

    Attributes:
        size: output side in pixels; slices are resized to ``size x size`` (image linear, mask nearest).
        windows: HU window preset names, one channel each (8-bit data repeats its one channel).
        context: 2.5D neighbours on each side in the same series, ordered by ``slice_index``; edge slices
            repeat the edge. Channels are ordered neighbour-major: ``[(-c, w0), (-c, w1), ..., (+c, wK)]``.
        normalize: a :class:`Normalize` value, applied on read.
        skull_strip: zero everything outside the brain mask (:func:`medsift.preprocess.skull.brain_mask`).
        crop_head: crop each slice to the square around its head (:func:`medsift.preprocess.skull.head_square`)
            before resizing, so the pixels go to the head and not to the air around it. Boxes and masks follow;
            the cache's index keeps each slice's square (``crop_y0``, ``crop_x0``, ``crop_side``). With ``context``
            every slice of a series is cropped to one square (around all its heads), so neighbours stay aligned.
        enhance: None or an :class:`Enhance` value, applied per window channel before caching.
        rewindow_8bit: 8-bit slices (no HU) whose row gives the window they were exported with
            (``window_center``/``window_width``) are mapped back to approximate HU and windowed like HU data,
            so a set exported with mixed windows (RSNA PNGs: 36/80, 40/150, 30/80...) gets one contrast.
        export_window: ``[center, width]`` in HU that 8-bit slices were exported with when their rows do not say
            (from the dataset's documentation or an estimate from tissue grey levels). Setting it rewindows those
            rows too, so named windows (``stroke``, ``brain``) can stretch the contrast of a set stored in one wide
            window; a row's own ``window_center``/``window_width`` still wins.
    """

    size: int = 256
    windows: tuple[str, ...] = ("brain",)
    context: int = 0
    normalize: str = Normalize.NONE.value
    skull_strip: bool = False
    crop_head: bool = False
    enhance: str | None = None
    rewindow_8bit: bool = False
    export_window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 8:
            raise ConfigError(f"size must be an int >= 8 pixels; got {self.size!r}")
        windows = (self.windows,) if isinstance(self.windows, str) else tuple(self.windows)
        if not windows:
            raise ConfigError("windows must name at least one preset; got none")
        for w in windows:
            get_window(w)
        object.__setattr__(self, "windows", windows)
        if not isinstance(self.context, int) or self.context < 0:
            raise ConfigError(f"context must be an int >= 0 slices; got {self.context!r}")
        object.__setattr__(self, "normalize", _enum(Normalize, self.normalize, "normalize").value)
        if self.enhance is not None:
            object.__setattr__(self, "enhance", _enum(Enhance, self.enhance, "enhance").value)
        if not isinstance(self.crop_head, bool):
            raise ConfigError(f"crop_head must be true or false; got {self.crop_head!r}")
        if not isinstance(self.rewindow_8bit, bool):
            raise ConfigError(f"rewindow_8bit must be true or false; got {self.rewindow_8bit!r}")
        if self.export_window is not None:
            object.__setattr__(self, "export_window", _export_window(self.export_window))

    @property
    def rewindows(self) -> bool:
        """Whether 8-bit rows with a known export window are mapped back to approximate HU before windowing."""
        return self.rewindow_8bit or self.export_window is not None

    @property
    def channels(self) -> int:
        """Number of image channels: ``len(windows) * (2 * context + 1)``."""
        return len(self.windows) * (2 * self.context + 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, str, int) for YAML/JSON."""
        d = asdict(self)
        d["windows"] = list(self.windows)
        if self.export_window is not None:
            d["export_window"] = list(self.export_window)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreprocessConfig":
        """Build from a task-config mapping; unknown keys fail listing the valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown preprocess option(s) {unknown}; valid: {sorted(known)}")
        d = dict(data)
        if "windows" in d and not isinstance(d["windows"], str):
            d["windows"] = tuple(d["windows"])
        return cls(**d)

    def fingerprint(self) -> str:
        """sha256 hex of the canonical JSON of :meth:`to_dict`."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _export_window(value: Any) -> tuple[float, float]:
    """``value`` as a ``(center, width)`` pair of finite HU with width > 0, else a :class:`ConfigError`."""
    try:
        center, width = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"export_window must be [center, width] in HU; got {value!r}") from None
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise ConfigError(f"export_window needs a finite center and a width > 0 HU; got {value!r}")
    return center, width

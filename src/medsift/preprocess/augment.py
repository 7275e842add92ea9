"""Augmentation of image, mask and boxes with one shared random draw (torchvision.transforms.v2 + tv_tensors).

Geometry is torchvision's: flips, 90-degree rotations, affine (small-angle rotation, scaling, translation),
elastic deformation and crops are applied by ``torchvision.transforms.v2`` kernels to a
``tv_tensors.Image``, ``tv_tensors.Mask`` (nearest neighbour) and ``tv_tensors.BoundingBoxes`` together, so
the three stay aligned. Intensity changes (brightness/contrast/gamma, Gaussian noise) touch the image only.

Boxes rule (:func:`filter_boxes`): after the geometric ops boxes are clipped to the image; a box is dropped
when less than 25% of its (transformed, unclipped) area is still inside, or when clipping left a side under
4 px. Labels (and ``boxes_kept``, the input positions of the kept boxes) follow the kept boxes.

Random draws: torchvision samples from the global torch RNG, so each call forks it and seeds it from this
augmenter's own ``numpy.random.Generator`` (seeded with ``seed``, mixed with the DataLoader worker's seed
inside workers); the caller's global RNG state is left untouched.

Example:
    >>> aug = build_augment(task="detect", size=256, seed=0)  # doctest: +SKIP
    >>> out = aug({"image": img, "mask": mask, "boxes": boxes, "labels": labels})  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from medsift.errors import ConfigError

if TYPE_CHECKING:
    import torch

MIN_VISIBLE_FRACTION = 0.25
MIN_BOX_SIDE_PX = 4.0


class Task(str, Enum):
    CLASSIFY = "classify"
    MULTILABEL = "multilabel"
    DETECT = "detect"
    SEGMENT = "segment"


class Strength(str, Enum):
    NONE = "none"
    LIGHT = "light"
    DEFAULT = "default"
    STRONG = "strong"


@dataclass(frozen=True)
class AugmentParams:
    """Probabilities and ranges of every op (angles in degrees, translation as a fraction of the side,
    alpha/sigma of the elastic field in pixels, intensity in units of the image's range)."""

    hflip: float = 0.0
    vflip: float = 0.0
    rot90: float = 0.0
    degrees: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    elastic_p: float = 0.0
    elastic_alpha: float = 30.0
    elastic_sigma: float = 5.0
    brightness: float = 0.0
    contrast: tuple[float, float] = (1.0, 1.0)
    gamma: tuple[float, float] = (1.0, 1.0)
    noise_p: float = 0.0
    noise_sigma: float = 0.0


STRENGTHS: dict[Strength, AugmentParams] = {
    Strength.NONE: AugmentParams(),
    Strength.LIGHT: AugmentParams(hflip=0.5, degrees=5.0, translate=0.03, scale=(0.95, 1.05), brightness=0.05,
                                  contrast=(0.95, 1.05), gamma=(0.95, 1.05)),
    Strength.DEFAULT: AugmentParams(hflip=0.5, degrees=10.0, translate=0.05, scale=(0.9, 1.1), brightness=0.1,
                                    contrast=(0.9, 1.1), gamma=(0.9, 1.1), noise_p=0.3, noise_sigma=0.02),
    Strength.STRONG: AugmentParams(hflip=0.5, vflip=0.5, rot90=0.5, degrees=20.0, translate=0.1, scale=(0.8, 1.2),
                                   elastic_p=0.3, brightness=0.2, contrast=(0.8, 1.25), gamma=(0.8, 1.25),
                                   noise_p=0.5, noise_sigma=0.05),
}


# ------------------------------------------------------------------------------ deterministic twins


def adjust_intensity(image: torch.Tensor, *, brightness: float = 0.0, contrast: float = 1.0,
                     gamma: float = 1.0) -> torch.Tensor:
    """Brightness, contrast and gamma of a (C, H, W) float image, range-safe (works on z-scored data too).

    With ``lo, hi`` the image min/max and ``m`` its mean: gamma ``lo + (hi-lo) * ((x-lo)/(hi-lo))**gamma``,
    then contrast ``m + (x - m) * contrast``, then brightness ``x + brightness * (hi - lo)``.
    """
    import torch

    x = image.to(torch.float32)
    lo, hi = x.amin(), x.amax()
    span = (hi - lo).clamp_min(1e-6)
    if gamma != 1.0:
        x = lo + span * ((x - lo) / span).clamp(0, 1).pow(gamma)
    if contrast != 1.0:
        m = x.mean()
        x = m + (x - m) * contrast
    if brightness != 0.0:
        x = x + brightness * span
    return x


def filter_boxes(boxes: torch.Tensor, canvas_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip xyxy pixel boxes (N, 4) to the image and apply the keep rule.

    Returns:
        ``(clipped, keep)``: float32 (N, 4) boxes clipped to ``[0, W] x [0, H]`` and bool (N,): False when
        less than 25% of the box area is inside, or clipping left a side under 4 px.
    """
    import torch

    b = boxes.to(torch.float32).reshape(-1, 4)
    h, w = canvas_hw
    clipped = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
    side = (b[:, 2:] - b[:, :2]).clamp_min(0)
    cside = (clipped[:, 2:] - clipped[:, :2]).clamp_min(0)
    area, carea = side.prod(1), cside.prod(1)
    visible = torch.where(area > 0, carea / area.clamp_min(1e-6), torch.zeros_like(area))
    cut_small = ((cside < MIN_BOX_SIDE_PX) & (cside < side - 1e-4)).any(1)
    keep = (visible >= MIN_VISIBLE_FRACTION) & ~cut_small & (carea > 0)
    return clipped, keep


# ------------------------------------------------------------------------------ torchvision v2 ops


def _v2_ops():
    """Custom v2 transforms, defined lazily so importing this module does not import torch."""
    import torch
    from torchvision import tv_tensors as tv
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    class RandomRot90(v2.Transform):
        """Rotate by k * 90 degrees, k drawn from {1, 2, 3} (exact pixel permutation on every tv_tensor)."""

        def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
            return {"k": int(torch.randint(1, 4, ()).item())}

        def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
            return F.rotate(inpt, 90.0 * params["k"], expand=False)

    class RandomIntensity(v2.Transform):
        """Brightness/contrast/gamma drawn uniformly from ranges; images only."""

        def __init__(self, brightness: float, contrast: tuple[float, float], gamma: tuple[float, float]) -> None:
            super().__init__()
            self.brightness, self.contrast, self.gamma = brightness, contrast, gamma

        def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
            u = torch.rand(3).tolist()
            return {"brightness": (2 * u[0] - 1) * self.brightness,
                    "contrast": self.contrast[0] + u[1] * (self.contrast[1] - self.contrast[0]),
                    "gamma": self.gamma[0] + u[2] * (self.gamma[1] - self.gamma[0])}

        def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
            if isinstance(inpt, tv.Image):
                return tv.wrap(adjust_intensity(inpt.as_subclass(torch.Tensor), **params), like=inpt)
            return inpt

    class RandomLesionCrop(v2.Transform):
        """Crop ``size`` x ``size`` centred on a lesion pixel (probability ``pos_fraction``) or a background
        pixel, drawn from the ``tv_tensors.Mask``; a random centre when that class is absent."""

        def __init__(self, size: int, pos_fraction: float) -> None:
            super().__init__()
            self.size, self.pos_fraction = int(size), float(pos_fraction)

        def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
            masks = [x for x in flat_inputs if isinstance(x, tv.Mask)]
            images = [x for x in flat_inputs if isinstance(x, tv.Image)]
            h, w = (masks or images)[0].shape[-2:]
            if self.size > min(h, w):
                raise ConfigError(f"crop size {self.size} px exceeds the image {h}x{w}")
            want_pos = bool(torch.rand(()) < self.pos_fraction)
            cy, cx = int(torch.randint(0, h, ()).item()), int(torch.randint(0, w, ()).item())
            if masks:
                fg = masks[0].reshape(-1, h, w).any(0)
                pts = torch.nonzero(fg if want_pos else ~fg)
                if len(pts):
                    cy, cx = (int(v) for v in pts[int(torch.randint(0, len(pts), ()).item())])
            top = min(max(cy - self.size // 2, 0), h - self.size)
            left = min(max(cx - self.size // 2, 0), w - self.size)
            return {"top": top, "left": left}

        def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
            return F.crop(inpt, params["top"], params["left"], self.size, self.size)

    return RandomRot90, RandomIntensity, RandomLesionCrop


def build_transform(params: AugmentParams, *, size: int, crop: int | None = None,
                    pos_fraction: float = 0.5) -> Callable[[Any], Any]:
    """The torchvision v2 pipeline for ``params`` (no seeding; see :class:`Augment`).

    Order: lesion crop (optional) -> flips -> rot90 -> affine -> elastic -> resize to ``size`` (skipped when
    ``crop`` is given) -> intensity -> noise.
    """
    from torchvision.transforms import v2

    RandomRot90, RandomIntensity, RandomLesionCrop = _v2_ops()
    ops: list[Any] = []
    if crop is not None:
        ops.append(RandomLesionCrop(crop, pos_fraction))
    if params.hflip > 0:
        ops.append(v2.RandomHorizontalFlip(p=params.hflip))
    if params.vflip > 0:
        ops.append(v2.RandomVerticalFlip(p=params.vflip))
    if params.rot90 > 0:
        ops.append(v2.RandomApply([RandomRot90()], p=params.rot90))
    if params.degrees > 0 or params.translate > 0 or tuple(params.scale) != (1.0, 1.0):
        ops.append(v2.RandomAffine(degrees=params.degrees,
                                   translate=(params.translate, params.translate) if params.translate > 0 else None,
                                   scale=tuple(params.scale) if tuple(params.scale) != (1.0, 1.0) else None,
                                   interpolation=v2.InterpolationMode.BILINEAR))
    if params.elastic_p > 0:
        ops.append(v2.RandomApply([v2.ElasticTransform(alpha=params.elastic_alpha, sigma=params.elastic_sigma)],
                                  p=params.elastic_p))
    if crop is None:
        ops.append(v2.Resize((size, size), antialias=True))
    if params.brightness > 0 or tuple(params.contrast) != (1.0, 1.0) or tuple(params.gamma) != (1.0, 1.0):
        ops.append(RandomIntensity(params.brightness, tuple(params.contrast), tuple(params.gamma)))
    if params.noise_p > 0 and params.noise_sigma > 0:
        ops.append(v2.RandomApply([v2.GaussianNoise(sigma=params.noise_sigma, clip=False)], p=params.noise_p))
    return v2.Compose(ops)


class Augment:
    """Callable augmenter: ``sample dict -> sample dict`` with one random draw shared by image, mask, boxes.

    Input keys: ``image`` float tensor (C, H, W); optional ``mask`` (1, H, W) or (H, W) (any dtype),
    ``boxes`` float (N, 4) xyxy pixels, ``labels`` (N,). Other keys pass through unchanged.
    Output: same keys, plain tensors; ``boxes``/``labels`` filtered by the boxes rule; ``boxes_kept`` (int64
    positions of the kept input boxes) added when boxes were given.
    """

    def __init__(self, transform: Callable[[Any], Any], *, seed: int | None = None) -> None:
        self.transform = transform
        self.seed = seed
        self._tag: Any = object()
        self._rng: np.random.Generator | None = None

    def set_random_state(self, seed: int | None) -> "Augment":
        """Reseed (MONAI-style); returns self."""
        self.seed, self._tag = seed, object()
        return self

    def _generator(self) -> np.random.Generator:
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        tag = None if info is None else (info.id, info.seed)
        if self._rng is None or tag != self._tag:
            entropy = ([] if self.seed is None else [int(self.seed)]) + ([] if info is None else [int(info.seed)])
            self._rng = np.random.default_rng(entropy or None)
            self._tag = tag
        return self._rng

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        import torch
        from torchvision import tv_tensors as tv

        if "image" not in sample:
            raise ConfigError(f"augment sample needs an 'image' (C, H, W) tensor; got keys {sorted(sample)}")
        image = torch.as_tensor(sample["image"])
        if image.ndim != 3 or not image.is_floating_point():
            raise ConfigError(f"augment 'image' must be a float (C, H, W) tensor; got {tuple(image.shape)} "
                              f"{image.dtype}")
        h, w = image.shape[-2:]
        data: dict[str, Any] = dict(sample)
        data["image"] = tv.Image(image)
        mask_dtype = mask_2d = None
        if sample.get("mask") is not None:
            mask = torch.as_tensor(sample["mask"])
            mask_2d = mask.ndim == 2
            mask = mask[None] if mask_2d else mask
            if tuple(mask.shape[-2:]) != (h, w):
                raise ConfigError(f"mask shape {tuple(mask.shape)} does not match image (H, W) {(h, w)}")
            mask_dtype = mask.dtype
            data["mask"] = tv.Mask(mask.to(torch.uint8) if mask.dtype == torch.bool else mask)
        has_boxes = sample.get("boxes") is not None
        if has_boxes:
            boxes = torch.as_tensor(sample["boxes"], dtype=torch.float32).reshape(-1, 4)
            data["boxes"] = tv.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w), clamping_mode=None)
            n_in = len(boxes)
        seed = int(self._generator().integers(0, 2**63 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = self.transform(data)
        result = dict(out)
        result["image"] = out["image"].as_subclass(torch.Tensor)
        if mask_dtype is not None:
            m = out["mask"].as_subclass(torch.Tensor).to(mask_dtype)
            result["mask"] = m[0] if mask_2d else m
        if has_boxes:
            ob = out["boxes"]
            clipped, keep = filter_boxes(ob.as_subclass(torch.Tensor), tuple(ob.canvas_size))
            result["boxes"] = clipped[keep]
            result["boxes_kept"] = torch.arange(n_in)[keep]
            if sample.get("labels") is not None:
                result["labels"] = torch.as_tensor(sample["labels"])[keep]
        return result


def build_augment(*, task: str, size: int, strength: str = "default", seed: int | None = None,
                  crop: int | None = None, pos_fraction: float = 0.5, **overrides: Any) -> Augment:
    """Build the augmenter for a task.

    Args:
        task: classify | multilabel | detect | segment.
        size: output side in pixels (input is resized to ``size x size`` after the geometric ops).
        strength: none | light | default | strong (see ``STRENGTHS``).
        seed: seed of the augmenter's generator (None = fresh entropy).
        crop: segment only: output ``crop x crop`` patches centred on lesion pixels with probability
            ``pos_fraction`` and on background otherwise (instead of resizing).
        pos_fraction: share of crops around lesions (0..1).
        **overrides: any :class:`AugmentParams` field, e.g. ``elastic_p=0``.

    Returns:
        An :class:`Augment` callable.
    """
    try:
        kind = Task(task)
    except ValueError:
        raise ConfigError(f"task must be one of {[t.value for t in Task]}; got {task!r}") from None
    try:
        params = STRENGTHS[Strength(strength)]
    except ValueError:
        raise ConfigError(f"strength must be one of {[s.value for s in Strength]}; got {strength!r}") from None
    valid = {f.name for f in fields(AugmentParams)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"unknown augment option(s) {unknown}; valid: {sorted(valid)}")
    params = replace(params, **overrides)
    if crop is not None and kind is not Task.SEGMENT:
        raise ConfigError(f"crop= (lesion-centred patches) is for task 'segment'; got task {task!r}")
    if not 0 <= pos_fraction <= 1:
        raise ConfigError(f"pos_fraction must be in [0, 1]; got {pos_fraction!r}")
    if int(size) < 8:
        raise ConfigError(f"size must be >= 8 pixels; got {size!r}")
    return Augment(build_transform(params, size=int(size), crop=crop, pos_fraction=pos_fraction), seed=seed)


def as_sample(item: Mapping[str, Any]) -> dict[str, Any]:
    """A :class:`~medsift.preprocess.cache.SliceCache` item (numpy) as an augment sample (torch tensors):
    ``image`` float32 (C, S, S), ``mask`` uint8 (1, S, S), ``boxes`` float32 (N, 4), ``labels`` int64 (N,)
    (all boxes labelled 1), ``image_id``."""
    import torch

    boxes = torch.as_tensor(np.asarray(item["boxes"], dtype=np.float32)).reshape(-1, 4)
    return {"image": torch.as_tensor(np.asarray(item["image"], dtype=np.float32)),
            "mask": torch.as_tensor(np.asarray(item["mask"], dtype=np.uint8))[None],
            "boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64),
            "image_id": item.get("image_id")}

"""The ``segment`` task: binary lesion masks (e.g. perihematomal edema) from cached 2D / 2.5D slices.

Design, for lesions that cover well under 1% of a slice:

* **Full resolution, cropped.** Training sees ``crop x crop`` windows of the full-resolution slice (no
  downscaling, thin rims survive). A crop of a slice with lesion is centred on a random lesion pixel with
  probability ``positive_fraction`` (lesion-aware sampling), otherwise it lands anywhere inside the head.
  :meth:`SegmentTask.sample_weights` also lets the balanced sampler draw lesion slices half of the time.
* **Whole-slice inference** on the head's bounding box (the air around the head is skipped), or a MONAI
  sliding window (``roi``); optional left-right flip test-time augmentation (``tta``).
* **2.5D** comes from the cache: ``preprocess.context = k`` stacks ``k`` neighbours on each side of the same
  series as channels (edge slices repeat; see :mod:`medsift.preprocess.stack`).
* **Post-processing** (:mod:`medsift.tasks.seg_postprocess`): threshold, inside the head, small components
  removed.

Random operations draw their parameters (:func:`sample_crop`) from a ``numpy.random.Generator`` seeded with
the sampler's per-sample seed, then call the deterministic twin (:func:`apply_crop`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from medsift.errors import ConfigError
from medsift.manifest import float_column
from medsift.tasks.base import Task
from medsift.tasks.seg_models import DEFAULT_LOSS, DEFAULT_MODEL, SIZE_MULTIPLE, SEG_LOSSES, SEG_MODELS
from medsift.tasks.seg_postprocess import PostprocessConfig

#: uint8 value above which a pixel belongs to the head (8-bit, windowed)
HEAD_THRESHOLD = 1


@dataclass(frozen=True)
class SegmentOptions:
    """Settings of the segment task (saved with the run as ``segment.json``).

    Attributes:
        model: a name in :data:`medsift.tasks.seg_models.SEG_MODELS`.
        loss: a name in :data:`medsift.tasks.seg_models.SEG_LOSSES`.
        crop: side (pixels, full resolution) of training crops; 0 trains on whole slices.
        positive_fraction: probability that a crop of a slice with lesion is centred on the lesion.
        lesion_slice_fraction: share of lesion slices drawn by the balanced sampler (``sampler=balanced``).
        roi: sliding-window side for inference (0 = the whole head box in one pass).
        head_crop: run inference on the head's bounding box only.
        tta: average with the left-right flipped prediction.
        postprocess: threshold / head mask / minimum component size.
        min_lesion_pixels: a slice is called positive (slice classification) when its post-processed
            prediction holds at least this many pixels.
        gamma: intensity augmentation strength (gamma = exp(U(-g, g))); 0 disables it.
        rotate: training crops are rotated by U(-rotate, rotate) degrees (0 disables it).
        scale: training crops are zoomed by a factor in [1 / (1 + scale), 1 + scale] (0 disables it). Rotation and
            zoom warp the batch of crops and masks together in the collate (one ``grid_sample``, nearest for
            masks), :meth:`medsift.preprocess.batch_augment.BatchAugment.warp_pair`.
    """

    model: str = DEFAULT_MODEL
    loss: str = DEFAULT_LOSS
    crop: int = 128
    positive_fraction: float = 0.8
    lesion_slice_fraction: float = 0.5
    roi: int = 0
    head_crop: bool = True
    tta: bool = False
    postprocess: PostprocessConfig = field(default_factory=lambda: PostprocessConfig(min_pixels=10))
    min_lesion_pixels: int = 20
    gamma: float = 0.2
    rotate: float = 15.0
    scale: float = 0.15

    def __post_init__(self) -> None:
        SEG_MODELS.get(self.model)
        SEG_LOSSES.get(self.loss)
        if isinstance(self.postprocess, Mapping):
            object.__setattr__(self, "postprocess", PostprocessConfig.from_dict(self.postprocess))
        for name in ("crop", "roi"):
            value = int(getattr(self, name))
            if value < 0 or value % SIZE_MULTIPLE:
                raise ConfigError(f"{name} must be 0 or a positive multiple of {SIZE_MULTIPLE} pixels; got {value!r}")
        for name in ("positive_fraction", "lesion_slice_fraction"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1]; got {getattr(self, name)!r}")
        if not 0.0 <= float(self.rotate) <= 180.0 or not 0.0 <= float(self.scale) < 1.0:
            raise ConfigError(f"rotate must be in [0, 180] degrees and scale in [0, 1); got {self.rotate!r}, {self.scale!r}")
        if self.min_lesion_pixels < 1:
            raise ConfigError(f"min_lesion_pixels must be >= 1; got {self.min_lesion_pixels!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SegmentOptions":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown segment option(s) {unknown}; valid: {sorted(known)}")
        return cls(**dict(data))


# ------------------------------------------------------------------------------------------- sampling


def head_box(image: np.ndarray, *, threshold: int = HEAD_THRESHOLD) -> tuple[int, int, int, int]:
    """Bounding box ``(y0, y1, x0, x1)`` (end exclusive) of pixels above ``threshold`` in any channel of a
    uint8 (C, H, W) or (H, W) slice; the whole slice when nothing is above it."""
    from medsift.formats.masks import mask_bbox

    img = np.asarray(image)
    fg = (img.max(axis=0) if img.ndim == 3 else img) > threshold
    box = mask_bbox(fg)
    if box is None:
        return 0, fg.shape[0], 0, fg.shape[1]
    x0, y0, x1, y1 = box
    return y0, y1, x0, x1


@dataclass(frozen=True)
class CropParams:
    """Parameters of one training crop: origin (pixels), side, left-right flip, gamma."""

    y0: int
    x0: int
    size: int
    flip: bool
    gamma: float


def sample_crop(shape: Sequence[int], *, size: int, lesion: np.ndarray | None, box: tuple[int, int, int, int],
                rng: np.random.Generator, positive_fraction: float = 0.8, gamma: float = 0.2) -> CropParams:
    """Draw the parameters of one training crop.

    Args:
        shape: ``(H, W)`` of the slice.
        size: crop side in pixels (0 or >= the slice = whole slice).
        lesion: (K,) flat indices of lesion pixels, or None / empty.
        box: head bounding box ``(y0, y1, x0, x1)`` where background crops are centred.
        rng: the sample's generator.
        positive_fraction: probability of centring on a lesion pixel when there is one.
        gamma: intensity augmentation strength.
    """
    h, w = int(shape[0]), int(shape[1])
    flip = bool(rng.random() < 0.5)
    g = float(np.exp(rng.uniform(-gamma, gamma))) if gamma > 0 else 1.0
    if size <= 0 or (size >= h and size >= w):
        return CropParams(0, 0, 0, flip, g)
    if lesion is not None and len(lesion) and rng.random() < positive_fraction:
        cy, cx = divmod(int(lesion[rng.integers(len(lesion))]), w)
        jitter = size // 4
        cy += int(rng.integers(-jitter, jitter + 1))
        cx += int(rng.integers(-jitter, jitter + 1))
    else:
        y0, y1, x0, x1 = box
        cy, cx = int(rng.integers(y0, max(y1, y0 + 1))), int(rng.integers(x0, max(x1, x0 + 1)))
    y = int(np.clip(cy - size // 2, 0, max(h - size, 0)))
    x = int(np.clip(cx - size // 2, 0, max(w - size, 0)))
    return CropParams(y, x, size, flip, g)


def apply_crop(image: np.ndarray, mask: np.ndarray, params: CropParams) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic twin of :func:`sample_crop`: crop (C, H, W) uint8 image and (H, W) mask, flip, gamma.

    Returns:
        float32 (C, s, s) image in 0..1 and float32 (1, s, s) mask (0/1); ``s = size`` or the whole slice.
        A crop larger than the slice is zero-padded.
    """
    img = np.asarray(image)
    msk = np.asarray(mask)
    if params.size > 0:
        s = params.size
        img = img[:, params.y0:params.y0 + s, params.x0:params.x0 + s]
        msk = msk[params.y0:params.y0 + s, params.x0:params.x0 + s]
        ph, pw = s - img.shape[1], s - img.shape[2]
        if ph or pw:
            img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
            msk = np.pad(msk, ((0, ph), (0, pw)))
    if params.flip:
        img, msk = img[..., ::-1], msk[..., ::-1]
    x = img.astype(np.float32) * np.float32(1.0 / 255.0)
    if params.gamma != 1.0:
        x = np.power(x, np.float32(params.gamma))
    return np.ascontiguousarray(x), np.ascontiguousarray((msk > 0)[None].astype(np.float32))


# ------------------------------------------------------------------------------------------- datasets


class SegmentDataset:
    """Map-style dataset over cached slices, looked up with ``(index, sample_seed)`` (or an int).

    Training (``train=True``) yields random crops (:func:`sample_crop`); evaluation yields whole slices.
    Items: ``image`` float32 tensor (C, h, w) in 0..1, ``mask`` float32 (1, h, w), ``index`` (position in
    this dataset) and ``box`` int64 (4,) head bounding box (whole slices only).

    Args:
        images: uint8 (M, C, H, W) array or memmap (the cache's ``images``).
        masks: uint8 (M, H, W) 0/1.
        positions: (N,) rows of ``images`` in this dataset, in manifest order.
        options: crop size, sampling and augmentation.
        train: crops + augmentation when True.
        image_ids, patients, slice_index: (N,) identifiers kept for evaluation.
    """

    def __init__(self, images, masks, positions: Sequence[int], *, options: SegmentOptions = SegmentOptions(),
                 train: bool = False, image_ids: Sequence[str] = (), patients: Sequence[str] = (),
                 slice_index: Sequence[int] = ()) -> None:
        self.images, self.masks = images, masks
        self.positions = np.asarray(positions, dtype=np.int64)
        self.options, self.train = options, train
        self.image_ids = np.asarray(image_ids, dtype=object)
        self.patients = np.asarray(patients, dtype=object)
        self.slice_index = np.asarray(slice_index)
        self._lesion: dict[int, np.ndarray] = {}
        self._box: dict[int, tuple[int, int, int, int]] = {}

    def __len__(self) -> int:
        return int(len(self.positions))

    def lesion_pixels(self, index: int) -> np.ndarray:
        """Flat indices of the lesion pixels of item ``index`` (memoised)."""
        if index not in self._lesion:
            self._lesion[index] = np.flatnonzero(np.asarray(self.masks[self.positions[index]]).ravel())
        return self._lesion[index]

    def box(self, index: int) -> tuple[int, int, int, int]:
        """Head bounding box of item ``index`` (memoised)."""
        if index not in self._box:
            self._box[index] = head_box(self.images[self.positions[index]])
        return self._box[index]

    def has_lesion(self) -> np.ndarray:
        """(N,) bool: the slice's ground truth holds a lesion (memoised)."""
        if getattr(self, "_has_lesion", None) is None:
            self._has_lesion = np.asarray([np.asarray(self.masks[p]).any() for p in self.positions], dtype=bool)
        return self._has_lesion

    def __getitem__(self, item) -> dict[str, Any]:
        import torch

        index, seed = item if isinstance(item, tuple) else (item, 0)
        index = int(index)
        pos = self.positions[index]
        image, mask = self.images[pos], self.masks[pos]
        if self.train:
            rng = np.random.default_rng(int(seed))
            params = sample_crop(np.shape(mask), size=self.options.crop, lesion=self.lesion_pixels(index),
                                 box=self.box(index), rng=rng, positive_fraction=self.options.positive_fraction,
                                 gamma=self.options.gamma)
            x, y = apply_crop(image, mask, params)
            return {"image": torch.from_numpy(x), "mask": torch.from_numpy(y), "index": index, "seed": int(seed)}
        x, y = apply_crop(image, mask, CropParams(0, 0, 0, False, 1.0))
        return {"image": torch.from_numpy(x), "mask": torch.from_numpy(y), "index": index,
                "box": torch.as_tensor(self.box(index), dtype=torch.long)}


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of :class:`SegmentDataset` into a batch dict (``index`` as a long tensor)."""
    import torch

    out = {"image": torch.stack([s["image"] for s in samples]), "mask": torch.stack([s["mask"] for s in samples]),
           "index": torch.as_tensor([s["index"] for s in samples], dtype=torch.long)}
    if "box" in samples[0]:
        out["box"] = torch.stack([s["box"] for s in samples])
    return out


# ------------------------------------------------------------------------------------------- inference


def _round_box(box: Sequence[int], h: int, w: int, multiple: int) -> tuple[int, int, int, int]:
    """Grow ``(y0, y1, x0, x1)`` to sides that are multiples of ``multiple``, kept inside (h, w) if possible."""
    y0, y1, x0, x1 = (int(v) for v in box)

    def grow(a: int, b: int, n: int) -> tuple[int, int]:
        side = min(int(math.ceil(max(b - a, 1) / multiple) * multiple), n - n % multiple or n)
        a = max(0, min(a - (side - (b - a)) // 2, n - side))
        return a, a + side

    y0, y1 = grow(y0, y1, h)
    x0, x1 = grow(x0, x1, w)
    return y0, y1, x0, x1


def _forward_padded(model, x):
    """Run ``model`` on (B, C, h, w), zero-padding h and w up to multiples of 16; logits of the input size."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % SIZE_MULTIPLE, (-w) % SIZE_MULTIPLE
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return model(x)[..., :h, :w]


def predict_logits(model, images, *, boxes=None, options: SegmentOptions = SegmentOptions()):
    """Logits (B, 1, H, W) for a batch of whole slices (B, C, H, W) float 0..1.

    With ``boxes`` (B, 4) head boxes and ``options.head_crop``, the network runs on the union box (grown to
    multiples of 16) and everything outside gets a logit of -20. ``options.roi`` > 0 uses MONAI's sliding
    window (Gaussian blending, overlap 0.25); ``options.tta`` averages with the left-right flipped input.
    """
    import torch

    b, _, h, w = images.shape
    region = (0, h, 0, w)
    if boxes is not None and options.head_crop:
        bx = torch.as_tensor(boxes).reshape(b, 4)
        union = (int(bx[:, 0].min()), int(bx[:, 1].max()), int(bx[:, 2].min()), int(bx[:, 3].max()))
        region = _round_box(union, h, w, SIZE_MULTIPLE)
    y0, y1, x0, x1 = region
    x = images[..., y0:y1, x0:x1]

    def run(inp):
        if options.roi > 0:
            from monai.inferers import sliding_window_inference

            return sliding_window_inference(inp, roi_size=(options.roi, options.roi), sw_batch_size=4,
                                            predictor=lambda t: _forward_padded(model, t), overlap=0.25,
                                            mode="gaussian")
        return _forward_padded(model, inp)

    logits = run(x)
    if options.tta:
        logits = (logits + torch.flip(run(torch.flip(x, dims=(-1,))), dims=(-1,))) / 2
    if region == (0, h, 0, w):
        return logits
    full = torch.full((b, 1, h, w), -20.0, dtype=logits.dtype, device=logits.device)
    full[..., y0:y1, x0:x1] = logits
    return full


def probs_to_uint8(probs) -> np.ndarray:
    """Probabilities (B, 1, H, W) tensor -> uint8 (B, H, W) ``round(255 p)`` (4x smaller to keep)."""
    import torch

    return (probs[:, 0].float().clamp(0, 1) * 255).round().to(dtype=torch.uint8).cpu().numpy()


def slice_scores(probs_u8: np.ndarray) -> np.ndarray:
    """(N,) slice-level lesion score: the highest pixel probability of each (N, H, W) uint8 map, 0..1."""
    return np.asarray(probs_u8).reshape(len(probs_u8), -1).max(axis=1).astype(np.float32) / 255.0


# ------------------------------------------------------------------------------------------- the task

#: TrainConfig.loss (label-task losses) -> segmentation loss, used when no segment option names one
_LOSS_FROM_CONFIG = {"bce": "dice_bce", "weighted": "dice_bce", "focal": "dice_focal"}


def segment_options(config) -> SegmentOptions:
    """The :class:`SegmentOptions` of a ``TrainConfig``.

    Read from ``config.segment`` (a mapping) when the config has one; otherwise ``model.arch`` names the
    network when it is a segmentation model, and ``loss`` maps bce/weighted -> dice_bce, focal -> dice_focal.
    """
    raw = dict(getattr(config, "segment", None) or {})
    arch = getattr(getattr(config, "model", None), "arch", None)
    if "model" not in raw and arch in SEG_MODELS:
        raw["model"] = arch
    if "loss" not in raw and getattr(config, "loss", None) in _LOSS_FROM_CONFIG:
        raw["loss"] = _LOSS_FROM_CONFIG[config.loss]
    return SegmentOptions.from_dict(raw)


class SegmentTask(Task):
    """Binary lesion segmentation for the engine (:func:`medsift.engine.loop.fit`).

    ``predict_batch`` returns ``{"prob": uint8 (B, H, W)}`` (probability x 255); ``evaluate`` post-processes,
    scores three ways with patient-bootstrap intervals, and writes plots, overlays and exported masks.
    """

    name = "segment"
    headline_metric = "dice_global"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.options = segment_options(config)

    # ---------------------------------------------------------------- data
    def build_model(self, config):
        from medsift.tasks.seg_models import build_model

        return build_model(self.options.model, in_channels=config.preprocess_config().channels,
                           dropout=float(getattr(config.model, "dropout", 0.0)))

    def dataset(self, df, cache, *, augment: bool) -> SegmentDataset:
        """A :class:`SegmentDataset` over ``df``'s rows whose slice has a mask in the cache."""
        pos = cache.rows(df)
        has_mask = cache.index["has_mask"].to_numpy(dtype=bool)[pos] if "has_mask" in cache.index else \
            np.ones(len(pos), bool)
        df, pos = df[has_mask], pos[has_mask]
        ds = SegmentDataset(cache.images, cache.masks, pos, options=self.options, train=augment,
                            image_ids=df["image_id"].astype(str).to_numpy(),
                            patients=df["patient_id"].astype(str).to_numpy(),
                            slice_index=df["slice_index"].astype("Float64").fillna(-1).to_numpy(dtype=float)
                            if "slice_index" in df.columns else np.arange(len(df)))
        from medsift.preprocess.resample import cached_spacing_mm

        # metrics are measured on the cache's S x S pixels, not the source's: those of the head square when cropped
        height, width = (float_column(cache.index, c)[pos] if c in cache.index else np.full(len(pos), np.nan)
                         for c in ("orig_height", "orig_width"))
        squares = cache.head_squares(pos)
        # exported masks go back to each file's pixels (evaluate's predictions/), with the source spacing
        ds.file_frames = [((h, w), sq) for h, w, sq in zip(height, width, squares)]
        ds.source_spacing_mm = float_column(df, "spacing_mm")
        side = np.array([np.nan if sq is None else sq[2] for sq in squares], dtype=float)
        height, width = np.where(np.isfinite(side), side, height), np.where(np.isfinite(side), side, width)
        ds.spacing_mm = cached_spacing_mm(ds.source_spacing_mm, height, width, int(cache.images.shape[-1]))
        ds.slice_thickness_mm = float_column(df, "slice_thickness_mm")
        pre = getattr(cache, "config", None)
        ds.center_channel = int(pre.context) * len(pre.windows) if pre is not None else 0
        return ds

    def build_datasets(self, df, cache, config) -> dict[str, Any]:
        out = self.split_datasets(df, cache, drop_empty=True, missing="no training rows with masks")
        if not out["train"].has_lesion().any():
            raise ConfigError("the training masks hold no lesion pixel; nothing to learn")
        return out

    def collate(self, samples: list[dict]) -> dict[str, Any]:
        """Stack samples; training batches (items with a ``seed``) get the random rotation / zoom of the options."""
        batch = collate(samples)
        if "seed" in samples[0] and (self.options.rotate or self.options.scale):
            from medsift.preprocess.augment import AugmentParams
            from medsift.preprocess.batch_augment import BatchAugment
            from medsift.tasks.data import batch_seed

            s = float(self.options.scale)
            warp = BatchAugment(params=AugmentParams(degrees=float(self.options.rotate), scale=(1 / (1 + s), 1 + s)))
            batch["image"], batch["mask"] = warp.warp_pair(batch["image"], batch["mask"],
                                                           batch_seed([it["seed"] for it in samples]))
        return batch

    def sample_weights(self, dataset) -> np.ndarray:
        """Lesion slices get ``lesion_slice_fraction`` of the draws, the others the rest."""
        pos = dataset.has_lesion()
        f = self.options.lesion_slice_fraction
        n_pos, n_neg = max(int(pos.sum()), 1), max(int((~pos).sum()), 1)
        return np.where(pos, f / n_pos, (1 - f) / n_neg)

    def state(self) -> dict[str, Any]:
        return {"segment": self.options.to_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        if "segment" in state:
            self.options = SegmentOptions.from_dict(state["segment"])

    # ---------------------------------------------------------------- training
    def loss(self, batch: dict[str, Any], output):
        if not hasattr(self, "_loss_fn"):
            from medsift.tasks.seg_models import build_loss

            self._loss_fn = build_loss(self.options.loss)
        return self._loss_fn(output.float(), batch["mask"].float())

    def predict_batch(self, model, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        import torch

        logits = predict_logits(model, batch["image"], boxes=batch.get("box"), options=self.options)
        return {"prob": probs_to_uint8(torch.sigmoid(logits.float()))}

    # ---------------------------------------------------------------- evaluation
    @staticmethod
    def aligned(predictions: dict[str, np.ndarray], dataset) -> tuple[np.ndarray, np.ndarray]:
        """(dataset positions, uint8 probability maps) in dataset order."""
        order = np.argsort(predictions["index"], kind="stable")
        return predictions["index"][order], predictions["prob"][order]

    def val_metrics(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, float]:
        """Global and per-image Dice at the 0.5 threshold (no post-processing), and the slice-level ROC AUC of
        the maximum pixel probability (``auc``)."""
        from medsift.metrics.classification import roc_auc
        from medsift.metrics.segmentation import Counts, scores_from_counts

        idx, probs = self.aligned(predictions, dataset)
        total, dices, has = Counts(0, 0, 0, 0), [], []
        cut = int(round(self.options.postprocess.threshold * 255))
        for i, prob in zip(idx, probs):
            t = np.asarray(dataset.masks[dataset.positions[i]]) > 0
            p = prob > cut
            tp = int(np.count_nonzero(p & t))
            c = Counts(tp, int(p.sum()) - tp, int(t.sum()) - tp, 0)
            c = Counts(c.tp, c.fp, c.fn, int(t.size) - c.tp - c.fp - c.fn)
            total = total + c
            has.append(bool(t.any()))
            if t.any():
                dices.append(scores_from_counts(c)["dice"])
        g = scores_from_counts(total)
        return {"dice_global": g["dice"], "sensitivity_global": g["sensitivity"], "precision_global": g["precision"],
                "dice_per_image": float(np.mean(dices)) if dices else math.nan,
                "auc": roc_auc(np.asarray(has, int), slice_scores(probs))}

    def calibrate(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, Any]:
        """The probability threshold (0.1 .. 0.9) maximising validation global Dice."""
        idx, probs = self.aligned(predictions, dataset)
        truth = np.stack([np.asarray(dataset.masks[dataset.positions[i]]) > 0 for i in idx])
        best = (self.options.postprocess.threshold, -1.0)
        for thr in np.round(np.arange(0.1, 0.91, 0.05), 2):
            p = probs > int(round(thr * 255))
            tp = int(np.count_nonzero(p & truth))
            den = int(p.sum()) + int(truth.sum())
            d = 2 * tp / den if den else 1.0
            if d > best[1]:
                best = (float(thr), d)
        return {"threshold": best[0], "val_dice_global": best[1]}

    def postprocess_config(self, calibration: dict[str, Any] | None) -> PostprocessConfig:
        """The post-processing of this task with the calibrated threshold when there is one."""
        pp = self.options.postprocess
        if calibration and "threshold" in calibration:
            pp = PostprocessConfig(**{**pp.to_dict(), "threshold": float(calibration["threshold"])})
        return pp

    def masks_from_probs(self, probs: np.ndarray, images: Sequence[np.ndarray], *,
                         calibration: dict[str, Any] | None = None) -> list[np.ndarray]:
        """Post-processed bool masks from uint8 (N, H, W) probabilities and the (H, W) uint8 input slices
        (the centre channel, for the head mask)."""
        from medsift.tasks.seg_postprocess import postprocess

        cfg = self.postprocess_config(calibration)
        return [postprocess(np.asarray(p, np.float32) / 255.0, np.asarray(img), config=cfg)
                for p, img in zip(probs, images)]

    def evaluate(self, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                 out_dir=None) -> dict[str, float]:
        """Flat metrics with patient-bootstrap intervals; with ``out_dir``: per-image/per-patient CSVs, overlays
        (best/median/worst), confusion matrix and Bland-Altman plots, exported masks (PNG, NIfTI, COCO RLE)."""
        from medsift.tasks.seg_evaluate import evaluate_segmentation

        return evaluate_segmentation(self, predictions, dataset, calibration=calibration, out_dir=out_dir,
                                     n_boot=int(getattr(self.config, "bootstrap", 1000)))

"""The ``detect`` task: lesion boxes per slice (one class), scored per box (COCO mAP, FROC) and per image.

Design for CT slices with one class and mostly one lesion per slice:

* **Backends** by name (:data:`medsift.tasks.det_models.DET_MODELS`): ``centernet`` (default, a light
  centre-heatmap detector that learns in minutes on a CPU), ``seg2box`` (boxes from a fast segmentation of
  box-filled masks) and the torchvision detectors ``fcos`` / ``retinanet`` / ``fasterrcnn`` (ResNet18-FPN from
  scratch; RetinaNet / Faster R-CNN anchors fitted to the training boxes, printed with the box statistics).
* **Data**: cached slices (``S x S``) and their boxes in that frame (``SliceCache.boxes``); training moves
  image and boxes together with :func:`medsift.preprocess.augment.build_augment` (``task="detect"``), seeded per
  sample by the engine's sampler. Slices without boxes stay in every split: they are where false alarms
  happen.
* **Outputs**: ``predict_batch`` gives ``{"det": float32 (B, k, 5)}`` rows ``x1, y1, x2, y2, score`` in the
  ``S x S`` frame (unused rows -1); evaluation maps them to the original pixels of each image.
* **Image level**: a slice is called "hemorrhage" when its best box scores at least the threshold chosen on
  validation (:meth:`DetectTask.calibrate`: the highest threshold with validation image recall >=
  ``target_sensitivity``, 0.95 by default).

Options come from the run config: ``model.arch`` names the backend when it is one (otherwise ``centernet``),
``model.width`` its width; a ``detect`` mapping on the config (when the config has one) sets any
:class:`DetectOptions` field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from medsift.errors import ConfigError
from medsift.tasks.base import Task
from medsift.tasks.det_models import DEFAULT_DET_MODEL, DET_MODELS


@dataclass(frozen=True)
class DetectOptions:
    """Settings of the detect task (saved in ``model.json`` under ``state.detect``).

    Attributes:
        model: a name in :data:`medsift.tasks.det_models.DET_MODELS`.
        width: base channel width (centernet stem; torchvision FPN = 4 x width).
        max_dets: boxes kept per image.
        score_floor: boxes scoring below this are dropped before evaluation and export.
        draw_per_case: drawings written per outcome (TP/FP/FN hits and misses) by ``evaluate``.
        anchors: anchor sizes/aspect ratios fitted on the training boxes (retinanet/fasterrcnn; filled in by
            ``build_datasets``).
    """

    model: str = DEFAULT_DET_MODEL
    width: int = 16
    max_dets: int = 20
    score_floor: float = 0.001
    draw_per_case: int = 6
    anchors: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        DET_MODELS.get(self.model)
        if int(self.width) < 4:
            raise ConfigError(f"detect width must be >= 4 channels; got {self.width!r}")
        if int(self.max_dets) < 1:
            raise ConfigError(f"max_dets must be >= 1; got {self.max_dets!r}")
        if not 0.0 <= float(self.score_floor) < 1.0:
            raise ConfigError(f"score_floor must be in [0, 1); got {self.score_floor!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.anchors is not None:
            d["anchors"] = {"sizes": [list(s) for s in self.anchors["sizes"]],
                            "aspect_ratios": list(self.anchors["aspect_ratios"])}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DetectOptions":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown detect option(s) {unknown}; valid: {sorted(known)}")
        return cls(**dict(data))


def detect_options(config) -> DetectOptions:
    """The :class:`DetectOptions` of a ``TrainConfig`` (see the module docstring)."""
    raw = dict(getattr(config, "detect", None) or {})
    model = getattr(config, "model", None)
    arch = getattr(model, "arch", None)
    if "model" not in raw and arch in DET_MODELS:
        raw["model"] = arch
        if "width" not in raw and getattr(model, "width", None):
            raw["width"] = int(model.width)
    return DetectOptions.from_dict(raw)


# ------------------------------------------------------------------------------------------- data


class DetectDataset:
    """Map-style dataset of cached slices and their boxes, looked up with ``(index, sample_seed)``.

    Items: ``image`` float32 tensor (C, S, S) in 0..1, ``boxes`` float32 (n, 4) xyxy in the S x S frame,
    ``index``.

    Args:
        images: uint8 (M, C, S, S) array or memmap (the cache's ``images``).
        positions: (N,) rows of ``images`` in this dataset.
        boxes: N float32 (n_i, 4) arrays in the S x S frame.
        augment: ``seed -> augmenter`` (boxes move with the image) or None.
        image_ids, patients: (N,) identifiers.
        gt_boxes: N (n_i, 4) arrays in original pixels (default: ``boxes`` mapped by ``frame``).
        frame: (N, 4) ``(sx, sy, ox, oy)`` from the S x S frame to each file's pixels
            (:meth:`~medsift.preprocess.cache.SliceCache.file_frames`; default: the identity).
    """

    def __init__(self, images, positions: Sequence[int], boxes: Sequence[np.ndarray], *,
                 augment: Callable[[int], Callable[[dict], dict]] | None = None, image_ids: Sequence[str] = (),
                 patients: Sequence[str] = (), gt_boxes: Sequence[np.ndarray] | None = None,
                 frame: np.ndarray | None = None) -> None:
        self.images = images
        self.positions = np.asarray(positions, dtype=np.int64)
        self.boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
        if len(self.boxes) != len(self.positions):
            raise ConfigError(f"{len(self.boxes)} box lists for {len(self.positions)} images")
        self.augment = augment
        n = len(self.positions)
        self.image_ids = np.asarray(image_ids if len(image_ids) else [str(i) for i in range(n)], dtype=object)
        self.patients = np.asarray(patients if len(patients) else self.image_ids, dtype=object)
        self.frame = (np.tile([1.0, 1.0, 0.0, 0.0], (n, 1)) if frame is None
                      else np.asarray(frame, np.float64).reshape(n, 4))
        self.gt_boxes = ([boxes_to_file(b, f) for b, f in zip(self.boxes, self.frame)] if gt_boxes is None
                         else [np.asarray(b, np.float64).reshape(-1, 4) for b in gt_boxes])

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(len(self.positions))

    def has_box(self) -> np.ndarray:
        """(N,) bool: the slice has at least one ground-truth box."""
        return np.array([len(b) > 0 for b in self.boxes], dtype=bool)

    def __getitem__(self, item) -> dict[str, Any]:
        import torch

        index, seed = item if isinstance(item, tuple) else (item, 0)
        index = int(index)
        image = torch.from_numpy(np.array(self.images[self.positions[index]], dtype=np.float32)).div_(255.0)
        boxes = torch.from_numpy(self.boxes[index].copy())
        if self.augment is not None:
            out = self.augment(int(seed))({"image": image, "boxes": boxes,
                                           "labels": torch.ones(len(boxes), dtype=torch.int64)})
            image, boxes = out["image"].clamp_(0.0, 1.0), out["boxes"].float().reshape(-1, 4)
        return {"image": image, "boxes": boxes, "index": index}


class BoxAugment:
    """Picklable ``seed -> build_augment(task="detect", ...)`` without small-angle rotation or elastic warps.

    Boxes of a rotated or warped lesion are the enclosing boxes of the moved box corners: larger than the lesion
    (about +18% area for a 5 degree turn of a 24 x 20 px box), which teaches the detector loose boxes. Flips,
    90-degree turns, scaling and translation move boxes exactly and are kept.
    """

    def __init__(self, *, size: int, strength: str) -> None:
        self.size, self.strength = int(size), str(strength)

    def __call__(self, seed: int):
        from medsift.preprocess.augment import build_augment

        return build_augment(task="detect", size=self.size, strength=self.strength, seed=seed, degrees=0.0,
                             elastic_p=0.0)


def box_augment_factory(*, size: int, strength: str) -> BoxAugment | None:
    """:class:`BoxAugment` for training (None for ``strength="none"``); validates the strength once."""
    if strength == "none":
        return None
    BoxAugment(size=size, strength=strength)(0)
    return BoxAugment(size=size, strength=strength)


def manifest_boxes(df) -> list[np.ndarray]:
    """Per row of ``df``, float64 (n, 4) xyxy boxes in original pixels (the manifest's ``boxes`` column)."""
    if "boxes" not in df.columns:
        return [np.zeros((0, 4)) for _ in range(len(df))]
    out = []
    for bs in df["boxes"]:
        bs = [] if bs is None or (isinstance(bs, float) and math.isnan(bs)) else list(bs)
        out.append(np.asarray([[float(v) for v in b[:4]] for b in bs], np.float64).reshape(-1, 4))
    return out


# ------------------------------------------------------------------------------------------- the task


class DetectTask(Task):
    """Box detection for the engine (:func:`medsift.engine.loop.fit`); see the module docstring."""

    name = "detect"
    headline_metric = "map50"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.options = detect_options(config)
        self.backend = DET_MODELS.get(self.options.model)
        self.mean: list[float] = [0.5]
        self.std: list[float] = [0.25]
        self.size = int(config.preprocess_config().size)
        self.box_stats: dict[str, Any] = {}
        self.log: Callable[[str], None] | None = None

    # ---------------------------------------------------------------- data
    def build_model(self, config):
        if config.threads:  # inference (evaluate/predict) honours the run's thread count too, not only fit
            import torch

            torch.set_num_threads(int(config.threads))
        if self.backend.needs_anchors and self.options.anchors is None:
            raise ConfigError(f"{self.options.model} needs anchors fitted on training boxes; build the datasets "
                              "first (or load a run's state)")
        return self.backend.build(config.preprocess_config().channels, size=self.size, width=int(self.options.width),
                                  anchors=self.options.anchors, max_dets=int(self.options.max_dets),
                                  score_floor=float(self.options.score_floor))

    def dataset(self, df, cache, *, augment: bool) -> DetectDataset:
        """A :class:`DetectDataset` over every row of ``df`` (slices without boxes included)."""
        pos = cache.rows(df)
        s = int(cache.images.shape[-1])
        factory = box_augment_factory(size=s, strength=self.config.augment) if augment else None
        return DetectDataset(cache.images, pos, [cache.boxes[p] for p in pos], augment=factory,
                             image_ids=df["image_id"].astype(str).to_numpy(),
                             patients=df["patient_id"].astype(str).to_numpy(),
                             gt_boxes=manifest_boxes(df) if "boxes" in df.columns else None,
                             frame=cache.file_frames(pos))

    def scored_rows(self, df):
        """The rows whose boxes are truth: a row nobody annotated (:func:`~medsift.tasks.data.annotated_rows`) is
        left out of evaluation rather than taken as lesion-free."""
        from medsift.tasks.data import annotated_rows

        return df[annotated_rows(df)]

    def build_datasets(self, df, cache, config) -> dict[str, Any]:
        from medsift.tasks.det_anchors import box_statistics, fit_anchors

        out = self.split_datasets(self.scored_rows(df), cache)  # unannotated rows are not lesion-free slices
        if not out["train"].has_box().any():
            raise ConfigError("the training split holds no box; nothing to detect")
        self.box_stats = box_statistics(out["train"].boxes)
        if self.backend.needs_anchors and self.options.anchors is None:
            from dataclasses import replace

            self.options = replace(self.options, anchors=fit_anchors(self.box_stats, levels=5))
        stats = getattr(cache, "stats", None)
        if stats and "mean" in stats and "std" in stats:
            self.mean, self.std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
        self._announce()
        return out

    def _announce(self) -> None:
        s = self.box_stats
        if not s.get("n_boxes"):
            return
        text = (f"detect[{self.options.model}] training boxes ({self.size}px frame): {s['n_boxes']} boxes on "
                f"{s['images_with_boxes']}/{s['n_images']} slices (max {s['max_boxes_per_image']}/slice); side "
                f"p5/p50/p95 {s['side_p5']:.1f}/{s['side_p50']:.1f}/{s['side_p95']:.1f} px, aspect h/w p25/p75 "
                f"{s['aspect_p25']:.2f}/{s['aspect_p75']:.2f}")
        if self.options.anchors is not None:
            text += f"; anchors {self.options.anchors['sizes']} ratios {self.options.anchors['aspect_ratios']}"
        (self.log or _stderr)(text)

    def collate(self, samples: list[dict]) -> dict[str, Any]:
        import torch

        images = torch.stack([s["image"] for s in samples])
        c = images.shape[1]
        mean = torch.as_tensor(np.resize(np.asarray(self.mean, np.float32), c)).view(1, c, 1, 1)
        std = torch.as_tensor(np.maximum(np.resize(np.asarray(self.std, np.float32), c), 1e-3)).view(1, c, 1, 1)
        boxes = [np.asarray(s["boxes"], np.float32).reshape(-1, 4) for s in samples]
        batch = {"image": (images - mean) / std,
                 "index": torch.as_tensor([s["index"] for s in samples], dtype=torch.long)}
        batch.update(self.backend.encode(boxes, int(images.shape[-1])))
        return batch

    def sample_weights(self, dataset) -> np.ndarray:
        """Slices with boxes get half of the draws (``sampler=balanced``)."""
        pos = dataset.has_box()
        n_pos, n_neg = max(int(pos.sum()), 1), max(int((~pos).sum()), 1)
        return np.where(pos, 0.5 / n_pos, 0.5 / n_neg)

    def state(self) -> dict[str, Any]:
        return {"detect": self.options.to_dict(), "input_mean": list(self.mean), "input_std": list(self.std),
                "box_stats": dict(self.box_stats)}

    def load_state(self, state: dict[str, Any]) -> None:
        if "detect" in state:
            self.options = DetectOptions.from_dict(state["detect"])
            self.backend = DET_MODELS.get(self.options.model)
        self.mean = list(state.get("input_mean", self.mean))
        self.std = list(state.get("input_std", self.std))
        self.box_stats = dict(state.get("box_stats", {}))

    # ---------------------------------------------------------------- training
    def loss(self, batch: dict[str, Any], output):
        return self.backend.loss(batch, output)

    def predict_batch(self, model, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        det = self.backend.decode(model(batch["image"]), k=int(self.options.max_dets))
        return {"det": det.float().cpu().numpy().astype(np.float32)}

    # ---------------------------------------------------------------- evaluation
    def aligned(self, predictions: dict[str, np.ndarray], dataset) -> tuple[np.ndarray, np.ndarray]:
        """(dataset indices, detections (N, k, 5) in the S x S frame) in dataset order."""
        order = np.argsort(predictions["index"], kind="stable")
        return predictions["index"][order], predictions["det"][order]

    def split_detections(self, det: np.ndarray, *, frame: np.ndarray | None = None) -> tuple[list, list]:
        """Boxes (n, 4) and scores (n,) per image with score >= ``score_floor``, optionally mapped per image to
        its file's pixels by ``frame`` (N, 4) = (sx, sy, ox, oy)."""
        boxes, scores = [], []
        floor = max(float(self.options.score_floor), 0.0)
        for i, d in enumerate(det):
            keep = d[:, 4] >= floor
            b = d[keep, :4].astype(np.float64)
            if frame is not None:
                b = boxes_to_file(b, frame[i])
            boxes.append(b)
            scores.append(d[keep, 4].astype(np.float64))
        return boxes, scores

    def val_metrics(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, float]:
        """mAP@0.5 and @0.5:0.95, FROC at 1 FP/image (S x S frame), and the image-level ROC AUC of the best box
        score (``auc``)."""
        from medsift.metrics.classification import roc_auc
        from medsift.metrics.detection import coco_map, froc

        idx, det = self.aligned(predictions, dataset)
        boxes, scores = self.split_detections(det)
        ids = [str(i) for i in idx]
        gt = {k: dataset.boxes[i] for k, i in zip(ids, idx)}
        pred, sc = dict(zip(ids, boxes)), dict(zip(ids, scores))
        out = {"map50": math.nan, "map50_95": math.nan, "froc_1fp": math.nan}
        if sum(len(b) for b in gt.values()):
            m = coco_map(gt, pred, sc)
            out.update({"map50": m["map50"], "map50_95": m["map50_95"]})
            out["froc_1fp"] = froc(gt, pred, sc, fp_rates=(1,))["froc_1fp"]
        best = np.array([s.max() if len(s) else 0.0 for s in scores])
        truth = np.array([len(gt[k]) > 0 for k in ids], dtype=int)
        out["auc"] = roc_auc(truth, best) if 0 < truth.sum() < len(truth) else math.nan
        return out

    def calibrate(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, Any]:
        """Image threshold: the highest best-box score whose validation image recall >= ``target_sensitivity``."""
        from medsift.metrics.detection import threshold_for_recall

        idx, det = self.aligned(predictions, dataset)
        _, scores = self.split_detections(det)
        best = np.array([s.max() if len(s) else 0.0 for s in scores])
        truth = np.array([len(dataset.boxes[i]) > 0 for i in idx], dtype=int)
        target = float(self.config.target_sensitivity)
        if truth.sum() == 0:
            thr = 0.5
        else:
            thr = threshold_for_recall(truth, best, target_recall=target)
        rec = float(((best >= thr) & (truth == 1)).sum() / max(truth.sum(), 1))
        spec = float(((best < thr) & (truth == 0)).sum() / max((truth == 0).sum(), 1))
        return {"threshold": float(thr), "thresholds": [float(thr)], "target_recall": target,
                "val_image_recall": rec, "val_image_specificity": spec}

    def evaluate(self, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                 out_dir=None) -> dict[str, float]:
        """Box metrics (COCO mAP, per-size AP, FROC) and image-level outcome at the calibrated threshold, with
        patient-bootstrap intervals for the image-level metrics; with ``out_dir`` the prediction CSV, the
        image-level table, classification report, PR / FROC / confusion plots and drawings of hits and misses."""
        from medsift.tasks.det_evaluate import evaluate_detection

        return evaluate_detection(self, predictions, dataset, calibration=calibration, out_dir=out_dir,
                                  n_boot=int(getattr(self.config, "bootstrap", 1000)))


def _stderr(text: str) -> None:
    import sys

    sys.stderr.write(text + "\n")


def boxes_to_file(boxes: np.ndarray, frame: Sequence[float]) -> np.ndarray:
    """(n, 4) xyxy boxes of the S x S frame in the file's pixels, by one row ``(sx, sy, ox, oy)`` of
    :meth:`~medsift.preprocess.cache.SliceCache.file_frames`."""
    sx, sy, ox, oy = (float(v) for v in frame)
    return np.asarray(boxes, np.float64).reshape(-1, 4) * [sx, sy, sx, sy] + [ox, oy, ox, oy]


def boxes_to_cache(boxes: np.ndarray, frame: Sequence[float]) -> np.ndarray:
    """The inverse of :func:`boxes_to_file`: file pixels back to the S x S frame (to draw on the model's view)."""
    sx, sy, ox, oy = (float(v) for v in frame)
    return (np.asarray(boxes, np.float64).reshape(-1, 4) - [ox, oy, ox, oy]) / [sx, sy, sx, sy]

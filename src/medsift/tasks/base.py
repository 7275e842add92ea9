"""The task interface the engine trains, and the shared implementation of sigmoid label tasks.

A task turns manifest rows + a slice cache into datasets, builds its model, defines the loss, turns model
outputs into numpy predictions, and evaluates predictions. The engine (:func:`medsift.engine.loop.fit`)
knows nothing else about it. New tasks (segment, detect) subclass :class:`Task` and register in
:data:`medsift.tasks.TASKS`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from medsift.engine.config import LossKind, TrainConfig
from medsift.errors import ConfigError


class Task(ABC):
    """One learning problem.

    Life cycle: ``task = TASKS.get(name)(config)``; ``datasets = task.build_datasets(df, cache, config)``
    (also fixes data-dependent state such as class weights and input statistics); the engine calls
    ``build_model``, ``collate``, ``loss``, ``predict_batch``, ``val_metrics``; after training
    ``calibrate`` picks thresholds on validation predictions, and ``evaluate`` scores any dataset.
    """

    name: ClassVar[str] = ""
    #: validation metric that selects the best epoch when ``early_stop_metric: auto``
    headline_metric: ClassVar[str] = "auc"
    #: trains on the manifest's train/val split (checked before any slice is cached)
    needs_split: ClassVar[bool] = True
    #: training batches may be blended (``mixup``): targets are per-slice label vectors that mix linearly
    allows_mixup: ClassVar[bool] = False

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        if float(config.mixup) > 0 and not self.allows_mixup:
            raise ConfigError(f"mixup is for the per-slice label tasks (classify, multilabel); the {self.name} "
                              f"task's targets (boxes, masks) do not blend")

    def split_datasets(self, df, cache, *, drop_empty: bool = False,
                       missing: str = "no training rows") -> dict[str, Any]:
        """``{split: self.dataset(rows, cache, augment=split == "train")}`` for the train/val/test rows of ``df``.

        Args:
            drop_empty: leave out splits whose dataset kept no row (e.g. no usable mask).
            missing: start of the error raised when there is no training dataset.

        Raises:
            ConfigError: the manifest is not split, or holds no training rows.
        """
        require_split(df)
        out = {}
        for split in ("train", "val", "test"):
            part = df[df["split"] == split]
            if len(part):
                ds = self.dataset(part, cache, augment=split == "train")
                if len(ds) or not drop_empty:
                    out[split] = ds
        if "train" not in out:
            raise ConfigError(f"{missing}; splits present: {sorted(df['split'].dropna().unique())}")
        return out

    @abstractmethod
    def build_model(self, config: TrainConfig):
        """The ``nn.Module`` to train."""

    @abstractmethod
    def build_datasets(self, df, cache, config: TrainConfig) -> dict[str, Any]:
        """``{split: Dataset}`` for the splits present in ``df`` (items looked up by ``(index, seed)``)."""

    @abstractmethod
    def collate(self, samples: list[dict]) -> dict[str, Any]:
        """List of dataset items -> batch dict of tensors with at least ``image`` and ``index``."""

    @abstractmethod
    def loss(self, batch: dict[str, Any], output) -> Any:
        """Scalar loss tensor of ``output = model(batch["image"])``."""

    @abstractmethod
    def predict_batch(self, model, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Numpy predictions of one batch (first axis = batch)."""

    @abstractmethod
    def val_metrics(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, float]:
        """Fast validation metrics for model selection (no bootstrap)."""

    def sample_weights(self, dataset) -> np.ndarray:
        """(N,) sampling weights for a balanced sampler (default: uniform)."""
        return np.ones(len(dataset))

    def calibrate(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, Any]:
        """Decision parameters chosen on validation predictions (stored in ``model.json``)."""
        return {}

    def scored_rows(self, df):
        """The rows of ``df`` whose truth is known, for evaluation (default: all; label tasks drop unknown labels
        in their datasets, detection drops rows nobody annotated)."""
        return df

    @abstractmethod
    def evaluate(self, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                 out_dir: Path | None = None) -> dict[str, float]:
        """Flat lower-case metrics dict (with ``_ci_low``/``_ci_high``); plots into ``out_dir`` when given."""

    def state(self) -> dict[str, Any]:
        """Data-dependent state that inference needs (input statistics...), saved in ``model.json``."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` for inference without the training data."""


class LabelTask(Task):
    """K sigmoid outputs trained with BCE (optionally ``pos_weight``) or focal loss; NaN targets are ignored."""

    allows_mixup = True

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.labels: tuple[str, ...] = tuple(config.labels)
        self.pos_weight = np.ones(len(self.labels), dtype=np.float32)
        self.mean: list[float] = [0.5]
        self.std: list[float] = [0.25]
        self._collate = None
        self._localization = None  # the model's LocalizationPool when box supervision is on

    # ---------------------------------------------------------------- data
    def build_model(self, config: TrainConfig):
        from medsift.tasks.models import build_model

        model = build_model(config.model, in_channels=config.preprocess_config().channels,
                            num_outputs=len(self.labels))
        self._localization = model.avgpool if float(config.model.box_supervision) > 0 else None
        return model

    def dataset(self, df, cache, *, augment: bool):
        """A :class:`~medsift.tasks.data.SliceDataset` over ``df``'s rows with at least one known label; training
        items carry their seed so the collate augments the batch (:class:`~medsift.preprocess.batch_augment.BatchAugment`)."""
        from medsift.preprocess.stack import neighbour_positions
        from medsift.tasks.data import SliceDataset, label_targets

        targets = label_targets(df, self.labels)
        keep = ~np.isnan(targets).all(axis=1)
        df, targets = df[keep], targets[keep]
        rows = cache.rows(df)
        boxes = None
        if augment and float(self.config.model.box_supervision) > 0:  # the box maps only serve the training loss
            boxes = [cache.boxes[r] for r in rows]
            if len(rows) and not any(len(b) for b in boxes):
                raise ConfigError("model.box_supervision needs annotation boxes; the training rows have none "
                                  "(set model.box_supervision=0)")
        seeded = augment and (self.config.augment != "none" or float(self.config.mixup) > 0)
        return SliceDataset(cache.images, rows, targets, with_seed=seeded,
                            image_ids=df["image_id"].astype(str).to_numpy(),
                            patients=df["patient_id"].astype(str).to_numpy(), boxes=boxes,
                            neighbours=neighbour_positions(df, 1)[:, [0, 2]])

    def build_datasets(self, df, cache, config: TrainConfig) -> dict[str, Any]:
        out = self.split_datasets(df, cache)
        train = out["train"]
        pos = np.nansum(train.targets, axis=0)
        known = (~np.isnan(train.targets)).sum(axis=0)
        unknown = [name for name, k in zip(self.labels, known) if k == 0]
        if unknown:
            raise ConfigError(f"no training row has a known {', '.join(unknown)} label: fill label_* columns "
                              f"(`medsift ingest ... --labels CSV`) or ingest annotation files; slices nobody "
                              f"annotated are unknown, not negative")
        missing = [name for name, p, k in zip(self.labels, pos, known) if p == 0 or p == k]
        if missing:
            raise ConfigError(f"training rows need positives and negatives of every label; {missing} have one class "
                              f"only (positives {dict(zip(self.labels, pos.astype(int).tolist()))})")
        self.pos_weight = ((known - pos) / pos).astype(np.float32)
        stats = getattr(cache, "stats", None)
        if stats and "mean" in stats and "std" in stats:
            self.mean, self.std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
        else:
            sample = np.asarray(cache.images[np.sort(train.positions[:256])], dtype=np.float32) / 255.0
            self.mean = sample.mean(axis=(0, 2, 3)).tolist()
            self.std = sample.std(axis=(0, 2, 3)).tolist()
        self._collate = None
        return out

    def state(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "input_mean": list(self.mean), "input_std": list(self.std),
                "pos_weight": [float(v) for v in self.pos_weight]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = list(state["input_mean"]), list(state["input_std"])
        self.pos_weight = np.asarray(state.get("pos_weight", self.pos_weight), dtype=np.float32)
        self._collate = None

    def collate(self, samples: list[dict]) -> dict[str, Any]:
        if self._collate is None:
            from medsift.preprocess.batch_augment import BatchAugment
            from medsift.tasks.data import Collate

            augment = BatchAugment(self.config.augment) if self.config.augment != "none" else None
            self._collate = Collate(self.mean, self.std, augment=augment, mixup=float(self.config.mixup))
        return self._collate(samples)

    def sample_weights(self, dataset) -> np.ndarray:
        """Balanced sampling on the first label: each class gets half of the draws."""
        y = np.nan_to_num(dataset.targets[:, 0], nan=0.0)
        n_pos = max(y.sum(), 1.0)
        n_neg = max(len(y) - y.sum(), 1.0)
        return np.where(y > 0.5, 0.5 / n_pos, 0.5 / n_neg)

    # ---------------------------------------------------------------- training
    def loss(self, batch: dict[str, Any], output):
        import torch
        import torch.nn.functional as F

        logits = output.float()
        target = batch["target"].float()
        mask = ~torch.isnan(target)
        target = torch.nan_to_num(target, nan=0.0)
        kind = LossKind(self.config.loss)
        if kind is LossKind.FOCAL:
            alpha = torch.as_tensor(self.pos_weight / (1.0 + self.pos_weight), device=logits.device)
            gamma = float(self.config.focal_gamma)
            p = torch.sigmoid(logits)
            ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            p_t = p * target + (1 - p) * (1 - target)
            a_t = alpha * target + (1 - alpha) * (1 - target)
            per = a_t * ce * (1 - p_t) ** gamma
        else:
            pw = torch.as_tensor(self.pos_weight, device=logits.device) if kind is LossKind.WEIGHTED else None
            per = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")
        loss = (per * mask).sum() / mask.sum().clamp_min(1)
        loc = getattr(self._localization, "last_map", None)
        if loc is not None and "box_map" in batch:
            loss = loss + float(self.config.model.box_supervision) * self.box_loss(loc.float(), batch["box_map"])
        return loss

    @staticmethod
    def box_loss(map_logits, box_map):
        """BCE of (B, 1, h, w) localisation logits against "a box reaches into this cell" (max-pooled (B, 1, H, W)
        box maps: a crisp target even for boxes much smaller than a cell)."""
        import torch.nn.functional as F

        target = F.adaptive_max_pool2d(box_map.to(map_logits.device, map_logits.dtype), map_logits.shape[-2:])
        return F.binary_cross_entropy_with_logits(map_logits, target)

    def predict_batch(self, model, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        import torch

        return {"score": torch.sigmoid(model(batch["image"]).float()).cpu().numpy()}

    # ---------------------------------------------------------------- evaluation helpers
    @staticmethod
    def aligned(predictions: dict[str, np.ndarray], dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(targets, scores, patients, image_ids) in dataset order."""
        order = np.argsort(predictions["index"], kind="stable")
        idx = predictions["index"][order]
        return dataset.targets[idx], predictions["score"][order], dataset.patients[idx], dataset.image_ids[idx]

    def thresholds(self, y: np.ndarray, p: np.ndarray) -> list[float]:
        from medsift.metrics.classification import choose_threshold

        out = []
        for k in range(y.shape[1]):
            known = ~np.isnan(y[:, k])
            out.append(choose_threshold(y[known, k], p[known, k], rule=self.config.threshold_rule,
                                        target_sensitivity=self.config.target_sensitivity).threshold)
        return out

    def calibrate(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, Any]:
        y, p, _, _ = self.aligned(predictions, dataset)
        return {"thresholds": self.thresholds(y, p), "threshold_rule": self.config.threshold_rule,
                "target_sensitivity": self.config.target_sensitivity}


def require_split(df) -> None:
    """Raise a :class:`ConfigError` telling what to run when ``df`` has no train/val/test split."""
    if "split" not in df.columns or df["split"].isna().all():
        raise ConfigError("the manifest has no split column values; run `medsift split WS` first")


def finite_or_nan(value: float) -> float:
    """``value`` as float, nan when not finite."""
    value = float(value)
    return value if math.isfinite(value) else float("nan")


def label_names(labels: Sequence[str]) -> list[str]:
    """Lower-case metric prefixes of label names."""
    return [str(n).lower() for n in labels]

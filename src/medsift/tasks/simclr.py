"""Self-supervised contrastive pretraining (SimCLR-like) on the dataset's own slices.

Each slice gives two independently augmented views (``build_augment(strength="strong")``); the encoder plus a
2-layer projection head is trained with the NT-Xent loss (temperature ``TEMPERATURE``) to recognise the pair
among the batch. The encoder's weights (``RUN/best.pt``) then initialise a label task through
``--set model.pretrained=RUN/best.pt`` (the head is dropped on load). Test-split rows are never used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsift.engine.config import TrainConfig
from medsift.errors import ConfigError
from medsift.tasks.base import Task

TEMPERATURE = 0.2
PROJECTION_DIM = 128
#: what `medsift pretrain` sets over the user's config (``--set`` still wins): contrastive views need strong changes
PRETRAIN_OVERRIDES = ("task=simclr", "early_stop_metric=loss", "labels=[none]", "augment=strong")


def nt_xent(z, temperature: float = TEMPERATURE):
    """NT-Xent loss per pair for embeddings ``z`` (2B, D) with views interleaved (2i, 2i+1). Returns (B,)."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(z.float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = z.shape[0]
    target = torch.arange(n, device=z.device) ^ 1
    per = F.cross_entropy(sim, target, reduction="none")
    return per.view(-1, 2).mean(dim=1), (sim.argmax(dim=1) == target).float().view(-1, 2).mean(dim=1)


class TwoViews:
    """Dataset wrapper: item ``(index, seed)`` -> two augmented views of the same slice (views seeded apart)."""

    def __init__(self, base) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        a = self.base[(index, 2 * int(seed) + 1)]
        b = self.base[(index, 2 * int(seed) + 2)]
        return {"views": [a["image"], b["image"]], "index": int(index)}


class SimCLRTask(Task):
    """Contrastive pretraining as a task of the one engine (checkpoints, resume, history come for free)."""

    name = "simclr"
    needs_split = False  # an unsplit workspace is split 90/10 at random: no labels, so no leakage to fear

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.labels: tuple[str, ...] = ()
        self.mean: list[float] = [0.5]
        self.std: list[float] = [0.25]
        self._collate = None

    def build_model(self, config: TrainConfig):
        import torch.nn as nn

        from medsift.tasks.models import build_model, head_name

        model = build_model(config.model, in_channels=config.preprocess_config().channels, num_outputs=PROJECTION_DIM)
        head = getattr(model, head_name(model))
        linear = [m for m in head.modules() if isinstance(m, nn.Linear)][-1]
        setattr(model, head_name(model), nn.Sequential(nn.Linear(linear.in_features, linear.in_features),
                                                       nn.ReLU(inplace=True),
                                                       nn.Linear(linear.in_features, PROJECTION_DIM)))
        return model

    def build_datasets(self, df, cache, config: TrainConfig) -> dict[str, Any]:
        """Train on train-split rows (all rows when the workspace is not split), validate on val; never test."""
        from medsift.tasks.data import SliceDataset, augment_factory

        if "split" in df.columns and df["split"].notna().any():
            parts = {"train": df[df["split"] == "train"], "val": df[df["split"] == "val"]}
        else:
            shuffled = df.sample(frac=1.0, random_state=config.seed)
            n_val = max(len(df) // 10, 1)
            parts = {"train": shuffled.iloc[n_val:], "val": shuffled.iloc[:n_val]}
        if len(parts["train"]) < 2 or len(parts["val"]) < 2:
            raise ConfigError(f"pretraining needs at least 2 train and 2 val slices; got "
                              f"{len(parts['train'])} and {len(parts['val'])}")
        size = int(cache.images.shape[-1])
        strength = "strong" if config.augment == "none" else config.augment
        factory = augment_factory(task="classify", size=size, strength=strength)
        out = {}
        for name, part in parts.items():
            base = SliceDataset(cache.images, cache.rows(part), np.zeros((len(part), 1), dtype=np.float32),
                                augment=factory, image_ids=part["image_id"].astype(str).to_numpy(),
                                patients=part["patient_id"].astype(str).to_numpy())
            out[name] = TwoViews(base)
        stats = getattr(cache, "stats", None)
        if stats:
            self.mean, self.std = list(stats["mean"]), list(stats["std"])
        return out

    def collate(self, samples: list[dict]) -> dict[str, Any]:
        import torch

        from medsift.tasks.data import Collate

        if self._collate is None:
            self._collate = Collate(self.mean, self.std)
        flat = [{"image": v, "target": torch.zeros(1), "index": s["index"]} for s in samples for v in s["views"]]
        batch = self._collate(flat)
        return {"image": batch["image"], "index": torch.as_tensor([s["index"] for s in samples], dtype=torch.long)}

    def loss(self, batch: dict[str, Any], output):
        return nt_xent(output)[0].mean()

    def predict_batch(self, model, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        loss, acc = nt_xent(model(batch["image"]))
        return {"pair_loss": loss.cpu().numpy(), "pair_top1": acc.cpu().numpy()}

    def val_metrics(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, float]:
        return {"loss": float(np.mean(predictions["pair_loss"])), "top1": float(np.mean(predictions["pair_top1"]))}

    def state(self) -> dict[str, Any]:
        return {"input_mean": list(self.mean), "input_std": list(self.std)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.mean, self.std = list(state["input_mean"]), list(state["input_std"])

    def evaluate(self, predictions, dataset, *, calibration, out_dir=None) -> dict[str, float]:
        return self.val_metrics(predictions, dataset)

"""Tiny synthetic problems for the engine/task tests: an in-memory stand-in for a slice cache.

Positive slices carry a bright disc (class ``hemorrhage``; subtype by position), negatives only noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class ArrayCache:
    """The parts of :class:`medsift.preprocess.cache.SliceCache` the label tasks use, over an in-memory array."""

    def __init__(self, images: np.ndarray, image_ids, boxes=None) -> None:
        self.images = images
        self.boxes = boxes if boxes is not None else [np.zeros((0, 4), np.float32)] * len(images)
        self.image_ids = np.asarray(image_ids, dtype=object)
        self._pos = {str(i): k for k, i in enumerate(self.image_ids)}
        x = images.astype(np.float32) / 255.0
        self.stats = {"mean": x.mean(axis=(0, 2, 3)).tolist(), "std": x.std(axis=(0, 2, 3)).tolist()}

    def rows(self, df) -> np.ndarray:
        return np.array([self._pos[str(i)] for i in df["image_id"]], dtype=np.int64)


def synthetic(n_patients: int = 12, per_patient: int = 10, size: int = 32, seed: int = 0):
    """(manifest-like DataFrame, ArrayCache): label_hemorrhage, label_ivh (disc left), label_sdh (disc right);
    the cache's ``boxes`` hold each disc's bounding box in pixels."""
    rng = np.random.default_rng(seed)
    rows, images, boxes = [], [], []
    yy, xx = np.mgrid[:size, :size]
    splits = ["train"] * (n_patients // 2) + ["val"] * (n_patients // 4)
    splits += ["test"] * (n_patients - len(splits))
    for p in range(n_patients):
        for s in range(per_patient):
            img = rng.normal(60, 12, (size, size))
            left = rng.random() < 0.3
            right = rng.random() < 0.3
            r, discs = size * 0.12, []
            for on, cx in ((left, size * 0.3), (right, size * 0.7)):
                if on:
                    cy = rng.uniform(size * 0.3, size * 0.7)
                    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] += 120
                    discs.append([cx - r, cy - r, cx + r, cy + r])
            images.append(np.clip(img, 0, 255).astype(np.uint8)[None])
            boxes.append(np.asarray(discs, dtype=np.float32).reshape(-1, 4))
            rows.append({"image_id": f"{p:03d}_{s:02d}", "patient_id": f"{p:03d}", "split": splits[p],
                         "label_hemorrhage": int(left or right), "label_ivh": int(left), "label_sdh": int(right),
                         "boxes": []})
    df = pd.DataFrame(rows)
    return df, ArrayCache(np.stack(images), df["image_id"], boxes)


def tiny_config(**overrides):
    """A TrainConfig that trains in about a second on :func:`synthetic` data (1 thread, 32 px, width 8)."""
    from medsift.engine.config import ModelConfig, TrainConfig

    base = dict(task="classify", labels=("hemorrhage",), epochs=3, batch_size=16, lr=3e-3, num_workers=0, threads=1,
                augment="none", early_stop_metric="auc", patience=0, bootstrap=100,
                model=ModelConfig(arch="resnet_small", width=8), preprocess={"size": 32, "windows": ["brain"]})
    base.update(overrides)
    return TrainConfig(**base)


def train_tiny(out_dir, *, resume: bool = False, kill_after_epoch: int | None = None, **overrides):
    """Train :func:`tiny_config` on :func:`synthetic`; optionally SIGKILL this process after an epoch is logged."""
    import os
    import signal

    from medsift.engine.loop import fit
    from medsift.tasks import TASKS

    config = tiny_config(**overrides)
    df, cache = synthetic()
    task = TASKS.get(config.task)(config)
    datasets = task.build_datasets(df, cache, config)

    def log(line: str) -> None:
        if kill_after_epoch is not None and line.startswith(f"epoch={kill_after_epoch} "):
            os.kill(os.getpid(), signal.SIGKILL)

    result = fit(task, datasets, config, out_dir, resume=resume, show_progress=False, log=log)
    return task, datasets, result

"""Datasets of the label tasks: cached uint8 slices + (N, K) targets, looked up by ``(index, sample_seed)``.

Images stay uint8 until the collate (4x less memory traffic in the workers); the collate turns them into
float32, scales to 0..1 and standardises each channel with the training cache's mean/std.

Augmentation is seeded by the sampler (see :class:`medsift.engine.sampler.EpochSampler`). Two ways:

* per batch (label tasks): training items carry their ``seed``; the :class:`Collate` warps the whole float batch
  at once with :class:`medsift.preprocess.batch_augment.BatchAugment`, seeded from the items' seeds (cheap, no
  loader worker needed on a 2-core machine);
* per sample (SimCLR views): the dataset builds
  ``medsift.preprocess.augment.build_augment(task=..., size=..., strength=..., seed=sample_seed)``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from medsift.errors import ConfigError

AugmentFactory = Callable[[int], Callable[[dict], dict]]


class SliceDataset:
    """Torch map-style dataset over a subset of a slice cache.

    Args:
        images: uint8 (M, C, S, S) array or memmap (the cache's ``images``).
        positions: (N,) rows of ``images`` in this dataset, in manifest order.
        targets: (N, K) float32 with 0/1 (nan = unknown label).
        augment: ``seed -> (sample dict -> sample dict)`` or None.
        with_seed: items carry their sample ``seed`` (for a batch-augmenting :class:`Collate`).
        image_ids, patients: (N,) identifiers kept for evaluation.
        boxes: (N,) float (n_i, 4) xyxy arrays in the cached image's pixels, or None; items then carry ``boxes``
            (box supervision: the collate draws them as a map).
        neighbours: (N, 2) positions (0..N-1, into this dataset) of each slice's previous and next slice in its
            stack (itself at the ends), or None; evaluation uses them to find the label's edges.
    """

    def __init__(self, images, positions: np.ndarray, targets: np.ndarray, *, augment: AugmentFactory | None = None,
                 with_seed: bool = False, image_ids: Sequence[str] = (), patients: Sequence[str] = (),
                 boxes: Sequence[np.ndarray] | None = None, neighbours: np.ndarray | None = None) -> None:
        self.images = images
        self.positions = np.asarray(positions, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.float32)
        width = int(np.prod(targets.shape[1:])) if targets.ndim > 1 else 1  # (N,) -> (N, 1); also when N is 0
        self.targets = targets.reshape(len(self.positions), width)
        self.augment = augment
        self.with_seed = bool(with_seed)
        self.image_ids = np.asarray(image_ids, dtype=object)
        self.patients = np.asarray(patients, dtype=object)
        self.boxes = None if boxes is None else [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes]
        if self.boxes is not None and len(self.boxes) != len(self.positions):
            raise ConfigError(f"boxes hold {len(self.boxes)} entries for {len(self.positions)} rows")
        self.neighbours = None if neighbours is None else np.asarray(neighbours, dtype=np.int64).reshape(-1, 2)
        if self.neighbours is not None and len(self.neighbours) != len(self.positions):
            raise ConfigError(f"neighbours hold {len(self.neighbours)} rows for {len(self.positions)} slices")

    def __len__(self) -> int:
        return int(len(self.positions))

    def __getitem__(self, item) -> dict[str, Any]:
        import torch

        index, seed = (item if isinstance(item, tuple) else (item, 0))
        image = torch.from_numpy(np.array(self.images[self.positions[index]], dtype=np.uint8, copy=True))
        if self.augment is not None:
            sample = self.augment(int(seed))({"image": image.float().div_(255.0)})
            image = sample["image"].clamp_(0.0, 1.0)
        item = {"image": image, "target": torch.from_numpy(self.targets[index]), "index": int(index)}
        if self.with_seed:
            item["seed"] = int(seed)
        if self.boxes is not None:
            item["boxes"] = self.boxes[index]
        return item


class Collate:
    """Stack samples; uint8 -> float 0..1; augment batches of seeded (training) items with ``augment`` and blend
    them with ``mixup`` (Beta alpha, 0 = off); standardise per channel with ``mean``/``std`` (0..1 units)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, augment=None, mixup: float = 0.0) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.maximum(np.asarray(std, dtype=np.float32), 1e-3)
        self.augment = augment
        self.mixup = float(mixup)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        images = torch.stack([s["image"] for s in samples])
        maps = box_maps([s["boxes"] for s in samples], images.shape[-2:]) if "boxes" in samples[0] else None
        if self.augment is not None and "seed" in samples[0]:
            seed = batch_seed([s["seed"] for s in samples])
            if maps is None:
                images = self.augment(images, seed)  # uint8 in, float 0..1 out
            else:
                images, maps = self.augment(images, seed, masks=maps)
        elif images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        c = images.shape[1]
        mean = torch.as_tensor(np.resize(self.mean, c)).view(1, c, 1, 1)
        std = torch.as_tensor(np.resize(self.std, c)).view(1, c, 1, 1)
        batch = {"image": (images - mean) / std, "target": torch.stack([s["target"] for s in samples]),
                 "index": torch.as_tensor([s["index"] for s in samples], dtype=torch.long)}
        if maps is not None:
            batch["box_map"] = maps
        if self.mixup > 0 and "seed" in samples[0]:
            mix_batch(batch, alpha=self.mixup, seed=batch_seed([s["seed"] for s in samples]))
        return batch


def mix_batch(batch: dict[str, Any], *, alpha: float, seed: int) -> None:
    """Mixup (Zhang et al. 2018) in place: image, target and box map become ``lam * x + (1 - lam) * x[perm]`` with
    one ``lam ~ Beta(alpha, alpha)`` folded to >= 0.5 (the batch's own items dominate) and a seeded permutation.

    A target that is unknown (NaN) in either partner stays unknown, so the loss still ignores it.
    """
    import torch

    rng = np.random.default_rng([int(seed), 0x6D6978])  # "mix": a stream apart from the augmentation's
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    perm = torch.as_tensor(rng.permutation(len(batch["target"])), dtype=torch.long)
    for key in ("image", "target", "box_map"):
        if key in batch:
            x = batch[key].float() if key == "target" else batch[key]
            batch[key] = lam * x + (1.0 - lam) * x[perm]


def box_maps(boxes: Sequence[np.ndarray], shape: Sequence[int]):
    """(B, 1, H, W) float32 maps, 1 inside any of each image's xyxy pixel boxes (clipped to the image), else 0."""
    import torch

    h, w = int(shape[0]), int(shape[1])
    out = torch.zeros((len(boxes), 1, h, w), dtype=torch.float32)
    for i, bs in enumerate(boxes):
        for x1, y1, x2, y2 in np.asarray(bs, dtype=np.float64).reshape(-1, 4):
            c0, c1 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
            r0, r1 = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
            out[i, 0, r0:r1, c0:c1] = 1.0
    return out


def batch_seed(seeds: Sequence[int]) -> int:
    """One seed for a batch from its items' sampler seeds (order-sensitive, stable across runs)."""
    acc = 0
    for s in seeds:
        acc = (acc * 1_000_003 + int(s)) % (2**61 - 1)
    return acc


def augment_factory(*, task: str, size: int, strength: str) -> AugmentFactory | None:
    """``seed -> augment`` for training (:func:`medsift.preprocess.augment.build_augment`), None for ``none``."""
    if strength == "none":
        return None
    from medsift.preprocess.augment import build_augment

    build_augment(task=task, size=size, strength=strength, seed=0)  # validate the names once, here
    return _PreprocessAugment(build_augment, task=task, size=size, strength=strength)


class _PreprocessAugment:
    """Picklable ``seed -> build_augment(..., seed=seed)``."""

    def __init__(self, build, *, task: str, size: int, strength: str) -> None:
        self.build, self.task, self.size, self.strength = build, task, size, strength

    def __call__(self, seed: int):
        return self.build(task=self.task, size=self.size, strength=self.strength, seed=seed)


def _boxed(df) -> np.ndarray:
    """(N,) True where a row has at least one box."""
    return np.array([b is not None and len(b) > 0 for b in df["boxes"]], dtype=bool)


def annotated_rows(df) -> np.ndarray:
    """(N,) True where a row had an annotation or mask file, boxes, or says its labels came from annotations:
    only there does "no box" mean "no lesion"."""
    known = np.zeros(len(df), dtype=bool)
    for col in ("annotation_path", "mask_path"):
        if col in df.columns:
            known |= df[col].notna().to_numpy(dtype=bool)
    if "label_source" in df.columns:
        known |= (df["label_source"].astype("string") == "annotation").fillna(False).to_numpy(dtype=bool)
    if "boxes" in df.columns:
        known |= _boxed(df)
    return known


def label_targets(df, labels: Sequence[str]) -> np.ndarray:
    """(N, K) float32 targets from columns ``label_<name>`` (nan where empty).

    ``hemorrhage`` falls back to "the slice has at least one box" when ``label_hemorrhage`` is absent or empty
    for every row (PHE-style annotations), for the rows that were annotated (an annotation or mask file, or
    boxes): a row nobody annotated, e.g. a DICOM slice of another site, stays unknown (nan), not negative.

    Raises:
        ConfigError: a label column is missing (names the ones present).
    """
    out = np.full((len(df), len(labels)), np.nan, dtype=np.float32)
    present = [c for c in df.columns if c.startswith("label_") and c != "label_source"]
    for k, name in enumerate(labels):
        col = f"label_{name}"
        if col in df.columns and df[col].notna().any():
            out[:, k] = df[col].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
        elif name == "hemorrhage" and "boxes" in df.columns:
            out[:, k] = np.where(annotated_rows(df), _boxed(df).astype(np.float32), np.nan)
        else:
            raise ConfigError(f"label {name!r} needs a filled column {col!r}; label columns present: {present}")
    return out

"""Fast epochs over a :class:`~medsift.preprocess.cache.SliceCache`: whole batches per read, uint8 until the
device.

``cache_loader`` wraps a torch ``DataLoader`` whose sampler yields index lists (``BatchSampler``) and whose
dataset reads each batch with one sorted fancy index into the memmaps, so a batch costs one copy instead of
B Python calls plus a collate. Convert on the device with :func:`to_float` (applies the cache's
normalisation). Use a per-sample dataset instead when per-sample augmentation is needed.

Example:
    >>> loader = cache_loader(cache, cache.rows(train_df), batch_size=32, seed=0)  # doctest: +SKIP
    >>> for batch in loader:                                                       # doctest: +SKIP
    ...     x = to_float(batch["image"].to(device), cache)                          # (B, C, S, S) float32
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from medsift.preprocess.cache import SliceCache
from medsift.preprocess.config import Normalize

if TYPE_CHECKING:
    import torch


class CacheBatchDataset:
    """Map-style dataset indexed by a *list* of positions (into ``positions``); returns one batch dict:
    ``image`` uint8 (B, C, S, S), ``mask`` uint8 (B, 1, S, S), ``index`` int64 (B,) cache positions,
    ``label_<name>`` float32 (B,) for each label column (NaN when unknown)."""

    def __init__(self, cache: SliceCache, positions: Sequence[int] | np.ndarray | None = None) -> None:
        self.cache = cache
        self.positions = np.arange(len(cache)) if positions is None else np.asarray(positions, dtype=np.int64)
        labels = [c for c in cache.index.columns if c.startswith("label_") and c != "label_source"]
        self.labels = {c: cache.index[c].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
                       for c in labels}

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, ks: Sequence[int]) -> dict[str, Any]:
        import torch

        pos = self.positions[np.asarray(ks, dtype=np.int64)]
        images, masks = self.cache.read_batch(pos)
        out: dict[str, Any] = {"image": torch.from_numpy(images), "mask": torch.from_numpy(masks)[:, None],
                               "index": torch.from_numpy(pos)}
        for name, values in self.labels.items():
            out[name] = torch.from_numpy(values[pos])
        return out


class CacheSampleDataset:
    """Per-sample dataset over a cache, optionally augmented: item ``k`` is
    ``augment(as_sample(cache[positions[k]]))`` — ``image`` float32 (C, S, S) normalised per the cache config,
    ``mask`` uint8 (1, S, S), ``boxes`` float32 (N, 4), ``labels`` int64 (N,), ``image_id``, ``index`` (cache
    position) and ``label_<name>`` floats (NaN when unknown). Collate boxes with a list-collate."""

    def __init__(self, cache: SliceCache, positions: Sequence[int] | np.ndarray | None = None, *,
                 augment: Any = None) -> None:
        self.cache = cache
        self.positions = np.arange(len(cache)) if positions is None else np.asarray(positions, dtype=np.int64)
        self.augment = augment
        labels = [c for c in cache.index.columns if c.startswith("label_") and c != "label_source"]
        self.labels = {c: cache.index[c].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
                       for c in labels}

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, k: int) -> dict[str, Any]:
        from medsift.preprocess.augment import as_sample

        pos = int(self.positions[int(k)])
        sample = as_sample(self.cache[pos])
        if self.augment is not None:
            sample = self.augment(sample)
        sample["index"] = pos
        for name, values in self.labels.items():
            sample[name] = float(values[pos])
        return sample


def cache_loader(cache: SliceCache, positions: Sequence[int] | np.ndarray | None = None, *, batch_size: int = 32,
                 shuffle: bool = True, seed: int = 0, num_workers: int = 0, drop_last: bool = False):
    """A ``DataLoader`` of whole-batch reads (see :class:`CacheBatchDataset`); shuffled with a
    ``torch.Generator`` seeded by ``seed`` (a new order each epoch, the same sequence for the same seed)."""
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    dataset = CacheBatchDataset(cache, positions)
    index = range(len(dataset))
    base = RandomSampler(index, generator=torch.Generator().manual_seed(seed)) if shuffle else SequentialSampler(index)
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers)


def to_float(images: torch.Tensor, cache: SliceCache) -> torch.Tensor:
    """uint8 (B, C, S, S) -> float32 normalised like :meth:`SliceCache.image` (0..1, then ``config.normalize``)."""
    import torch

    x = images.to(torch.float32).div_(255.0)
    mode = Normalize(cache.config.normalize)
    if mode is Normalize.MINMAX:
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
        return (x - lo) / (hi - lo).clamp_min(1e-6)
    if mode is Normalize.ZSCORE_IMAGE:
        m = x.mean(dim=(-2, -1), keepdim=True)
        s = x.std(dim=(-2, -1), keepdim=True, correction=0)
        return (x - m) / s.clamp_min(1e-6)
    if mode is Normalize.ZSCORE_DATASET:
        m = torch.tensor(cache.stats["mean"], dtype=x.dtype, device=x.device)[None, :, None, None]
        s = torch.tensor(cache.stats["std"], dtype=x.dtype, device=x.device)[None, :, None, None]
        return (x - m) / s.clamp_min(1e-6)
    return x

"""A resumable, seedable training sampler.

Each epoch's order is a pure function of ``(seed, epoch)``, so a run resumed at an epoch boundary draws
exactly the batches an uninterrupted run would. Every item is ``(index, sample_seed)``: the dataset seeds its
random augmentation from ``sample_seed``, which keeps augmentation independent of worker count and order.
Under DDP each rank takes a strided shard of the same permutation.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from medsift.engine.seeding import derive_seed
from medsift.errors import ConfigError


class EpochSampler:
    """Yields ``(index, sample_seed)`` pairs for one epoch (a ``torch.utils.data.Sampler`` by duck typing).

    Args:
        n: dataset length.
        seed: run seed.
        weights: (n,) non-negative sampling weights for balanced sampling with replacement, or None to shuffle.
        num_samples: samples per epoch (default n).
        rank, world: DDP shard.
    """

    def __init__(self, n: int, *, seed: int, weights: np.ndarray | None = None, num_samples: int | None = None,
                 rank: int = 0, world: int = 1) -> None:
        if n < 1:
            raise ConfigError(f"sampler needs at least one sample; got n={n}")
        self.n = n
        self.seed = seed
        self.weights = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
                raise ConfigError(f"sampler weights must be (n,) non-negative with a positive sum; got shape {w.shape}")
            self.weights = w / w.sum()
        self.num_samples = int(num_samples or n)
        self.rank, self.world = rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, sample seeds) of this rank for the current epoch."""
        rng = np.random.default_rng(derive_seed(self.seed, self.epoch, 17))
        if self.weights is None:
            rounds = -(-self.num_samples // self.n)  # more samples than items: successive permutations
            idx = np.concatenate([rng.permutation(self.n) for _ in range(rounds)])[: self.num_samples]
        else:
            idx = rng.choice(self.n, size=self.num_samples, replace=True, p=self.weights)
        seeds = rng.integers(0, 2**31 - 1, size=len(idx))
        per_rank = -(-len(idx) // self.world)
        pad = per_rank * self.world - len(idx)
        if pad:
            idx, seeds = np.r_[idx, idx[:pad]], np.r_[seeds, seeds[:pad]]
        return idx[self.rank::self.world], seeds[self.rank::self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        idx, seeds = self.order()
        return iter([(int(i), int(s)) for i, s in zip(idx, seeds)])

    def __len__(self) -> int:
        return -(-self.num_samples // self.world)

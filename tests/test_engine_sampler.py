"""EpochSampler: order is a pure function of (seed, epoch); balanced weights; DDP shards."""

from __future__ import annotations

import numpy as np

from medsift.engine.sampler import EpochSampler


def test_same_epoch_same_order_and_epochs_differ():
    a, b = EpochSampler(50, seed=1), EpochSampler(50, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    assert sorted(i for i, _ in a) == list(range(50))


def test_balanced_weights_even_out_classes():
    y = np.array([1] * 10 + [0] * 90)
    w = np.where(y == 1, 0.5 / 10, 0.5 / 90)
    s = EpochSampler(100, seed=0, weights=w, num_samples=4000)
    drawn = np.array([y[i] for i, _ in s])
    assert 0.45 < drawn.mean() < 0.55


def test_ranks_split_the_epoch_without_overlap():
    shards = [EpochSampler(10, seed=0, rank=r, world=2) for r in range(2)]
    items = [set(i for i, _ in s) for s in shards]
    assert items[0].isdisjoint(items[1]) and items[0] | items[1] == set(range(10))


def test_more_samples_than_items_walks_successive_permutations():
    from medsift.engine.sampler import EpochSampler

    s = EpochSampler(5, seed=3, num_samples=12)
    idx, seeds = s.order()
    assert len(idx) == 12 and len(s) == 12
    assert sorted(idx[:5].tolist()) == list(range(5)) and sorted(idx[5:10].tolist()) == list(range(5))
    assert len(set(seeds.tolist())) == 12

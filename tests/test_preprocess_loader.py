"""Whole-batch cache reads: same pixels as single reads, every slice once per epoch, seeded order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsift.preprocess.cache import build_cache
from medsift.preprocess.config import PreprocessConfig
from medsift.preprocess.loader import cache_loader, to_float

from preprocess_fixtures import npy_load_mask, npy_load_slice, write_slices


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    rng = np.random.default_rng(0)
    slices = []
    for k in range(10):
        mask = np.zeros((16, 16), bool)
        mask[k:k + 3, 2:5] = True
        slices.append({"image_id": f"i{k}", "patient_id": f"p{k // 3}", "slice_index": k % 3, "has_hu": False,
                       "array": rng.integers(0, 256, (16, 16)).astype(np.float32), "mask": mask,
                       "label_hemorrhage": k % 2})
    df = write_slices(root / "d", slices)
    return build_cache(df, root / "c", PreprocessConfig(size=16, normalize="zscore_dataset"),
                       load_slice=npy_load_slice, load_mask=npy_load_mask, progress=False, n_jobs=1)


def test_batch_reads_equal_single_reads(cache):
    images, masks = cache.read_batch([7, 2, 9])
    for row, pos in enumerate([7, 2, 9]):
        np.testing.assert_array_equal(images[row], cache.images[pos])
        np.testing.assert_array_equal(masks[row], cache.masks[pos])


def test_epoch_visits_each_slice_once_with_labels(cache):
    seen, labels = [], {}
    for batch in cache_loader(cache, batch_size=4, seed=0):
        assert batch["image"].dtype == torch.uint8 and batch["mask"].shape[1:] == (1, 16, 16)
        seen += batch["index"].tolist()
        labels.update(zip(batch["index"].tolist(), batch["label_hemorrhage"].tolist()))
    assert sorted(seen) == list(range(10))
    assert labels == {k: float(k % 2) for k in range(10)}


def test_order_is_seeded(cache):
    order = lambda seed: [i for b in cache_loader(cache, batch_size=3, seed=seed) for i in b["index"].tolist()]
    assert order(1) == order(1) and order(1) != order(2)


def test_to_float_matches_single_sample_normalisation(cache):
    batch = next(iter(cache_loader(cache, [3, 5], batch_size=2, shuffle=False)))
    x = to_float(batch["image"], cache)
    np.testing.assert_allclose(x[0].numpy(), cache.image(3), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x[1].numpy(), cache.image(5), rtol=1e-5, atol=1e-5)


def test_sample_dataset_applies_augment_and_keeps_labels(cache):
    from medsift.preprocess.augment import build_augment
    from medsift.preprocess.loader import CacheSampleDataset

    plain = CacheSampleDataset(cache, [4])[0]
    assert plain["image"].shape == (1, 16, 16) and plain["mask"].shape == (1, 16, 16)
    np.testing.assert_allclose(plain["image"].numpy(), cache.image(4))
    assert plain["label_hemorrhage"] == 0.0 and plain["index"] == 4
    flip = build_augment(task="segment", size=16, strength="none", hflip=1.0)
    flipped = CacheSampleDataset(cache, [4], augment=flip)[0]
    assert torch.equal(flipped["mask"], plain["mask"].flip(-1))

"""Whole-batch augmentation of the label tasks: deterministic per seed, exact where it must be, range-safe."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medsift.preprocess.augment import AugmentParams  # noqa: E402
from medsift.preprocess.batch_augment import BatchAugment  # noqa: E402
from medsift.tasks.data import Collate, batch_seed  # noqa: E402


def _batch(b: int = 6, c: int = 3, s: int = 32) -> "torch.Tensor":
    g = torch.Generator().manual_seed(0)
    x = torch.rand((b, c, s, s), generator=g) * 0.5
    x[:, :, 8:20, 4:12] = 0.9  # an off-centre bright block makes flips and warps visible
    return x


@pytest.mark.parametrize("strength", ["light", "default", "strong"])
def test_same_seed_same_batch_other_seed_other_batch(strength):
    x = _batch()
    aug = BatchAugment(strength)
    a, b, c = aug(x, 7), aug(x, 7), aug(x, 8)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_identity_params_leave_the_batch_unchanged():
    x = _batch()
    out = BatchAugment(params=AugmentParams())(x, 3)
    assert torch.allclose(out, x, atol=1e-6)


def test_certain_hflip_is_an_exact_mirror():
    x = _batch()
    out = BatchAugment(params=AugmentParams(hflip=1.0))(x, 3)
    assert torch.equal(out, x.flip(-1))


def test_rotation_of_90_degrees_matches_rot90_in_the_interior():
    x = _batch(b=1, s=33)
    params = AugmentParams(degrees=1e-9)  # warp path with a ~0 angle: the grid reproduces the image
    assert torch.allclose(BatchAugment(params=params)(x, 1), x, atol=1e-5)
    rot = BatchAugment(params=AugmentParams(rot90=1.0))(x, 1)
    assert any(torch.equal(rot, torch.rot90(x, k, dims=(-2, -1))) for k in (1, 2, 3))


def test_each_image_gets_its_own_parameters():
    x = _batch(b=16)
    x[:] = x[:1]  # 16 copies of one image
    out = BatchAugment("default")(x, 11)
    distinct = {tuple(np.round(o.flatten()[:64].numpy(), 4)) for o in out}
    assert len(distinct) > 8


def test_collate_augments_seeded_training_items_only():
    x = _batch(b=4)
    items = [{"image": (x[i] * 255).to(torch.uint8), "target": torch.zeros(1), "index": i} for i in range(4)]
    collate = Collate([0.0], [1.0], augment=BatchAugment(params=AugmentParams(hflip=1.0)))
    plain = collate(items)["image"]
    seeded = collate([{**it, "seed": 100 + i} for i, it in enumerate(items)])["image"]
    assert torch.equal(seeded, plain.flip(-1))
    assert batch_seed([1, 2]) != batch_seed([2, 1])


def test_uint8_lookup_table_matches_the_float_intensity_path():
    x8 = (_batch() * 255).round().to(torch.uint8)
    params = AugmentParams(brightness=0.1, contrast=(0.8, 1.2), gamma=(0.7, 1.4))
    aug = BatchAugment(params=params)
    via_lut, via_float = aug(x8, 5), aug(x8.float() / 255.0, 5)
    assert torch.allclose(via_lut, via_float, atol=1e-4)
    assert not torch.allclose(via_lut, x8.float() / 255.0, atol=1e-2)


def test_warp_pair_moves_mask_with_image_and_keeps_it_binary():
    img = torch.zeros(4, 1, 64, 64)
    img[:, :, 20:30, 36:50] = 1.0
    mask = (img > 0.5).float()
    aug = BatchAugment(params=AugmentParams(degrees=30.0, scale=(0.8, 1.25)))
    wi, wm = aug.warp_pair(img, mask, 9)
    assert set(torch.unique(wm).tolist()) <= {0.0, 1.0}
    assert not torch.equal(wm, mask)
    for i in range(4):  # the mask still covers the bright block of the warped image
        inside = wi[i, 0][wm[i, 0] > 0]
        assert float(inside.mean()) > 0.8
        assert float(wi[i, 0][wm[i, 0] == 0].mean()) < 0.1


def test_segment_collate_warps_training_batches_only():
    from medsift.engine.config import TrainConfig
    from medsift.tasks.segment import SegmentTask

    task = SegmentTask(TrainConfig(task="segment", segment={"rotate": 40.0, "scale": 0.2}))
    img = torch.zeros(1, 64, 64)
    img[:, 10:20, 30:60] = 1.0
    items = [{"image": img.clone(), "mask": (img > 0).float(), "index": i} for i in range(3)]
    plain = task.collate(items)
    warped = task.collate([{**it, "seed": 3 + i} for i, it in enumerate(items)])
    assert torch.equal(plain["image"][:, :1], img.expand(3, 1, 64, 64))
    assert not torch.equal(warped["mask"], plain["mask"])


def test_float_input_is_not_modified_in_place():
    x = _batch() * 2.0  # values above 1 would be clamped by an in-place clamp
    before = x.clone()
    BatchAugment(params=AugmentParams(noise_p=1.0, noise_sigma=0.1))(x, 4)
    BatchAugment(params=AugmentParams())(x, 4)
    assert torch.equal(x, before)


def test_mixup_blends_images_and_targets_with_one_seeded_weight():
    """Each mixed item is lam * itself + (1 - lam) * one partner, for the image and the target alike."""
    b = 8
    images = torch.arange(b, dtype=torch.uint8).view(b, 1, 1, 1).expand(b, 1, 4, 4).contiguous() * 30
    targets = [torch.tensor([float(i % 2), float(i)]) for i in range(b)]
    items = [{"image": images[i], "target": targets[i], "index": i, "seed": 7 + i} for i in range(b)]
    collate = Collate([0.0], [1.0], mixup=0.4)
    out = collate(items)
    again = collate(items)
    assert torch.equal(out["image"], again["image"]) and torch.equal(out["target"], again["target"])
    assert not torch.equal(collate([{**it, "seed": 50 + i} for i, it in enumerate(items)])["target"], out["target"])
    plain = Collate([0.0], [1.0])(items)
    # the second target is the item's index: it tells who was mixed with whom and with what weight
    mixed_index = out["target"][:, 1]
    assert not torch.equal(mixed_index, plain["target"][:, 1])
    for i in range(b):
        partner = [j for j in range(b) if j != i]
        fits = []
        for j in partner + [i]:
            lam = 1.0 if j == i else float((mixed_index[i] - j) / (i - j))
            if 0.5 <= lam <= 1.0 + 1e-6:
                want = lam * plain["image"][i] + (1 - lam) * plain["image"][j]
                fits.append(torch.allclose(out["image"][i], want, atol=1e-5)
                            and abs(float(out["target"][i, 0]) - (lam * (i % 2) + (1 - lam) * (j % 2))) < 1e-5)
        assert any(fits), i
    # evaluation batches (no seed) are never mixed
    unseeded = [{k: v for k, v in it.items() if k != "seed"} for it in items]
    assert torch.equal(collate(unseeded)["target"], plain["target"])


def test_mixup_keeps_unknown_targets_unknown():
    items = [{"image": torch.zeros(1, 4, 4, dtype=torch.uint8), "target": torch.tensor([1.0, float("nan")]),
              "index": 0, "seed": 1},
             {"image": torch.zeros(1, 4, 4, dtype=torch.uint8), "target": torch.tensor([0.0, 1.0]),
              "index": 1, "seed": 2}]
    out = Collate([0.0], [1.0], mixup=1.0)(items)
    assert torch.isnan(out["target"][0, 1])
    assert not torch.isnan(out["target"][:, 0]).any()

"""Augmentation: one draw moves image, mask and boxes identically; boxes rule; seeding; lesion crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsift.errors import ConfigError
from medsift.preprocess.augment import adjust_intensity, build_augment, filter_boxes


def _rect_sample(size: int = 64):
    mask = torch.zeros(1, size, size, dtype=torch.uint8)
    mask[0, 10:30, 20:50] = 1
    image = mask.to(torch.float32).repeat(3, 1, 1)
    return {"image": image, "mask": mask, "boxes": torch.tensor([[20.0, 10.0, 50.0, 30.0]]),
            "labels": torch.tensor([7])}


def _mask_box(mask: torch.Tensor) -> list[int] | None:
    ys, xs = torch.nonzero(mask.reshape(mask.shape[-2:]), as_tuple=True)
    if len(xs) == 0:
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def test_same_draw_moves_mask_and_boxes_identically():
    # geometric ops of "strong" (flips, rot90, 20 deg rotation, scale 0.8-1.2, translation 10%), no elastic
    aug = build_augment(task="detect", size=64, strength="strong", seed=0, elastic_p=0.0)
    compared = moved = 0
    for _ in range(25):
        out = aug(_rect_sample())
        expected = _mask_box(out["mask"])
        if expected is None or len(out["boxes"]) == 0:
            continue
        got = out["boxes"][0].tolist()
        assert np.allclose(got, expected, atol=2.0), (got, expected)
        compared += 1
        moved += not np.allclose(got, [20, 10, 50, 30], atol=1.0)
    assert compared >= 18 and moved >= 15


def test_image_follows_the_mask():
    aug = build_augment(task="segment", size=64, strength="strong", seed=1, elastic_p=0.3,
                        brightness=0.0, contrast=(1.0, 1.0), gamma=(1.0, 1.0), noise_p=0.0)
    for _ in range(10):
        out = aug(_rect_sample())
        img_fg = out["image"][0] > 0.5
        mask_fg = out["mask"][0] > 0
        inter = (img_fg & mask_fg).sum().item()
        union = (img_fg | mask_fg).sum().item()
        assert union == 0 or inter / union > 0.9


def test_mask_stays_binary_and_keeps_dtype():
    aug = build_augment(task="segment", size=32, strength="strong", seed=2)
    out = aug(_rect_sample())
    assert out["mask"].dtype == torch.uint8 and out["mask"].shape == (1, 32, 32)
    assert set(out["mask"].unique().tolist()) <= {0, 1}


def test_output_resized_and_boxes_scaled():
    aug = build_augment(task="detect", size=32, strength="none")
    out = aug(_rect_sample(64))
    assert out["image"].shape == (3, 32, 32)
    assert out["boxes"].tolist() == [[10.0, 5.0, 25.0, 15.0]]
    assert out["labels"].tolist() == [7]


def test_same_seed_same_result_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_augment(task="detect", size=64, strength="strong", seed=5)(_rect_sample())
    after = torch.rand(1)
    b = build_augment(task="detect", size=64, strength="strong", seed=5)(_rect_sample())
    c = build_augment(task="detect", size=64, strength="strong", seed=6)(_rect_sample())
    assert torch.equal(before, after)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
    assert not torch.equal(a["image"], c["image"])


@pytest.mark.parametrize("box, keep", [
    ([-30.0, 0.0, 10.0, 10.0], True),     # exactly 25% inside
    ([-31.0, 0.0, 10.0, 10.0], False),    # 24.4% inside
    ([60.0, 0.0, 67.0, 10.0], True),      # clipped to 4 x 10 px, 57% inside
    ([62.0, 0.0, 70.0, 10.0], False),     # clipped width 2 px < 4 px
    ([5.0, 5.0, 7.0, 7.0], True),         # tiny but fully inside: kept
    ([70.0, 70.0, 80.0, 80.0], False),    # fully outside
])
def test_boxes_rule_clips_and_drops(box, keep):
    clipped, kept = filter_boxes(torch.tensor([box]), (64, 64))
    assert bool(kept[0]) is keep
    assert clipped[0].tolist() == [min(max(v, 0.0), 64.0) for v in box]


def test_dropped_boxes_drop_their_labels():
    aug = build_augment(task="detect", size=64, strength="none")
    sample = _rect_sample()
    sample["boxes"] = torch.tensor([[20.0, 10.0, 50.0, 30.0], [-40.0, 0.0, 5.0, 5.0]])
    sample["labels"] = torch.tensor([1, 2])
    out = aug(sample)
    assert out["labels"].tolist() == [1] and out["boxes_kept"].tolist() == [0]


def test_intensity_twin_hand_values():
    x = torch.tensor([[[0.0, 0.5, 1.0]]])
    assert adjust_intensity(x, gamma=2.0).tolist() == [[[0.0, 0.25, 1.0]]]
    assert torch.allclose(adjust_intensity(x, contrast=2.0), torch.tensor([[[-0.5, 0.5, 1.5]]]))
    assert torch.allclose(adjust_intensity(x, brightness=0.1), torch.tensor([[[0.1, 0.6, 1.1]]]))


def test_lesion_crops_land_on_and_off_the_lesion():
    sample = _rect_sample(64)
    on = build_augment(task="segment", size=64, strength="none", crop=16, pos_fraction=1.0, seed=0)
    off = build_augment(task="segment", size=64, strength="none", crop=16, pos_fraction=0.0, seed=0)
    for _ in range(10):
        a, b = on(sample), off(sample)
        assert a["image"].shape == (3, 16, 16)
        assert a["mask"].sum() > 0
        assert torch.equal(a["mask"][0] > 0, a["image"][0] > 0.5)
        assert b["mask"].sum() < 16 * 16


def test_bad_options_fail_listing_valid_ones():
    with pytest.raises(ConfigError, match="task must be one of"):
        build_augment(task="cluster", size=64)
    with pytest.raises(ConfigError, match="unknown augment option.*elastic_p"):
        build_augment(task="detect", size=64, elastc_p=0.1)
    with pytest.raises(ConfigError, match="crop=.*segment"):
        build_augment(task="detect", size=64, crop=16)


def test_dataloader_workers_get_different_streams(monkeypatch):
    import torch.utils.data

    class Info:
        def __init__(self, wid):
            self.id, self.seed = wid, 1000 + wid

    aug = build_augment(task="detect", size=64, strength="strong", seed=3)
    outs = []
    for wid in (0, 1):
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda wid=wid: Info(wid))
        aug.set_random_state(3)
        outs.append(aug(_rect_sample())["image"])
    assert not torch.equal(outs[0], outs[1])

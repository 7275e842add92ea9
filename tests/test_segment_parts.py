"""Segmentation building blocks: models/losses registry, post-processing, hematoma derivation."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.errors import ConfigError
from medsift.label import hematoma as hm
from medsift.tasks import seg_postprocess as pp


def test_remove_small_components_keeps_only_large_ones():
    m = np.zeros((12, 12), bool)
    m[0, 0] = True                # 1 px
    m[2:4, 2:4] = True            # 4 px
    m[6:9, 6:9] = True            # 9 px
    out = pp.remove_small_components(m, min_pixels=4)
    assert out.sum() == 13 and not out[0, 0]


def test_remove_small_components_uses_8_connectivity():
    m = np.zeros((5, 5), bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True  # diagonal chain = one 3-px component
    assert pp.remove_small_components(m, min_pixels=3).sum() == 3


def test_postprocess_thresholds_and_keeps_inside_head():
    img = np.zeros((20, 20), np.uint8)
    img[4:16, 4:16] = 80           # the head
    prob = np.zeros((20, 20), np.float32)
    prob[6:9, 6:9] = 0.9           # inside the head
    prob[0:2, 0:2] = 0.9           # outside (air)
    prob[12, 12] = 0.4             # below threshold
    out = pp.postprocess(prob, img, config=pp.PostprocessConfig(threshold=0.5, min_pixels=2))
    assert out.sum() == 9 and out[7, 7] and not out[0, 0] and not out[12, 12]


def test_postprocess_inside_head_needs_the_image():
    prob = np.full((4, 4), 0.9, np.float32)
    with pytest.raises(ConfigError, match="image"):
        pp.postprocess(prob, None, config=pp.PostprocessConfig(inside_head=True))


def test_postprocess_config_rejects_bad_threshold():
    with pytest.raises(ConfigError, match="threshold"):
        pp.PostprocessConfig(threshold=1.5)


def test_model_registry_shapes_and_unknown_name():
    torch = pytest.importorskip("torch")
    from medsift.tasks.seg_models import build_model

    net = build_model("unet_lite", in_channels=3).eval()
    with torch.no_grad():
        y = net(torch.zeros(2, 3, 64, 48))
    assert tuple(y.shape) == (2, 1, 64, 48)
    with pytest.raises(ConfigError, match="unet_lite"):
        build_model("no_such_net")


@pytest.mark.parametrize("name", ["dice_bce", "dice_focal", "tversky", "dice_bce_cldice"])
def test_losses_lower_for_the_right_answer(name):
    torch = pytest.importorskip("torch")
    from medsift.tasks.seg_models import build_loss

    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:8, 4:8] = 1
    good = (target * 2 - 1) * 8
    bad = -good
    loss = build_loss(name)
    assert float(loss(good, target)) < float(loss(bad, target))


def _ring_case():
    img = np.full((48, 48), 60, np.uint8)
    img[18:30, 18:30] = 210                 # bright hematoma, 144 px
    rim = np.zeros((48, 48), bool)
    rim[14:34, 14:34] = True
    rim[18:30, 18:30] = False               # edema rim around it, 4 px thick
    return img, rim


def test_rim_interior_of_closed_rim_is_the_hole():
    _, rim = _ring_case()
    inside = hm.rim_interior(rim, closing_radius=0)
    assert inside.sum() == 144 and not (inside & rim).any()


def test_rim_interior_of_open_rim_uses_convex_hull():
    _, rim = _ring_case()
    rim[14:18, 22:26] = False               # a 4-px gap in the top side, wider than a closing of radius 1
    inside = hm.rim_interior(rim, closing_radius=1)
    assert inside[24, 24] and inside.sum() >= 144


def test_derive_hematoma_from_rim_recovers_bright_blob():
    img, rim = _ring_case()
    out = hm.derive_hematoma_mask(img, rim=rim, region="rim")
    truth = np.zeros_like(rim)
    truth[18:30, 18:30] = True
    assert (out == truth).all()


def test_derive_hematoma_from_box_excludes_rim_and_dark_tissue():
    img, rim = _ring_case()
    out = hm.derive_hematoma_mask(img, rim=rim, boxes=[[10, 10, 38, 38, "a"]], region="box")
    assert out.sum() == 144 and not (out & rim).any()


def test_derive_hematoma_empty_without_labels():
    img, _ = _ring_case()
    assert not hm.derive_hematoma_mask(img, rim=np.zeros((48, 48), bool)).any()


def test_derive_hematoma_rejects_unknown_region():
    img, rim = _ring_case()
    with pytest.raises(ConfigError, match="region"):
        hm.derive_hematoma_mask(img, rim=rim, region="brain")


def test_compare_masks_reports_dice():
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True
    b = np.zeros((4, 4), bool)
    b[:2, :1] = True
    out = hm.compare_masks([b], [a])
    assert out["dice_global"] == pytest.approx(2 * 2 / 6)


def test_fresh_model_starts_near_the_prior():
    torch = pytest.importorskip("torch")
    from medsift.tasks.seg_models import build_model

    torch.manual_seed(0)
    net = build_model("unet_tiny", in_channels=1, prior=0.01).eval()
    with torch.no_grad():
        p = torch.sigmoid(net(torch.rand(1, 1, 32, 32))).mean()
    assert float(p) < 0.1
    with pytest.raises(ConfigError, match="prior"):
        build_model("unet_tiny", prior=1.0)


@pytest.mark.parametrize("name", ["unet_tiny", "unet", "basic_unet", "segresnet"])
def test_a_crop_predicts_like_the_same_region_of_the_whole_slice(name):
    """Training runs on crops and inference on whole head boxes: in eval mode the network must not normalise
    per image (instance/group norm did, and a model trained on crops predicted nothing on whole slices)."""
    import torch

    from medsift.tasks.seg_models import build_model

    torch.manual_seed(0)
    model = build_model(name, in_channels=1).eval()
    whole = torch.rand(1, 1, 128, 128)
    whole[..., 40:80, 50:90] += 2.0  # a bright region makes per-image statistics differ from the crop's
    crop = whole[..., 32:96, 32:96].clone()
    with torch.inference_mode():
        a = model(whole)[..., 32:96, 32:96][..., 16:48, 16:48]
        b = model(crop)[..., 16:48, 16:48]
    assert float((a - b).abs().max()) < 0.02  # only the receptive field's reach past the crop border


def test_instance_norm_would_fail_the_crop_consistency_check():
    """The check above can fail: the same U-Net with MONAI's default instance norm disagrees crop vs whole."""
    import torch
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(16, 32, 64, 128, 256),
               strides=(2, 2, 2, 2), num_res_units=2).eval()
    whole = torch.rand(1, 1, 128, 128)
    whole[..., 40:80, 50:90] += 2.0
    with torch.inference_mode():
        a = net(whole)[..., 32:96, 32:96][..., 16:48, 16:48]
        b = net(whole[..., 32:96, 32:96].clone())[..., 16:48, 16:48]
    assert float((a - b).abs().max()) > 0.1


def test_soft_skeleton_and_cldice_equal_monai():
    torch = pytest.importorskip("torch")
    from monai.losses import SoftclDiceLoss
    from monai.losses.cldice import soft_skel

    from medsift.tasks.seg_models import soft_cldice_loss, soft_skeleton

    gen = torch.Generator().manual_seed(0)
    prob = torch.rand(3, 1, 40, 36, generator=gen)
    assert torch.allclose(soft_skeleton(prob, 6), soft_skel(prob, 6), atol=1e-6)
    logits = torch.randn(3, 1, 40, 36, generator=gen)
    target = (torch.rand(3, 1, 40, 36, generator=gen) > 0.7).float()
    ours = soft_cldice_loss(logits, target, iterations=6)
    theirs = SoftclDiceLoss(iter_=6, sigmoid=True)(logits, target)
    assert float(ours) == pytest.approx(float(theirs), abs=1e-5)


def test_cldice_punishes_a_broken_rim_more_than_a_thick_one():
    """Two wrong answers with about the same pixel error: a rim with a gap and a rim one pixel too thick.
    Dice barely tells them apart; clDice, made for thin structures, punishes the broken one more."""
    torch = pytest.importorskip("torch")
    from medsift.tasks.seg_models import soft_cldice_loss

    _, rim = _ring_case()
    target = torch.from_numpy(rim).float()[None, None]
    broken = target.clone()
    broken[..., 14:18, 20:34] = 0                   # 56 px of rim missing: the ring is open
    thick = target.clone()
    thick[..., 13, 14:34] = 1                       # 20 + 20 + 20 px of extra rim outside the ring
    thick[..., 14:34, 13] = 1
    thick[..., 34, 14:34] = 1

    def logits(mask):
        return (mask * 2 - 1) * 8

    assert float(soft_cldice_loss(logits(broken), target)) > float(soft_cldice_loss(logits(thick), target)) + 0.05

"""Segmentation metrics against hand-computed cases (empty masks included) and MONAI's HD95."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsift.errors import ConfigError
from medsift.metrics import segmentation as sm


def _square(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_counts_and_scores_hand_computed():
    # truth: 2x2 square (4 px); prediction: 2x3 box sharing 4 px -> tp 4, fp 2, fn 0, tn 100-6
    t = _square((10, 10), 2, 4, 2, 4)
    p = _square((10, 10), 2, 4, 2, 5)
    c = sm.confusion_counts(p, t)
    assert (c.tp, c.fp, c.fn, c.tn) == (4, 2, 0, 94)
    s = sm.scores_from_counts(c)
    assert s["dice"] == pytest.approx(8 / 10)
    assert s["iou"] == pytest.approx(4 / 6)
    assert s["sensitivity"] == pytest.approx(1.0)
    assert s["precision"] == pytest.approx(4 / 6)
    assert s["specificity"] == pytest.approx(94 / 96)


def test_empty_vs_empty_is_one_by_default_and_nan_on_request():
    z = np.zeros((5, 5), bool)
    assert sm.dice(z, z) == 1.0 and sm.iou(z, z) == 1.0
    assert math.isnan(sm.dice(z, z, empty=sm.EmptyConvention.NAN))


def test_prediction_on_empty_truth_scores_zero_dice():
    z = np.zeros((5, 5), bool)
    p = _square((5, 5), 0, 1, 0, 2)
    s = sm.segmentation_scores(p, z)
    assert s["dice"] == 0.0 and s["precision"] == 0.0
    assert s["sensitivity"] == 1.0  # nothing to find: 0/0 -> convention ONE
    assert s["specificity"] == pytest.approx(23 / 25)


def test_non_binary_mask_rejected_naming_values():
    with pytest.raises(ConfigError, match="binary"):
        sm.dice(np.array([[0, 3]]), np.array([[0, 1]]))


def test_shape_mismatch_rejected():
    with pytest.raises(ConfigError, match="shape"):
        sm.dice(np.zeros((3, 3)), np.zeros((3, 4)))


def test_hd95_of_shifted_square_hand_computed():
    # a 5x5 square shifted by 3 px to the right: every directed boundary distance is <= 3, most are 3 or less
    t = _square((20, 20), 5, 10, 5, 10)
    p = _square((20, 20), 5, 10, 8, 13)
    # full Hausdorff (percentile 100) of a pure 3-px shift is exactly 3
    assert sm.hausdorff95(p, t, percentile=100) == pytest.approx(3.0)
    assert sm.hausdorff95(t, t) == 0.0


def test_hd95_empty_conventions():
    z = np.zeros((6, 6), bool)
    assert sm.hausdorff95(z, z) == 0.0
    assert math.isnan(sm.hausdorff95(_square((6, 6), 1, 3, 1, 3), z))


def test_hd95_spacing_scales_distances():
    t = _square((20, 20), 5, 10, 5, 10)
    p = _square((20, 20), 5, 10, 8, 13)
    assert sm.hausdorff95(p, t, spacing=0.5, percentile=100) == pytest.approx(1.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hd95_matches_monai(seed):
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_hausdorff_distance

    rng = np.random.default_rng(seed)
    from scipy import ndimage

    t = ndimage.binary_dilation(rng.random((48, 40)) > 0.985, iterations=3)
    p = ndimage.binary_dilation(rng.random((48, 40)) > 0.985, iterations=2)
    ours = sm.hausdorff95(p, t, spacing=(0.7, 0.45))
    ref = compute_hausdorff_distance(torch.from_numpy(p[None, None].astype(np.float32)),
                                     torch.from_numpy(t[None, None].astype(np.float32)),
                                     include_background=True, percentile=95, spacing=(0.7, 0.45))
    assert ours == pytest.approx(float(ref.item()), rel=1e-5)


def test_lesion_volume_ml_hand_computed():
    m = np.zeros((3, 4, 4), bool)
    m[1, :2, :2] = True  # 4 voxels of 0.5 x 0.5 x 5 mm = 5 mm^3
    assert sm.lesion_volume_ml(m, spacing_mm=0.5, slice_thickness_mm=5.0) == pytest.approx(0.005)


def test_bland_altman_hand_computed():
    ba = sm.bland_altman([2.0, 4.0, 6.0], [1.0, 4.0, 5.0])  # diffs 1, 0, 1
    assert ba["bias"] == pytest.approx(2 / 3)
    assert ba["sd"] == pytest.approx(np.std([1, 0, 1], ddof=1))
    assert ba["loa_high"] == pytest.approx(2 / 3 + 1.96 * ba["sd"])


def test_slice_detection_counts_with_min_size():
    c = sm.slice_detection_counts([0, 3, 10, 12], [0, 5, 0, 7], min_pixels=5)
    # slice 1: 3 px < 5 -> negative but truth positive -> fn; slice 2: fp; slice 3: tp; slice 0: tn
    assert c == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}


def _three_views_case():
    # patient A: two slices, lesion on slice 0 (4 px), predicted half of it; slice 1 empty/empty
    # patient B: one slice, no lesion, 2 false-positive pixels
    shape = (6, 6)
    t = [_square(shape, 0, 2, 0, 2), np.zeros(shape, bool), np.zeros(shape, bool)]
    p = [_square(shape, 0, 2, 0, 1), np.zeros(shape, bool), _square(shape, 5, 6, 0, 2)]
    return p, t, ["A", "A", "B"], [0, 1, 0]


def test_summary_three_views_hand_computed():
    p, t, pids, sidx = _three_views_case()
    table = sm.per_image_table(p, t)
    pt = sm.per_patient_table(p, t, pids, sidx)
    out = sm.summarize(table, patient_table=pt)
    # global: tp 2, fp 2, fn 2 -> dice 4/8
    assert out["dice_global"] == pytest.approx(0.5)
    # per image over images with lesion: only image 0, dice 2*2/(2+4) = 2/3
    assert out["dice_per_image"] == pytest.approx(2 / 3)
    # per patient over patients with lesion: only A (3D tp 2, fp 0, fn 2) -> 2/3
    assert out["dice_per_patient"] == pytest.approx(2 / 3)
    assert out["n_images"] == 3 and out["n_images_with_lesion"] == 1
    assert out["n_patients"] == 2 and out["n_patients_with_lesion"] == 1
    # specificity per image is over all images: (1, 1, 34/36 -> 1 - 2/36)
    assert out["specificity_per_image"] == pytest.approx((32 / 32 + 1 + 34 / 36) / 3)


def test_per_patient_volume_when_spacing_known():
    p, t, pids, sidx = _three_views_case()
    pt = sm.per_patient_table(p, t, pids, sidx, spacing_mm=[0.5] * 3, slice_thickness_mm=[5.0] * 3)
    a = pt.set_index("patient_id").loc["A"]
    assert a["volume_true_ml"] == pytest.approx(4 * 0.25 * 5 / 1000)
    assert a["volume_pred_ml"] == pytest.approx(2 * 0.25 * 5 / 1000)


def test_stack_patient_orders_by_slice_index():
    a, b = np.zeros((2, 2), bool), np.ones((2, 2), bool)
    vol = sm.stack_patient([b, a], [5, 2])
    assert not vol[0].any() and vol[1].all()


def test_report_has_contract_keys_and_intervals_bracket_estimate():
    preds, targets, pids, sidx = [], [], [], []
    for k in range(12):
        t = _square((16, 16), 4, 8 + k % 4, 4, 9)
        p = _square((16, 16), 4 + k % 3, 9, 4, 8 + k % 2)
        preds.append(p), targets.append(t), pids.append(f"P{k // 2}"), sidx.append(k % 2)
    table = sm.per_image_table(preds, targets)
    pt = sm.per_patient_table(preds, targets, pids, sidx)
    out = sm.segmentation_report(table, pids, patient_table=pt, n_boot=200, seed=1)
    for key in ("dice_global", "iou_global", "sensitivity_global", "specificity_global", "dice_per_image",
                "dice_per_patient", "hd95", "nsd_global", "nsd_per_image", "nsd_per_patient"):
        assert out[f"{key}_ci_low"] <= out[key] <= out[f"{key}_ci_high"], key
    assert out["n_images"] == 12 and out["n_patients"] == 6
    assert out["dice_global_ci_low"] < out["dice_global_ci_high"]


def test_hd95_matches_monai_for_masks_touching_the_border_in_3d():
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_hausdorff_distance

    t = np.zeros((4, 20, 24), bool)
    t[0:2, 0:6, 3:9] = True          # touches the first slice and the top edge
    p = np.zeros((4, 20, 24), bool)
    p[1:4, 2:9, 5:12] = True
    ours = sm.hausdorff95(p, t, spacing=(5.0, 0.5, 0.5))
    ref = compute_hausdorff_distance(torch.from_numpy(p[None, None].astype(np.float32)),
                                     torch.from_numpy(t[None, None].astype(np.float32)),
                                     include_background=True, percentile=95, spacing=(5.0, 0.5, 0.5))
    assert ours == pytest.approx(float(ref.item()), rel=1e-5)


def test_nsd_of_shifted_square_hand_computed():
    # 5x5 squares 3 px apart; their surfaces are 16-px rings. Brute force: the share of both rings' pixels whose
    # nearest pixel of the other ring is at most 2 px away
    t = _square((20, 20), 5, 10, 5, 10)
    p = _square((20, 20), 5, 10, 8, 13)
    d_tp = [min(math.hypot(r - r2, c - c2) for r2, c2 in zip(*np.nonzero(sm.surface(p))))
            for r, c in zip(*np.nonzero(sm.surface(t)))]
    d_pt = [min(math.hypot(r - r2, c - c2) for r2, c2 in zip(*np.nonzero(sm.surface(t))))
            for r, c in zip(*np.nonzero(sm.surface(p)))]
    expected = (sum(d <= 2 for d in d_tp) + sum(d <= 2 for d in d_pt)) / (len(d_tp) + len(d_pt))
    assert 0.3 < expected < 0.9
    assert sm.surface_dice(p, t) == pytest.approx(expected)
    assert sm.surface_dice(p, t, tolerance=3.0) == 1.0   # a pure 3-px shift: everything within 3 px
    assert sm.surface_dice(t, t, tolerance=0.0) == 1.0


def test_nsd_empty_conventions_and_pooling():
    z = np.zeros((6, 6), bool)
    sq = _square((6, 6), 1, 4, 1, 4)
    assert sm.surface_dice(z, z) == 1.0 and sm.surface_dice(sq, z) == 0.0 and sm.surface_dice(z, sq) == 0.0
    table = sm.per_image_table([sq, z, z], [sq, sq, z])
    out = sm.summarize(table)
    # image 1: all 8 surface px hit twice (16/16); image 2: 8 surface px, none hit; image 3: no surface
    assert out["nsd_global"] == pytest.approx(16 / 24)
    assert out["nsd_per_image"] == pytest.approx(0.5)   # mean over the two lesion images


@pytest.mark.parametrize("seed", [0, 1])
def test_nsd_matches_monai(seed):
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_surface_dice
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    t = ndimage.binary_dilation(rng.random((48, 40)) > 0.985, iterations=3)
    p = ndimage.binary_dilation(rng.random((48, 40)) > 0.985, iterations=2)

    def onehot(m):
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

    ref = compute_surface_dice(onehot(p), onehot(t), class_thresholds=[2.0], include_background=False)
    assert sm.surface_dice(p, t, tolerance=2.0) == pytest.approx(float(ref.item()), rel=1e-5)

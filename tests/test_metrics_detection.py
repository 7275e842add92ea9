"""Detection metrics on hand-computed toy cases: COCO AP with 101-point interpolation, FROC, image table."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.metrics.detection import coco_map, froc, image_level, image_level_metrics, threshold_for_recall

E = np.zeros((0, 4))


def test_perfect_detection_has_ap_one():
    gt = {"a": np.array([[10, 10, 50, 50]]), "b": E}
    r = coco_map(gt, {"a": np.array([[10, 10, 50, 50]])}, {"a": np.array([0.9])})
    assert r["map50"] == pytest.approx(1.0) and r["map50_95"] == pytest.approx(1.0)


def test_false_positive_ranked_first_halves_precision():
    # 2 GT boxes; predictions ranked: FP (0.9), TP (0.8). Recall reaches 0.5 at precision 0.5.
    # COCO 101-point interpolation: recall points 0.00..0.50 (51 points) have precision 0.5 -> AP = 25.5/101
    gt = {"a": np.array([[10, 10, 50, 50]]), "b": np.array([[100, 100, 140, 140]]), "c": E}
    pred = {"a": np.array([[10, 10, 50, 50]]), "c": np.array([[0, 0, 30, 30]])}
    scores = {"a": np.array([0.8]), "c": np.array([0.9])}
    assert coco_map(gt, pred, scores)["map50"] == pytest.approx(51 * 0.5 / 101, abs=1e-6)


def test_loose_box_counts_at_05_but_not_at_higher_iou():
    gt = {"a": np.array([[0, 0, 100, 100]])}
    pred = {"a": np.array([[0, 0, 100, 160]])}  # IoU = 100*100 / (100*160) = 0.625
    r = coco_map(gt, pred, {"a": np.array([0.7])})
    assert r["map50"] == pytest.approx(1.0)
    # thresholds 0.50, 0.55, 0.60 hit; 0.65..0.95 (7 of 10) miss -> mean 0.3
    assert r["map50_95"] == pytest.approx(0.3, abs=1e-6)


def test_froc_counts_false_positives_per_image():
    gt = {"a": np.array([[0, 0, 10, 10]]), "b": np.array([[0, 0, 10, 10]]), "c": E, "d": E}
    pred = {"a": np.array([[0, 0, 10, 10]]), "c": np.array([[5, 5, 9, 9], [1, 1, 2, 2]]),
            "b": np.array([[0, 0, 10, 10]])}
    scores = {"a": np.array([0.9]), "c": np.array([0.8, 0.7]), "b": np.array([0.6])}
    r = froc(gt, pred, scores, fp_rates=(0.25, 0.5))
    # 4 images: 0.25 FP/image allows 1 FP -> only hit 'a' counted before the 2nd FP -> sens 0.5;
    # 0.5 FP/image allows 2 FPs -> both hits -> sens 1.0
    assert r["froc_0_25fp"] == pytest.approx(0.5)
    assert r["froc_0_5fp"] == pytest.approx(1.0)


def test_image_level_table_includes_images_with_no_box():
    gt = {"a": np.array([[0, 0, 10, 10]]), "b": E, "c": E, "d": np.array([[1, 1, 5, 5]])}
    scores = {"a": np.array([0.9, 0.2]), "b": np.array([0.6]), "c": np.array([]), "d": np.array([0.3])}
    t = image_level(gt, scores, threshold=0.5)
    assert t.set_index("image_id")["outcome"].to_dict() == {"a": "TP", "b": "FP", "c": "TN", "d": "FN"}
    m = image_level_metrics(t)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 1)
    assert m["image_recall"] == pytest.approx(0.5) and m["image_specificity"] == pytest.approx(0.5)


def test_threshold_for_recall_keeps_target_recall():
    truth = [1, 1, 1, 1, 0, 0]
    s = [0.9, 0.8, 0.4, 0.1, 0.5, 0.05]
    thr = threshold_for_recall(truth, s, target_recall=0.75)
    assert thr == pytest.approx(0.4)
    assert np.mean(np.asarray(s)[:4] >= thr) >= 0.75

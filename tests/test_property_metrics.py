"""Property-based checks (hypothesis) of metric invariants: Dice/IoU, ROC AUC, box IoU, COCO mAP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medsift.metrics.classification import pr_auc, roc_auc
from medsift.metrics.detection import coco_map
from medsift.metrics.segmentation import EmptyConvention, dice, iou
from medsift.tasks.det_evaluate import iou_matrix

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@st.composite
def mask_pairs(draw):
    shape = draw(shapes)
    return draw(arrays(bool, shape)), draw(arrays(bool, shape))


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(2, 40))
    y = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    s = draw(arrays(np.int64, n, elements=st.integers(0, 20)))  # integers: ties are possible, exact in float
    return y, s.astype(float)


@st.composite
def boxes(draw, n_min=0, n_max=6):
    n = draw(st.integers(n_min, n_max))
    out = []
    for _ in range(n):
        x1, y1 = draw(st.integers(0, 200)), draw(st.integers(0, 200))
        w, h = draw(st.integers(1, 80)), draw(st.integers(1, 80))
        out.append([float(x1), float(y1), float(x1 + w), float(y1 + h)])
    return np.asarray(out, float).reshape(-1, 4)


@FAST
@given(mask_pairs())
def test_dice_is_symmetric_and_in_unit_interval(pair):
    a, b = pair
    d = dice(a, b)
    assert d == dice(b, a)
    assert 0.0 <= d <= 1.0


@FAST
@given(arrays(bool, shapes))
def test_dice_and_iou_of_a_mask_with_itself_are_one(mask):
    assert dice(mask, mask) == 1.0
    assert iou(mask, mask) == 1.0


@FAST
@given(mask_pairs())
def test_dice_and_iou_agree(pair):
    a, b = pair
    j = iou(a, b, empty=EmptyConvention.NAN)
    d = dice(a, b, empty=EmptyConvention.NAN)
    if np.isnan(j):
        assert np.isnan(d) and not a.any() and not b.any()
    else:
        assert d == pytest.approx(2 * j / (1 + j))


@FAST
@given(labelled_scores(), st.sampled_from(["exp", "affine", "cube"]))
def test_auc_is_invariant_under_a_strictly_increasing_transform(ys, kind):
    y, s = ys
    f = {"exp": lambda v: np.exp(v / 5.0), "affine": lambda v: 3.0 * v - 7.0, "cube": lambda v: (v - 10.0) ** 3}[kind]
    a, b = roc_auc(y, s), roc_auc(y, f(s))
    if np.isnan(a):
        assert np.isnan(b) and len(set(y.tolist())) == 1
    else:
        assert b == pytest.approx(a, abs=1e-12)
        assert pr_auc(y, f(s)) == pytest.approx(pr_auc(y, s), abs=1e-12)


@FAST
@given(labelled_scores())
def test_auc_of_negated_scores_is_one_minus_auc(ys):
    y, s = ys
    a = roc_auc(y, s)
    if not np.isnan(a):
        assert 0.0 <= a <= 1.0
        assert roc_auc(y, -s) == pytest.approx(1.0 - a, abs=1e-12)


@FAST
@given(boxes(), boxes())
def test_box_iou_is_symmetric_bounded_and_one_on_itself(a, b):
    m = iou_matrix(a, b)
    assert m.shape == (len(a), len(b))
    np.testing.assert_allclose(m, iou_matrix(b, a).T, atol=1e-12)
    assert ((m >= 0) & (m <= 1 + 1e-12)).all()
    if len(a):
        np.testing.assert_allclose(np.diag(iou_matrix(a, a)), 1.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(boxes(n_min=1, n_max=4), min_size=1, max_size=4))
def test_map_of_ground_truth_as_predictions_is_one(per_image):
    gt = {f"img{k}": b.tolist() for k, b in enumerate(per_image)}
    scores = {i: np.linspace(1.0, 0.5, len(b)) for i, b in gt.items()}
    result = coco_map(gt, gt, scores)
    assert result["map50"] == pytest.approx(1.0)
    assert result["map50_95"] == pytest.approx(1.0)

"""Agreement statistics against hand-computed tables, STAPLE on a toy case, box matching."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.label.agreement import cohen_kappa, fleiss_kappa_from_counts, fleiss_kappa, majority_vote, match_boxes, staple
from medsift.label.consensus import compare_label_sets
from medsift.manifest import new_manifest


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) worked example as reproduced on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa_from_counts(counts) == pytest.approx(0.2099, abs=1e-3)


def test_cohen_kappa_hand_computed():
    # 2x2 table: both yes 20, both no 15, a-yes/b-no 5, a-no/b-yes 10 (n=50)
    a = [1] * 20 + [0] * 15 + [1] * 5 + [0] * 10
    b = [1] * 20 + [0] * 15 + [0] * 5 + [1] * 10
    po, pe = 35 / 50, (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    assert cohen_kappa(a, b) == pytest.approx((po - pe) / (1 - pe))


def test_fleiss_equals_one_for_perfect_agreement_and_from_ratings():
    ratings = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 1]])
    assert fleiss_kappa(ratings) == pytest.approx(1.0)


def test_majority_vote_with_ties_positive():
    assert majority_vote(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]])).tolist() == [1, 0, 1, 0]
    assert majority_vote(np.array([[1, 0]])).tolist() == [1]


def test_staple_recovers_truth_from_two_good_and_one_bad_rater():
    truth = np.zeros((32, 32), bool)
    truth[8:24, 8:24] = True
    good1, good2 = truth.copy(), truth.copy()
    good1[8, 8:12] = False
    good2[23, 20:24] = False
    bad = np.zeros_like(truth)
    bad[0:10, 0:10] = True
    res = staple([good1, good2, bad])
    assert (res.consensus == truth).mean() > 0.98
    assert res.sensitivity[2] < min(res.sensitivity[:2])


def test_box_matching_is_one_to_one_by_iou():
    a = [[0, 0, 10, 10, "h"], [50, 50, 60, 60, "h"]]
    b = [[1, 1, 11, 11, "h"], [100, 100, 110, 110, "h"]]
    m = match_boxes(a, b)
    assert [(p[0], p[1]) for p in m.pairs] == [(0, 0)]
    assert m.pairs[0][2] == pytest.approx(81 / 119)
    assert m.unmatched_a == [1] and m.unmatched_b == [1]
    assert m.f1 == pytest.approx(0.5)


def test_compare_label_sets_finds_the_disagreement():
    def ws(labels, boxes):
        return new_manifest([{"image_id": f"i{k}", "patient_id": "p", "image_path": f"/x/i{k}.png", "format": "png",
                              "label_hemorrhage": v, "boxes": b} for k, (v, b) in enumerate(zip(labels, boxes))])
    box = [[0, 0, 10, 10, "h"]]
    a = ws([1, 0, 1, 0], [box, [], box, []])
    b = ws([1, 0, 0, 0], [box, [], [], []])
    rep = compare_label_sets([a, b], ["ann1", "ann2"], masks=False)
    assert rep.summary["label_hemorrhage"]["percent_agreement"] == pytest.approx(0.75)
    kinds = rep.disagreements.groupby("kind")["image_id"].apply(list).to_dict()
    assert kinds == {"boxes": ["i2"], "label_hemorrhage": ["i2"]}
    assert rep.consensus["label_hemorrhage"].tolist() == [1, 0, 1, 0]  # tie -> positive

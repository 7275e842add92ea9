"""Pseudo labels: confidence rule, never over human labels or held-out splits, rounds update or withdraw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medsift.errors import ConfigError
from medsift.label.pseudo import apply_pseudo_labels, confident_labels
from medsift.manifest import new_manifest


def _df():
    rows = [
        {"image_id": "h0", "split": "train", "label_hemorrhage": 0, "label_source": "annotation"},
        {"image_id": "u1", "split": "train", "label_hemorrhage": None},
        {"image_id": "u2", "split": "train", "label_hemorrhage": None},
        {"image_id": "t3", "split": "test", "label_hemorrhage": None},
        {"image_id": "u4", "split": None, "label_hemorrhage": None},
    ]
    return new_manifest([{"patient_id": "p", "image_path": f"/x/{r['image_id']}.png", "format": "png", **r}
                         for r in rows])


def test_confident_labels_threshold_and_decisions():
    labels, conf, ok = confident_labels(np.array([[0.97], [0.5], [0.02], [0.94]]), min_confidence=0.95)
    assert labels[:, 0].tolist() == [1, 1, 0, 1]
    assert np.allclose(conf, [0.97, 0.5, 0.98, 0.94])
    assert ok.tolist() == [True, False, True, False]


def test_min_confidence_out_of_range_fails():
    with pytest.raises(ConfigError, match="min_confidence"):
        confident_labels(np.array([[0.9]]), min_confidence=0.3)


def test_human_labels_and_test_rows_never_touched():
    df = _df()
    ids = ["h0", "u1", "u2", "t3", "u4"]
    new, added = apply_pseudo_labels(df, ids, np.array([[0.99], [0.99], [0.6], [0.99], [0.01]]), ("hemorrhage",),
                                     min_confidence=0.95, round_=1)
    assert added == 2
    assert new["label_hemorrhage"].tolist()[:1] == [0] and new["label_source"].iloc[0] == "annotation"
    assert new["label_hemorrhage"].iloc[1] == 1 and new["label_source"].iloc[1] == "pseudo"
    assert pd.isna(new["label_hemorrhage"].iloc[2])  # 0.6 is not confident
    assert pd.isna(new["label_hemorrhage"].iloc[3])  # test split: never pseudo-labelled
    assert new["label_hemorrhage"].iloc[4] == 0 and new["pseudo_confidence"].iloc[4] == pytest.approx(0.99)
    assert new["pseudo_round"].dropna().tolist() == [1, 1]
    assert pd.isna(df["label_hemorrhage"].iloc[1])  # input not modified


def test_later_round_updates_and_withdraws_pseudo_labels():
    df = _df()
    r1, _ = apply_pseudo_labels(df, ["u1", "u4"], np.array([[0.99], [0.99]]), ("hemorrhage",),
                                min_confidence=0.95, round_=1)
    r2, added = apply_pseudo_labels(r1, ["u1", "u4"], np.array([[0.02], [0.7]]), ("hemorrhage",),
                                    min_confidence=0.95, round_=2)
    assert added == 1
    assert r2["label_hemorrhage"].iloc[1] == 0 and r2["pseudo_round"].iloc[1] == 2
    assert pd.isna(r2["label_hemorrhage"].iloc[4]) and pd.isna(r2["label_source"].iloc[4])


def test_box_derived_human_labels_become_explicit():
    rows = [{"image_id": "a", "annotation_path": "/x/a.xml", "boxes": [[1, 1, 5, 5, "a"]]},
            {"image_id": "b", "annotation_path": "/x/b.xml", "boxes": []},
            {"image_id": "c"}]
    df = new_manifest([{"patient_id": "p", "image_path": f"/x/{r['image_id']}.png", "format": "png", **r}
                       for r in rows])
    new, added = apply_pseudo_labels(df, ["a", "b", "c"], np.array([[0.01], [0.99], [0.99]]), ("hemorrhage",),
                                     min_confidence=0.9, round_=1)
    assert added == 1
    assert new["label_hemorrhage"].tolist() == [1, 0, 1]
    assert new["label_source"].fillna("").tolist() == ["", "", "pseudo"]

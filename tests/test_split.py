"""Patient-level splits: no patient in two splits, stratification, duplicates kept together, leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medsift.errors import LeakageError
from medsift.manifest import new_manifest
from medsift.split import (assign_splits, check_leakage, duplicate_pairs_from_findings, patient_groups,
                           split_balance)


def _manifest(n_patients: int, *, seed: int = 0, pos_rate: float = 0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        positive = rng.random() < pos_rate
        for s in range(int(rng.integers(2, 8))):
            rows.append({"image_id": f"{p:03d}_{s:02d}", "patient_id": f"{p:03d}", "image_path": f"/d/{p}_{s}.png",
                         "format": "png", "slice_index": s,
                         "label_hemorrhage": int(positive and s % 2 == 0)})
    return new_manifest(rows)


@pytest.fixture(scope="module")
def small():
    return _manifest(20, seed=1)


def test_no_patient_sits_in_two_splits(small):
    out = assign_splits(small, seed=0)
    per_patient = out.groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all()
    per_fold = out[out["split"] != "test"].groupby("patient_id")["fold"].nunique()
    assert (per_fold == 1).all()


def test_split_sizes_follow_the_fractions(small):
    out = assign_splits(small, test=0.2, val=0.1, seed=0)
    patients = out.groupby("split")["patient_id"].nunique()
    assert patients.to_dict() == {"test": 4, "train": 14, "val": 2}


def test_stratification_within_five_points():
    df = _manifest(200, seed=2, pos_rate=0.35)
    out = assign_splits(df, test=0.2, val=0.1, folds=5, seed=7)
    bal = split_balance(out)
    overall = bal.loc["all", "pct_pos_patients"]
    for split in ("train", "val", "test"):
        assert abs(bal.loc[split, "pct_pos_patients"] - overall) <= 5.0
    folds = out[out["fold"].notna()].groupby("patient_id").agg(fold=("fold", "first"),
                                                               pos=("label_hemorrhage", "max"))
    fold_rates = 100 * folds.groupby("fold")["pos"].mean()
    non_test = 100 * folds["pos"].mean()
    assert (abs(fold_rates - non_test) <= 5.0).all()


def test_same_seed_same_split_other_seed_differs(small):
    a = assign_splits(small, seed=3)
    b = assign_splits(small, seed=3)
    c = assign_splits(small, seed=4)
    assert a["split"].equals(b["split"]) and a["fold"].equals(b["fold"])
    assert not a["split"].equals(c["split"])


def test_excluded_and_unreadable_rows_get_no_split(small):
    df = small.copy()
    df.loc[0, "excluded"] = True
    df.loc[1, "status"] = "unreadable"
    out = assign_splits(df, seed=0)
    assert out.loc[0, "split"] is pd.NA and out.loc[1, "split"] is pd.NA
    assert out.loc[2:, "split"].notna().all()


def test_duplicate_pairs_merge_patients_into_one_group(small):
    pairs = [("000_00", "005_01"), ("005_00", "011_00")]
    groups = patient_groups(small, pairs)
    linked = groups[small["patient_id"].isin(["000", "005", "011"])].unique()
    assert linked.tolist() == ["000"]
    for seed in range(10):
        out = assign_splits(small, seed=seed, duplicate_pairs=pairs)
        assert out[small["patient_id"].isin(["000", "005", "011"])]["split"].nunique() == 1
        check_leakage(out, duplicate_pairs=pairs)


def test_leakage_check_names_the_patient():
    df = _manifest(3)
    df["split"] = "train"
    df.loc[df.index[-1], "split"] = "val"
    leaked = df.loc[df.index[-1], "patient_id"]
    with pytest.raises(LeakageError, match=f"{leaked} in \\['train', 'val'\\]"):
        check_leakage(df)


def test_leakage_check_names_the_duplicate_pair():
    df = _manifest(4)
    df["split"] = np.where(df["patient_id"] == "000", "test", "train")
    with pytest.raises(LeakageError, match=r"000_00 \(test\) ~ 001_00 \(train\)"):
        check_leakage(df, duplicate_pairs=[("000_00", "001_00")])


def test_random_image_split_is_caught(small):
    df = small.copy()
    df["split"] = np.random.default_rng(0).choice(["train", "val", "test"], size=len(df))
    with pytest.raises(LeakageError, match="patient\\(s\\) in more than one split"):
        check_leakage(df)


def test_duplicate_pairs_come_from_findings():
    findings = pd.DataFrame({"image_id": ["a", "b", "c"], "check": ["duplicate", "duplicate", "blank"],
                             "severity": ["warning"] * 3, "score": [1, 1, 1], "detail": ["", "", ""],
                             "related_id": ["x", None, "y"]})
    assert duplicate_pairs_from_findings(findings) == [("a", "x")]


def test_balance_counts_images_and_patients():
    rows = [{"image_id": f"{p}_{s}", "patient_id": p, "image_path": "/x", "format": "png",
             "label_hemorrhage": lab, "split": split}
            for p, split, labs in (("a", "train", [1, 0]), ("b", "train", [0, 0]), ("c", "test", [1, 1]))
            for s, lab in enumerate(labs)]
    bal = split_balance(new_manifest(rows))
    assert bal.loc["train", ["patients", "images", "pos_images", "pos_patients"]].tolist() == [2, 4, 1, 1]
    assert bal.loc["train", "pct_pos_images"] == pytest.approx(25.0)
    assert bal.loc["test", "pct_pos_patients"] == pytest.approx(100.0)
    assert bal.loc["all", "images"] == 6


def test_bins_keep_slice_balance_when_every_patient_is_positive():
    # like PHE-SICH: every patient has some positive slices, in very different shares
    rng = np.random.default_rng(0)
    rows = []
    for p in range(80):
        n, share = int(rng.integers(15, 40)), rng.uniform(0.02, 0.6)
        rows += [{"image_id": f"{p}_{s}", "patient_id": str(p), "image_path": "/x", "format": "png",
                  "label_hemorrhage": int(s < share * n)} for s in range(n)]
    bal = split_balance(assign_splits(new_manifest(rows), seed=0, bins=3))
    for split in ("train", "val", "test"):
        assert abs(bal.loc[split, "pct_pos_images"] - bal.loc["all", "pct_pos_images"]) <= 5.0

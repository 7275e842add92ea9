"""nnU-Net v2 naming, dataset.json required keys and label rules, splits_final.json from folds; MONAI datalist."""

from __future__ import annotations

import pytest

from medsift.errors import ConfigError, FormatError
from medsift.formats.monai_datalist import build_datalist
from medsift.formats.nnunet import (REQUIRED_DATASET_JSON_KEYS, case_identifier, dataset_folder_name, dataset_json,
                                    image_file_name, label_file_name, split_from_sets, splits_from_folds)


def test_names_follow_case_and_channel_convention():
    assert image_file_name("0004_15", ".png") == "0004_15_0000.png"
    assert label_file_name("0004_15", ".nii.gz") == "0004_15.nii.gz"
    assert dataset_folder_name(7, "PHE SICH") == "Dataset007_PHE-SICH"
    assert case_identifier("rsna__ID 1/2") == "rsna__ID-1-2"


def test_dataset_id_out_of_range_is_rejected():
    with pytest.raises(ConfigError, match="1..999"):
        dataset_folder_name(1000, "x")


def test_dataset_json_has_required_keys_with_string_channel_ids():
    meta = dataset_json(channel_names={0: "CT"}, labels={"lesion": 1, "background": 0}, num_training=3,
                        file_ending=".nii.gz")
    assert set(REQUIRED_DATASET_JSON_KEYS) <= set(meta)
    assert meta["channel_names"] == {"0": "CT"}
    assert list(meta["labels"].items()) == [("background", 0), ("lesion", 1)]


@pytest.mark.parametrize("labels", [{"background": 1, "lesion": 0}, {"background": 0, "lesion": 2}])
def test_labels_must_be_consecutive_from_background_zero(labels):
    with pytest.raises(FormatError, match="consecutive"):
        dataset_json(channel_names={0: "CT"}, labels=labels, num_training=1, file_ending=".png")


def test_lossy_file_ending_is_rejected():
    with pytest.raises(FormatError, match="file_ending"):
        dataset_json(channel_names={0: "CT"}, labels={"background": 0}, num_training=1, file_ending=".jpg")


def test_splits_from_folds_validate_on_each_fold():
    splits = splits_from_folds({"a": 0, "b": 1, "c": 0, "d": 2})
    assert splits == [{"train": ["b", "d"], "val": ["a", "c"]},
                      {"train": ["a", "c", "d"], "val": ["b"]},
                      {"train": ["a", "b", "c"], "val": ["d"]}]


def test_one_fold_is_not_cross_validation():
    with pytest.raises(FormatError, match="at least 2 folds"):
        splits_from_folds({"a": 0, "b": 0})


def test_split_from_sets_rejects_overlap():
    assert split_from_sets(["b", "a"], ["c"]) == [{"train": ["a", "b"], "val": ["c"]}]
    with pytest.raises(FormatError, match="both"):
        split_from_sets(["a"], ["a"])


def test_datalist_keys_and_counts():
    dl = build_datalist({"train": [{"image": "i/a.png", "fold": 0}], "test": [{"image": "i/b.png"}]})
    assert (dl["numTraining"], dl["numValidation"], dl["numTest"]) == (1, 0, 1)
    assert dl["training"] == [{"image": "i/a.png", "fold": 0}] and dl["validation"] == []


def test_datalist_rejects_unknown_split_and_missing_image():
    with pytest.raises(FormatError, match="splits"):
        build_datalist({"holdout": []})
    with pytest.raises(FormatError, match="lacks 'image'"):
        build_datalist({"train": [{"label": "x"}]})

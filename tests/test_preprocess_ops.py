"""Pure preprocessing functions: windowing, resampling, normalisation, 2.5D neighbours, config, enhancement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medsift.errors import ConfigError
from medsift.preprocess.config import PreprocessConfig
from medsift.preprocess.enhance import clahe, enhance, equalize
from medsift.preprocess.normalize import dataset_stats, minmax, zscore
from medsift.preprocess.resample import (resample_to_spacing, resample_volume, resize_image, resize_mask,
                                         scale_boxes)
from medsift.preprocess.stack import neighbour_positions, stack_neighbours
from medsift.preprocess.windowing import PRESETS, stack_windows, window


def test_window_matches_hand_computed_hu():
    hu = np.array([-1000.0, 0.0, 20.0, 40.0, 80.0, 3000.0], np.float32)
    # brain 40/80: 0 HU -> 0, 80 HU -> 1, linear between
    assert window(hu, 40, 80).tolist() == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    # subdural 80/200: low -20 HU; 20 HU -> 40/200 = 0.2
    assert window(hu, 80, 200)[2] == pytest.approx(0.2)
    # bone 600/2800: low -800 HU; 0 HU -> 800/2800
    assert window(hu, 600, 2800)[1] == pytest.approx(800 / 2800)


def test_presets_are_the_named_windows():
    assert {k: (w.center, w.width) for k, w in PRESETS.items()} == {
        "brain": (40, 80), "subdural": (80, 200), "bone": (600, 2800), "stroke": (40, 40)}


def test_stack_windows_makes_one_channel_per_window():
    hu = np.full((2, 3), 60.0, np.float32)
    out = stack_windows(hu, ["brain", "subdural", "bone"])
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    assert out[:, 0, 0].tolist() == pytest.approx([0.75, 0.4, 860 / 2800])


def test_eight_bit_passes_through_and_repeats():
    img = np.array([[0.0, 51.0, 255.0]], np.float32)
    out = stack_windows(img, ["brain", "bone"], has_hu=False)
    assert out.shape == (2, 1, 3)
    assert out[0].tolist() == out[1].tolist() == [[0.0, pytest.approx(0.2), 1.0]]


def test_unknown_window_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown window 'lung'.*bone, brain, stroke, subdural"):
        stack_windows(np.zeros((2, 2)), ["lung"])


def test_resize_image_linear_and_mask_nearest():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    up = resize_image(img, 8)
    assert up.shape == (8, 8) and up[0, :3].tolist() == [0.0, 0.25, 0.75]
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    small = resize_mask(mask, 4)
    assert small.dtype == np.uint8 and small.tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert resize_image(np.ones((3, 10, 20), np.float32), (5, 4)).shape == (3, 5, 4)


def test_scale_boxes_per_axis():
    assert scale_boxes([[10, 20, 30, 40]], (100, 200), (50, 50)).tolist() == [[2.5, 10.0, 7.5, 20.0]]


def test_resample_to_spacing_changes_size_by_ratio():
    assert resample_to_spacing(np.zeros((100, 80)), 0.5, 1.0).shape == (50, 40)
    assert resample_to_spacing(np.zeros((100, 80), np.uint8), 0.5, 1.0, is_mask=True).dtype == np.uint8


def test_isotropic_volume_resampling():
    vol = np.zeros((10, 20, 20), np.float32)
    vol[5:] = 1.0
    out = resample_volume(vol, (5.0, 1.0, 1.0), 1.0)
    assert out.shape == (50, 20, 20)
    assert out[0].max() == 0.0 and out[-1].min() == 1.0
    mask = resample_volume((vol > 0).astype(np.uint8), (5.0, 1.0, 1.0), 1.0, is_mask=True)
    assert set(np.unique(mask).tolist()) == {0, 1}


def test_minmax_and_zscore():
    x = np.array([[[1.0, 3.0], [5.0, 7.0]]], np.float32)
    assert minmax(x).ravel().tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    z = zscore(x)
    assert z.mean() == pytest.approx(0.0, abs=1e-6) and z.std() == pytest.approx(1.0, abs=1e-5)
    assert zscore(x, mean=4.0, std=2.0).ravel().tolist() == [-1.5, -0.5, 0.5, 1.5]


def test_dataset_stats_over_images():
    mean, std = dataset_stats([np.zeros((1, 2, 2)), np.full((1, 2, 2), 2.0)])
    assert mean.tolist() == [1.0] and std.tolist() == [1.0]


def test_neighbours_follow_slice_order_within_series_and_repeat_edges():
    df = pd.DataFrame({"image_id": ["b2", "a0", "b0", "b1", "a1"], "patient_id": ["p"] * 5,
                       "series_id": ["B", "A", "B", "B", "A"], "slice_index": [2, 0, 0, 1, 1]})
    pos = neighbour_positions(df, 1)
    # b0 (pos 2): [b0, b0, b1]; b1 (pos 3): [b0, b1, b2]; b2 (pos 0): [b1, b2, b2]; a0 (1): [a0, a0, a1]
    assert pos.tolist() == [[3, 0, 0], [1, 1, 4], [2, 2, 3], [2, 3, 0], [1, 4, 4]]


def test_stack_neighbours_is_neighbour_major():
    per_slice = np.arange(3 * 2).reshape(3, 2, 1, 1)   # 3 slices x 2 windows
    assert stack_neighbours(per_slice, np.array([0, 1, 2])).ravel().tolist() == [0, 1, 2, 3, 4, 5]


def test_config_round_trip_and_channels():
    cfg = PreprocessConfig(size=128, windows=("brain", "subdural", "bone"), context=1, normalize="zscore_image",
                           skull_strip=True, enhance="clahe")
    assert cfg.channels == 9
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["windows"] == ["brain", "subdural", "bone"]


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="normalize must be one of"):
        PreprocessConfig(normalize="l2")
    with pytest.raises(ConfigError, match=r"unknown preprocess option\(s\) \['sise'\]"):
        PreprocessConfig.from_dict({"sise": 3})


def test_equalisation_spreads_a_narrow_histogram():
    img = np.linspace(0.4, 0.5, 64 * 64, dtype=np.float32).reshape(64, 64)
    eq = equalize(img)
    assert eq.min() < 0.05 and eq.max() == pytest.approx(1.0)
    cl = clahe(img, clip_limit=0.05)
    assert cl.max() - cl.min() > img.max() - img.min()
    assert enhance(np.stack([img, img]), "hist_eq").shape == (2, 64, 64)

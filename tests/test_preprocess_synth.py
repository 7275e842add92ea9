"""The cache on the synthetic phantoms (HU NIfTI volumes with masks), read through the real medsift.io."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.preprocess.cache import build_cache
from medsift.preprocess.config import PreprocessConfig

WINDOWS = ("brain", "subdural", "bone")


@pytest.fixture(scope="module")
def phantom_caches(tmp_path_factory):
    from medsift.ingest import ingest
    from medsift.synth.testing import tiny_dataset

    root = tmp_path_factory.mktemp("synth_cache")
    ds = tiny_dataset(root / "synth")
    df = ingest(ds.nifti, layout="nifti", workspace=root / "ws", n_jobs=1)
    plain = build_cache(df, root / "plain", PreprocessConfig(size=64, windows=WINDOWS, context=1),
                        n_jobs=1, progress=False)
    stripped = build_cache(df, root / "stripped", PreprocessConfig(size=64, windows=WINDOWS, skull_strip=True),
                           n_jobs=1, progress=False)
    return df, plain, stripped


def test_hu_phantom_channels_follow_the_windows(phantom_caches):
    df, plain, _ = phantom_caches
    assert plain.images.shape == (len(df), 9, 64, 64)
    centre = plain.images[:, 3:6].astype(np.int32)   # neighbour-major: channels 3..5 = this slice
    bone = centre[:, 2] > 140                        # > 737 HU: skull (blurred by the 128 -> 64 resize)
    # there, the brain (0..80 HU) and subdural (-20..180 HU) windows are saturated
    assert bone.sum() > 1000
    assert (centre[:, 0][bone] >= 250).mean() > 0.95 and (centre[:, 1][bone] >= 250).mean() > 0.95


def test_skull_strip_removes_bone_and_keeps_brain(phantom_caches):
    _, plain, stripped = phantom_caches
    p, s = plain.images[:, 3:6].astype(np.int32), stripped.images.astype(np.int32)
    # no bone left: the bone window (600/2800) of soft tissue is ~77/255, of skull > 128
    assert (p[:, 2] > 110).sum() > 1000
    assert (s[:, 2] > 110).sum() == 0
    # soft tissue (brain window strictly between black and white) mostly survives; skull-base slices keep
    # only their largest intracranial component
    soft = (p[:, 0] > 20) & (p[:, 0] < 235)
    assert (s[:, 0][soft] > 0).mean() > 0.75


def test_masks_come_through_the_real_loader(phantom_caches):
    df, plain, _ = phantom_caches
    assert plain.index["has_mask"].all()
    positive = plain.index["label_hemorrhage"].fillna(0).astype(int).to_numpy() == 1
    has_pixels = plain.masks.reshape(len(df), -1).any(axis=1)
    assert has_pixels[positive].mean() > 0.5

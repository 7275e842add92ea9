"""Loose files given to `medsift predict`: one row per slice, DICOM series kept together for 2.5D context."""

from __future__ import annotations

import json
import random

import numpy as np

import synth_fixtures as sfx
from medsift.engine.inference import file_rows
from medsift.manifest import new_manifest


def test_dicom_files_of_one_series_are_ordered_by_position_whatever_order_they_come_in(tmp_path):
    series = sorted({p.parent for p in sfx.tiny().dicom.rglob("*.dcm")})[0]
    files = sorted(series.glob("*.dcm"))
    shuffled = files[:]
    random.Random(0).shuffle(shuffled)
    rows = file_rows(shuffled)
    assert len({r["series_id"] for r in rows}) == 1 and len({r["patient_id"] for r in rows}) == 1
    positions = [float(json.loads(r["dicom_position"])[2]) for r in rows]
    order = np.argsort([r["slice_index"] for r in rows])
    assert sorted(r["slice_index"] for r in rows) == list(range(len(rows)))
    assert np.all(np.diff(np.asarray(positions)[order]) > 0) or np.all(np.diff(np.asarray(positions)[order]) < 0)
    assert all(r["spacing_mm"] > 0 for r in rows)


def test_a_2p5d_cache_of_a_dicom_series_sees_the_real_neighbours(tmp_path):
    """Channel 0 of slice k (its lower neighbour) is the centre channel of slice k-1: the series is stacked, not
    each file repeated three times as its own neighbours."""
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig

    series = sorted({p.parent for p in sfx.tiny().dicom.rglob("*.dcm")})[0]
    files = sorted(series.glob("*.dcm"))[:6]
    df = new_manifest(file_rows(files))
    cache = build_cache(df, tmp_path / "c", PreprocessConfig(size=64, windows=("brain",), context=1), n_jobs=1,
                        progress=False)
    by_index = {int(r.slice_index): cache.rows([r.image_id])[0] for r in df.itertuples()}
    ks = sorted(by_index)
    for lower, k in zip(ks, ks[1:]):
        here, below = cache.images[by_index[k]], cache.images[by_index[lower]]
        np.testing.assert_array_equal(here[0], below[1])
    assert any(not np.array_equal(cache.images[by_index[k]][0], cache.images[by_index[k]][1]) for k in ks[1:])


def test_other_files_stay_series_of_their_own(tmp_path):
    from PIL import Image

    for k in range(2):
        Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(tmp_path / f"{k}.png")
    rows = file_rows(sorted(tmp_path.glob("*.png")))
    assert len({r["series_id"] for r in rows}) == 2 and all(r["slice_index"] == 0 for r in rows)


def test_scan_summary_pools_slices_by_their_maximum():
    from medsift.engine.inference import scan_summary

    results = [{"path": "a", "slice": 0, "scan": "s1", "prob_hemorrhage": 0.2},
               {"path": "b", "slice": 1, "scan": "s1", "prob_hemorrhage": 0.7},
               {"path": "c", "slice": 2, "scan": "s1", "prob_hemorrhage": 0.4},
               {"path": "d", "slice": 0, "scan": "s2", "prob_hemorrhage": 0.3}]
    rows = scan_summary(results, {"hemorrhage": 0.5})
    assert rows == [{"scan": "s1", "slices": 3, "max_prob_hemorrhage": 0.7, "slice_hemorrhage": 1, "hemorrhage": 1},
                    {"scan": "s2", "slices": 1, "max_prob_hemorrhage": 0.3, "slice_hemorrhage": 0, "hemorrhage": 0}]

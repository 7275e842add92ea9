"""OT dataset distance: zero for identical sets, ordered for increasingly shifted sets, label-aware."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medsift.label.distance import closest, dataset_distance, otdd, wasserstein2_sq
from medsift.manifest import new_manifest


def _blobs(n, shift, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 4)) + 3.0 * y[:, None]
    return x + shift, y


def test_w2_between_two_points_is_their_squared_distance():
    assert wasserstein2_sq(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])) == pytest.approx(25.0)


def test_otdd_is_zero_for_identical_sets():
    x, y = _blobs(40, 0.0, 0)
    assert otdd(x, y, x, y) == pytest.approx(0.0, abs=1e-6)


def test_otdd_grows_with_shift():
    x, y = _blobs(40, 0.0, 0)
    d = [otdd(x, y, *_blobs(40, s, 1)) for s in (0.0, 1.0, 2.0, 4.0)]
    assert d == sorted(d) and d[-1] > d[0] + 2.0


def test_otdd_sees_label_noise_that_features_alone_miss():
    x, y = _blobs(40, 0.0, 0)
    noisy = y.copy()
    noisy[::4] = 1 - noisy[::4]  # same images, a quarter of the labels flipped
    assert otdd(x, y, x, noisy) > 0.5  # feature-only W2 would be exactly 0 here
    # OTDD treats classes as abstract: a consistent renaming of the classes costs nothing
    assert otdd(x, y, x, 1 - y) == pytest.approx(0.0, abs=1e-6)
    assert closest((x, y), [(x, noisy), (x + 0.1, y)]) == 1


def test_dataset_distance_on_image_manifests(tmp_path):
    rng = np.random.default_rng(0)

    def ws(name, brightness):
        rows = []
        for i in range(12):
            lesion = i % 2
            img = np.full((48, 48), brightness, np.uint8) + rng.integers(0, 10, (48, 48)).astype(np.uint8)
            if lesion:
                img[10:30, 10:30] = 250
            path = tmp_path / name / f"{i}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(img).save(path)
            rows.append({"image_id": f"{name}{i}", "patient_id": f"p{i}", "image_path": str(path), "format": "png",
                         "label_hemorrhage": lesion, "width": 48, "height": 48})
        return new_manifest(rows)

    a, a2, far = ws("a", 40), ws("b", 45), ws("c", 120)
    near = dataset_distance(a, a2, cache_a=tmp_path / "ca", cache_b=tmp_path / "cb", max_samples=12, n_jobs=1)
    away = dataset_distance(a, far, cache_a=tmp_path / "ca", cache_b=tmp_path / "cc", max_samples=12, n_jobs=1)
    assert 0 < near.otdd < away.otdd
    assert near.prevalence_a == pytest.approx(0.5) and near.n_b == 12

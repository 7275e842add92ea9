"""make_patient: determinism, tissue HU ranges, and each hemorrhage subtype where it belongs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medsift.errors import ConfigError
from medsift.synth import LABEL_MAP, make_patient
from synth_fixtures import all_lesions_patient


def _mask(labels, name):
    return labels["label"] == LABEL_MAP[name]


def test_same_seed_same_volume_and_labels():
    a_hu, a_lab = make_patient(np.random.default_rng(3), size=64, n_slices=6)
    b_hu, b_lab = make_patient(np.random.default_rng(3), size=64, n_slices=6)
    assert a_hu.tobytes() == b_hu.tobytes()
    assert a_lab["label"].tobytes() == b_lab["label"].tobytes()
    assert a_lab["lesions"] == b_lab["lesions"]


def test_other_seed_other_volume():
    a_hu, _ = make_patient(np.random.default_rng(3), size=64, n_slices=6)
    b_hu, _ = make_patient(np.random.default_rng(4), size=64, n_slices=6)
    assert not np.array_equal(a_hu, b_hu)


def test_volume_is_integer_hu_float32_of_requested_shape():
    hu, labels = all_lesions_patient()
    assert hu.shape == (14, 128, 128) and hu.dtype == np.float32
    assert np.array_equal(hu, np.rint(hu))
    assert labels["label"].shape == hu.shape
    assert set(np.unique(labels["label"]).tolist()) <= set(LABEL_MAP.values())


def test_air_outside_the_head_is_minus_1000():
    hu, labels = all_lesions_patient()
    far = ~ndimage.binary_dilation(labels["head"], iterations=3)
    assert abs(float(np.median(hu[far])) + 1000.0) <= 2.0
    assert hu[far].max() < -950


def test_skull_core_is_bone():
    hu, labels = all_lesions_patient()
    core = ndimage.binary_erosion(labels["skull"], structure=np.ones((1, 3, 3)))
    assert core.sum() > 1000
    assert hu[core].min() >= 300
    assert np.median(hu[core]) >= 700


def test_brain_parenchyma_is_20_to_45_hu():
    hu, labels = all_lesions_patient()
    brain = ndimage.binary_erosion(labels["brain"] & (labels["label"] == 0), structure=np.ones((1, 3, 3)))
    values = hu[brain]
    assert 26 <= np.median(values) <= 40
    assert np.mean((values >= 20) & (values <= 45)) > 0.95


def test_ventricle_csf_is_near_water():
    hu, labels = all_lesions_patient()
    vent = ndimage.binary_erosion(labels["ventricles"] & (labels["label"] == 0), structure=np.ones((1, 3, 3)))
    assert vent.sum() > 50
    assert -5 <= np.median(hu[vent]) <= 12


def test_every_subtype_is_drawn():
    _, labels = all_lesions_patient()
    assert sorted(labels["lesions"]) == sorted(["iph", "ivh", "sah", "edh", "sdh"])
    for name in ("iph", "edema", "ivh", "sah", "edh", "sdh"):
        assert _mask(labels, name).any(), name


def test_acute_blood_is_60_to_85_hu():
    hu, labels = all_lesions_patient()
    core = ndimage.binary_erosion(_mask(labels, "iph"), structure=np.ones((1, 3, 3)))
    assert 60 <= np.median(hu[core]) <= 82


def test_edema_is_darker_than_brain():
    hu, labels = all_lesions_patient()
    core = ndimage.binary_erosion(_mask(labels, "edema"), structure=np.ones((1, 2, 2)))
    assert core.any()
    assert 12 <= np.median(hu[core]) <= 26


def test_ivh_lies_inside_the_ventricles():
    _, labels = all_lesions_patient()
    ivh = _mask(labels, "ivh")
    assert ivh.sum() > 0
    assert not (ivh & ~labels["ventricles"]).any()


def test_ivh_layers_in_the_back_of_the_ventricle():
    _, labels = all_lesions_patient()
    ivh, vent = _mask(labels, "ivh"), labels["ventricles"]
    rows = np.arange(vent.shape[1])[None, :, None]
    z = np.flatnonzero(ivh.any(axis=(1, 2)))
    # blood sits in the dependent (higher row = posterior) part of the ventricle
    assert np.mean(np.broadcast_to(rows, ivh.shape)[ivh]) > np.mean(np.broadcast_to(rows, vent.shape)[vent[z].any(0)[None] & vent])


def test_edh_and_sdh_touch_the_inner_skull():
    _, labels = all_lesions_patient()
    near_skull = ndimage.binary_dilation(labels["skull"], structure=np.ones((1, 3, 3)))
    for name in ("edh", "sdh"):
        m = _mask(labels, name)
        for z in np.flatnonzero(m.any(axis=(1, 2))):
            assert (m[z] & near_skull[z]).any(), (name, z)
        assert not (m & labels["skull"]).any()


def test_edh_is_a_short_thick_lens_and_sdh_a_long_thin_crescent():
    _, labels = all_lesions_patient()

    def thickness_over_arc(name):
        m = _mask(labels, name)
        z = int(np.argmax(m.sum(axis=(1, 2))))
        thickness = ndimage.distance_transform_edt(~labels["skull"][z])[m[z]].max()
        arc = (m[z] & ndimage.binary_dilation(labels["skull"][z])).sum()  # pixels along the skull
        return thickness / arc

    assert thickness_over_arc("edh") > 2 * thickness_over_arc("sdh")


def test_iph_is_surrounded_by_an_edema_rim():
    _, labels = all_lesions_patient()
    iph, edema = _mask(labels, "iph"), _mask(labels, "edema")
    ring = ndimage.binary_dilation(iph, structure=np.ones((1, 3, 3))) & ~iph
    parenchymal_ring = ring & ~labels["ventricles"] & labels["intracranial"]
    assert np.mean(edema[parenchymal_ring]) > 0.8
    assert not (edema & iph).any()


def test_sah_fills_csf_spaces():
    _, labels = all_lesions_patient()
    sah = _mask(labels, "sah")
    near_csf = ndimage.binary_dilation(labels["csf"], structure=np.ones((1, 3, 3)))
    assert sah.sum() > 0
    assert np.mean(near_csf[sah]) == 1.0
    assert np.mean(labels["csf"][sah]) > 0.3


def test_neighbouring_slices_look_alike():
    hu, labels = all_lesions_patient()
    brain = np.clip(hu, -20, 100)
    near = np.mean([np.abs(brain[z] - brain[z + 1]).mean() for z in range(3, 10)])
    far = np.mean([np.abs(brain[z] - brain[z + 8]).mean() for z in range(0, 5)])
    assert near < far


def test_unknown_subtype_is_refused():
    with pytest.raises(ConfigError, match="unknown subtype"):
        make_patient(np.random.default_rng(0), size=64, n_slices=4, subtypes=["xyz"])

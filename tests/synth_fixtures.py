"""Shared, built-once synthetic data for the synth tests (one generation per test session)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from medsift.synth.dataset import SynthDataset, patient_volume
from medsift.synth.phantom import make_patient
from medsift.synth.testing import TINY, tiny_dataset
from medsift.synth.writers import BRAIN_WINDOW, window_uint8

ALL_SUBTYPES = ("iph", "ivh", "sah", "edh", "sdh")
_TMP = tempfile.TemporaryDirectory(prefix="medsift-synth-tests-")


@lru_cache(maxsize=None)
def tiny() -> SynthDataset:
    """The tiny dataset of :func:`medsift.synth.testing.tiny_dataset` (3 patients, 128 px), built once."""
    return tiny_dataset(Path(_TMP.name) / "tiny")


@lru_cache(maxsize=None)
def clean_volume(patient_id: str) -> tuple[np.ndarray, dict]:
    """The clean HU volume and labels of a patient of :func:`tiny`."""
    return patient_volume(patient_id, n_patients=TINY["n_patients"], seed=TINY["seed"], size=TINY["size"],
                          slices=TINY["slices"])


def expected_png(image_id: str) -> np.ndarray:
    """What the PHE-SICH PNG of ``image_id`` shows when no defect touched it."""
    pid, s = image_id.split("_")
    hu, _ = clean_volume(pid)
    return window_uint8(hu[int(s)], *BRAIN_WINDOW)


@lru_cache(maxsize=None)
def all_lesions_patient() -> tuple[np.ndarray, dict]:
    """One patient with every subtype, 128 px, 14 slices, seed 7."""
    return make_patient(np.random.default_rng(7), size=128, n_slices=14, subtypes=ALL_SUBTYPES)

"""Synthetic head-CT phantoms: the built-in default dataset of medsift (demo and tests).

Public API:
    generate(out_dir, *, n_patients=8, seed=0, size=256, slices=(20, 28),
             layouts=("phe-sich", "dicom", "nifti", "folder"), defects=True) -> SynthDataset
    make_patient(rng, *, size, n_slices) -> (hu float32 (Z, H, W), labels dict)
    patient_volume(patient_id, *, n_patients, seed, size, slices) -> the clean volume of one generated patient
    LABEL_MAP        integer codes of the label volumes (0 bg, 1 IPH, 2 edema, 3 IVH, 4 SAH, 5 EDH, 6 SDH)
    Subtype, Layout, DefectKind   enums of subtypes, output layouts and injected defect kinds
    read_truth_slices(path), read_truth_defects(path)   the ground-truth tables
Fast fixture for tests: :func:`medsift.synth.testing.tiny_dataset`.

Heavy modules are imported on first use of a name, so ``import medsift.synth`` costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "generate": "medsift.synth.dataset",
    "SynthDataset": "medsift.synth.dataset",
    "patient_volume": "medsift.synth.dataset",
    "make_patient": "medsift.synth.phantom",
    "LABEL_MAP": "medsift.synth.lesions",
    "Subtype": "medsift.synth.lesions",
    "Layout": "medsift.synth.writers",
    "DefectKind": "medsift.synth.defects",
    "read_truth_slices": "medsift.synth.truth",
    "read_truth_defects": "medsift.synth.truth",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'medsift.synth' has no attribute {name!r}")

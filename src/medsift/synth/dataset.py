"""Generate a whole synthetic head-CT dataset in several layouts, with its ground truth.

Every random draw comes from ``numpy.random.default_rng`` seeded from ``seed``: patient ``i`` uses the
child seed ``SeedSequence(seed, spawn_key=(i,))`` (so it does not depend on how many patients are made or
which layouts are written) and the defects use their own child. Same arguments -> byte-identical files.

Example:
    >>> ds = generate("/tmp/phantoms", n_patients=2, size=64, slices=(6, 6), layouts=("phe-sich",))  # doctest: +SKIP
    >>> sorted(p.name for p in (ds.phe_sich / "images").iterdir())[:2]  # doctest: +SKIP
    ['0001_00.png', '0001_01.png']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.synth.defects import apply_defects, defects_per_kind, plan_defects
from medsift.synth.lesions import Subtype
from medsift.synth.phantom import make_patient, sample_subtypes
from medsift.synth.truth import defects_table, slice_records, slices_table
from medsift.synth.writers import (
    FOLDER_COLUMNS, FOLDER_WINDOWS, Layout, write_dicom, write_folder, write_nifti, write_phe_sich,
)

DEFAULT_LAYOUTS: tuple[str, ...] = tuple(layout.value for layout in Layout)
COVERAGE_ORDER: tuple[Subtype, ...] = (Subtype.IPH, Subtype.IVH, Subtype.SAH, Subtype.EDH, Subtype.SDH)
MAX_SLICES = 90
_DEFECT_STREAM = 1 << 20


@dataclass(frozen=True)
class SynthDataset:
    """Where a generated dataset lives. A layout that was not written is ``None``."""

    root: Path
    phe_sich: Path | None
    dicom: Path | None
    nifti: Path | None
    folder: Path | None
    folder_labels: Path | None
    truth_slices: Path
    truth_defects: Path


def parse_layouts(layouts: Iterable[str | Layout]) -> tuple[Layout, ...]:
    """Layout names -> :class:`Layout` (order kept, duplicates dropped); unknown names raise :class:`ConfigError`."""
    out: list[Layout] = []
    for name in layouts:
        try:
            layout = Layout(name)
        except ValueError:
            raise ConfigError(f"unknown layout {name!r}; valid: {', '.join(DEFAULT_LAYOUTS)}") from None
        if layout not in out:
            out.append(layout)
    if not out:
        raise ConfigError(f"at least one layout is needed; valid: {', '.join(DEFAULT_LAYOUTS)}")
    return tuple(out)


def patient_subtypes(rng: np.random.Generator, index: int, n_patients: int) -> tuple[Subtype, ...]:
    """Subtypes of patient ``index``: the first patients cover all five between them, then 1-3 random ones."""
    primary = [s for j, s in enumerate(COVERAGE_ORDER) if index < len(COVERAGE_ORDER) and j % n_patients == index]
    drawn = sample_subtypes(rng)
    chosen = list(dict.fromkeys(primary + list(drawn)))
    return tuple(chosen[:max(3, len(primary))])


def _validate(n_patients: int, size: int, slices: tuple[int, int]) -> tuple[int, int]:
    if n_patients < 1 or n_patients > 9998:
        raise ConfigError(f"n_patients must be 1..9998; got {n_patients}")
    if size < 32 or size > 2048:
        raise ConfigError(f"size must be 32..2048 pixels; got {size}")
    try:
        lo, hi = (int(slices[0]), int(slices[1]))
    except (TypeError, ValueError, IndexError):
        raise ConfigError(f"slices must be (min, max) slice counts; got {slices!r}") from None
    if not 1 <= lo <= hi <= MAX_SLICES:
        raise ConfigError(f"slices must satisfy 1 <= min <= max <= {MAX_SLICES}; got {slices!r}")
    return lo, hi


def generate(out_dir: str | Path, *, n_patients: int = 8, seed: int = 0, size: int = 256,
             slices: tuple[int, int] = (20, 28), layouts: Iterable[str | Layout] = DEFAULT_LAYOUTS,
             defects: bool = True) -> SynthDataset:
    """Write ``n_patients`` phantom head CTs under ``out_dir`` in ``layouts``, plus ``truth/``.

    Args:
        out_dir: output folder; the layout folders (``phe-sich``, ``dicom``, ``nifti``, ``folder``) and
            ``truth`` inside it are replaced as a whole (built in a staging folder, then moved in).
        n_patients: number of patients (ids ``0001``, ``0002``, ...).
        seed: seed of every random draw.
        size: pixels per side of each slice (field of view 250 mm).
        slices: inclusive range of the number of 5 mm slices per patient.
        layouts: which layouts to write (see :class:`~medsift.synth.writers.Layout`).
        defects: inject the defects of :mod:`medsift.synth.defects` into the PHE-SICH layout.

    Returns:
        The :class:`SynthDataset` paths.
    """
    lo, hi = _validate(n_patients, size, slices)
    chosen = parse_layouts(layouts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".synth-staging-"))
    try:
        _generate_into(stage, n_patients=n_patients, seed=seed, size=size, lo=lo, hi=hi, layouts=chosen,
                       defects=defects)
        for name in [layout.value for layout in chosen] + ["truth"]:
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(stage / name, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    has = {layout: (out / layout.value if layout in chosen else None) for layout in Layout}
    return SynthDataset(
        root=out, phe_sich=has[Layout.PHE_SICH], dicom=has[Layout.DICOM], nifti=has[Layout.NIFTI],
        folder=has[Layout.FOLDER],
        folder_labels=(out / "folder" / "labels.csv") if Layout.FOLDER in chosen else None,
        truth_slices=out / "truth" / "slices.csv", truth_defects=out / "truth" / "defects.csv",
    )


def _patient(seed: int, index: int, *, n_patients: int, size: int, lo: int, hi: int):
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    n_slices = int(rng.integers(lo, hi + 1))
    subtypes = patient_subtypes(rng, index, n_patients)
    hu, labels = make_patient(rng, size=size, n_slices=n_slices, subtypes=subtypes)
    return hu, labels, rng


def patient_volume(patient_id: str, *, n_patients: int = 8, seed: int = 0, size: int = 256,
                   slices: tuple[int, int] = (20, 28)) -> tuple[np.ndarray, dict]:
    """Regenerate the clean HU volume and labels of one patient of :func:`generate` called with the same
    arguments (``patient_id`` ``"0001"``...), without writing anything; see :func:`make_patient`."""
    lo, hi = _validate(n_patients, size, slices)
    index = int(patient_id) - 1
    if not 0 <= index < n_patients:
        raise ConfigError(f"patient_id must be 0001..{n_patients:04d}; got {patient_id!r}")
    hu, labels, _ = _patient(seed, index, n_patients=n_patients, size=size, lo=lo, hi=hi)
    return hu, labels


def _generate_into(stage: Path, *, n_patients: int, seed: int, size: int, lo: int, hi: int,
                   layouts: tuple[Layout, ...], defects: bool) -> dict[str, dict]:
    truth: dict[str, dict] = {}
    folder_rows: list[dict] = []
    for i in range(n_patients):
        pid = f"{i + 1:04d}"
        hu, labels, rng = _patient(seed, i, n_patients=n_patients, size=size, lo=lo, hi=hi)
        n_slices = hu.shape[0]
        z0 = float(np.round(rng.uniform(-80.0, -40.0), 1))
        file_order = rng.permutation(n_slices)
        instance_order = rng.permutation(n_slices)
        window = FOLDER_WINDOWS[int(rng.integers(0, len(FOLDER_WINDOWS)))]
        rows = slice_records(pid, labels)
        for r in rows:
            r.update(dicom_path="", nifti_path="", nifti_index="", folder_filename="")
        if Layout.PHE_SICH in layouts:
            write_phe_sich(stage / Layout.PHE_SICH.value, pid, hu, labels)
        if Layout.DICOM in layouts:
            paths = write_dicom(stage / Layout.DICOM.value, pid, hu, labels, seed=seed, file_order=file_order,
                                instance_order=instance_order, z0_mm=z0)
            for r, path in zip(rows, paths):
                r["dicom_path"] = path
        if Layout.NIFTI in layouts:
            image, _label = write_nifti(stage / Layout.NIFTI.value, pid, hu, labels, z0_mm=z0)
            for k, r in enumerate(rows):
                r.update(nifti_path=image, nifti_index=k)
        if Layout.FOLDER in layouts:
            frows = write_folder(stage / Layout.FOLDER.value, pid, hu, labels, seed=seed, window=window, z0_mm=z0)
            for r, fr in zip(rows, frows):
                r["folder_filename"] = fr["filename"]
            folder_rows.extend(frows)
        truth.update({r["image_id"]: r for r in rows})
    if Layout.FOLDER in layouts:
        pd.DataFrame(folder_rows, columns=list(FOLDER_COLUMNS)).to_csv(stage / "folder" / "labels.csv", index=False)
    defect_rows: list[dict] = []
    if defects and Layout.PHE_SICH in layouts:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DEFECT_STREAM,)))
        plans = plan_defects(rng, list(truth.values()), n_per_kind=defects_per_kind(n_patients),
                             n_patients=n_patients)
        defect_rows = apply_defects(plans, stage / Layout.PHE_SICH.value, truth, size=size)
    (stage / "truth").mkdir()
    slices_table(list(truth.values())).to_csv(stage / "truth" / "slices.csv", index=False)
    defects_table(defect_rows).to_csv(stage / "truth" / "defects.csv", index=False)
    return truth

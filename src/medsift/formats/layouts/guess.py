"""``--layout auto``: tell which layout a source folder follows from its file names and first bytes.

The guess reads names and the first bytes of a sample of files (as ingest sniffs them), never pixels, and says
why it chose (the reason is printed and written in the ingest summary), so a wrong guess is easy to see and
override with ``--layout``. Rules, first match wins:

1. ``nifti``: NIfTI volumes (``.nii``/``.nii.gz``) are most of the image files.
2. ``phe-sich``: an ``images/`` folder whose file stems are mostly ``PPPP_SS`` (PHE-SICH-CT-IDS naming).
3. ``dicom``: most files are DICOM by content (``DICM`` at byte 128), whatever their names.
4. ``folder``: anything else (class folders, ``images/`` + ``masks/``, or a labels CSV).

A labels CSV (``--labels``) only suits ``folder``, so with one the guess is ``folder`` unless the files are DICOM or
NIfTI, whose layouts refuse it with their own error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medsift.formats.layouts.base import is_skipped, require_folder, stem_of
from medsift.formats.layouts.phe_sich import NAME as PHE_NAME

#: files looked at (sorted by path), so guessing a 100,000-file tree stays instant
SAMPLE = 400
#: share of the sample a layout's files must reach
MAJORITY = 0.5


@dataclass(frozen=True)
class LayoutGuess:
    """The chosen layout name and the evidence for it."""

    layout: str
    reason: str


def _sample(folder: Path, limit: int = SAMPLE) -> list[Path]:
    """The first ``limit`` candidate files of ``folder`` walked in sorted order (hidden folders skipped); the
    walk stops there, so a huge tree is not listed in full."""
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if path.is_file() and not is_skipped(path):
                out.append(path)
                if len(out) >= limit:
                    return out
    return out


def is_dicom_file(path: Path) -> bool:
    """True when ``path``'s first bytes are DICOM by content (:func:`medsift.io.images.sniff_format`)."""
    from medsift.io.images import SNIFF_BYTES, sniff_format

    try:
        with open(path, "rb") as fh:
            return sniff_format(fh.read(SNIFF_BYTES)) == "dicom"
    except OSError:
        return False


def guess_layout(src: str | Path, *, labels: str | Path | None = None) -> LayoutGuess:
    """The layout of ``src`` (see the module docstring); :class:`~medsift.errors.LayoutError` for a missing,
    empty or file-less folder."""
    src = require_folder(Path(src), "image files (PNG/JPEG, DICOM or NIfTI)")
    files = _sample(src)
    if not files:
        from medsift.errors import LayoutError

        raise LayoutError(f"{src} holds no image files (only documentation or hidden files); cannot guess a layout")
    n = len(files)
    nifti = sum(p.name.lower().endswith((".nii", ".nii.gz")) for p in files)
    if nifti > MAJORITY * n:
        return LayoutGuess("nifti", f"{nifti} of {n} files are NIfTI volumes")
    images = src / "images"
    if labels is None and images.is_dir():
        stems = [stem_of(p) for p in _sample(images) if p.parent == images]
        named = sum(bool(PHE_NAME.match(s)) for s in stems)
        if stems and named > MAJORITY * len(stems):
            return LayoutGuess("phe-sich", f"images/ holds {named} of {len(stems)} sampled files named PPPP_SS")
    dicom = sum(is_dicom_file(p) for p in files)
    if dicom > MAJORITY * n:
        return LayoutGuess("dicom", f"{dicom} of {n} files are DICOM by content")
    why = "a labels CSV was given" if labels is not None else "no DICOM, NIfTI or PHE-SICH naming in the majority"
    return LayoutGuess("folder", f"{why} ({n} files sampled)")

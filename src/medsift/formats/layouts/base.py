"""What a layout scan returns, the ingest status codes, and stem pairing shared by the layouts.

A layout only lists files and what their names/side files say (cheap, no pixel decoding). Reading the
bytes (hash, format by content, size, DICOM/NIfTI headers, VOC boxes) happens later in
:func:`medsift.ingest.probe_candidate`, in parallel workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from medsift.errors import LayoutError


class Status(str, Enum):
    """Ingest status of a row, most severe first. ``ok`` means the row is usable as is."""

    EMPTY_FILE = "empty_file"
    NOT_IMAGE = "not_image"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"
    DUPLICATE_NAME = "duplicate_name"
    BAD_NAME = "bad_name"
    MASK_UNREADABLE = "mask_unreadable"
    MASK_SIZE_MISMATCH = "mask_size_mismatch"
    BAD_ANNOTATION = "bad_annotation"
    ANNOTATION_SIZE_MISMATCH = "annotation_size_mismatch"
    BOX_OUTSIDE_IMAGE = "box_outside_image"
    BAD_LABEL = "bad_label"
    OK = "ok"


SEVERITY: dict[str, int] = {s.value: i for i, s in enumerate(Status)}


class Kind(str, Enum):
    """How a candidate file is read: one 2D file (PNG/JPEG/DICOM by content) or a 3D NIfTI volume."""

    FILE2D = "file2d"
    VOLUME = "volume"


@dataclass
class Candidate:
    """One future manifest row (a whole volume for :attr:`Kind.VOLUME`), before its files are read.

    ``fields`` holds manifest columns already known from names or side tables (ids, labels, metadata);
    ``problems`` holds ``(status, detail)`` pairs found while scanning.
    """

    image_id: str
    patient_id: str
    image_path: str
    kind: Kind = Kind.FILE2D
    mask_path: str | None = None
    annotation_path: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class LayoutScan:
    """Result of scanning a source folder.

    Attributes:
        candidates: rows to probe.
        unpaired: side-table rows ``{annotation_path, kind, problem, candidate_image_id, detail}`` for
            annotation/mask/label files that found no image.
        skipped: documentation/metadata files ignored (README, CSV, ...), as paths.
        annotations_total: annotation files found (paired + unpaired), to account for every one.
        finalize: optional hook run on the probed rows (e.g. DICOM series ordering).
    """

    candidates: list[Candidate]
    unpaired: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    annotations_total: int = 0
    finalize: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None


SKIP_SUFFIXES = frozenset({".md", ".txt", ".csv", ".tsv", ".json", ".yaml", ".yml", ".xlsx", ".xls", ".html",
                           ".pdf", ".py", ".ipynb", ".log", ".zip"})
SKIP_NAMES = frozenset({"DICOMDIR", "Thumbs.db", "desktop.ini", "LICENSE"})


def is_skipped(path: Path) -> bool:
    """Files never taken as images: hidden files, documentation/metadata files, DICOMDIR."""
    return path.name.startswith(".") or path.name in SKIP_NAMES or path.suffix.lower() in SKIP_SUFFIXES


def _listed(p: Path) -> bool:
    """Regular files, plus broken or looping symlinks (so reading them records ``unreadable``); never FIFOs,
    devices or folders, which could block or mean nothing as an image."""
    return p.is_file() or (p.is_symlink() and not p.exists())


def list_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Regular files of ``folder`` sorted by path (hidden folders skipped when recursive); broken or looping
    symlinks are listed too. Symlinked folders are not followed."""
    if recursive:
        out = [p for p in folder.rglob("*")
               if _listed(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])]
    else:
        out = [p for p in folder.iterdir() if _listed(p)]
    return sorted(out)


def stem_of(path: Path) -> str:
    """File name without its extension(s): ``a.png -> a``, ``a.nii.gz -> a``."""
    name = path.name
    for double in (".nii.gz", ".tar.gz"):
        if name.lower().endswith(double):
            return name[: -len(double)]
    return path.stem


def loose_key(stem: str) -> str:
    """Key under which near-miss names collide: lower case, leading zeros of numbers dropped, separators unified.

    ``0001_05``, ``1_05``, ``0001-5`` and ``0001_05 `` all give ``1_5``.
    """
    s = re.sub(r"[\s\-\.]+", "_", stem.strip().lower())
    return re.sub(r"\d+", lambda m: str(int(m.group())), s)


def require_folder(src: Path, what: str) -> Path:
    """``src`` must be an existing, non-empty folder; raise :class:`LayoutError` saying what was expected."""
    if not src.exists():
        raise LayoutError(f"source folder {src} does not exist; expected {what}")
    if not src.is_dir():
        raise LayoutError(f"source {src} is a file; expected a folder with {what}")
    if not any(src.iterdir()):
        raise LayoutError(f"source folder {src} is empty; expected {what}")
    return src


def pair_side_files(image_stems: dict[str, Path], side: list[Path], *, kind: str) -> tuple[dict[str, Path], list[dict]]:
    """Pair side files (masks, annotations) to images by stem, whatever the extensions.

    Returns ``(paired, unpaired)``: ``paired`` maps image stem -> side file; ``unpaired`` lists side files with
    no image, as side-table rows; a near-miss name (same :func:`loose_key` as an image) names that image
    as ``candidate_image_id`` but is NOT paired. A second side file for the same stem is unpaired too.
    """
    by_loose: dict[str, str] = {}
    for stem in image_stems:
        by_loose.setdefault(loose_key(stem), stem)
    paired: dict[str, Path] = {}
    unpaired: list[dict] = []
    for path in side:
        stem = stem_of(path)
        if stem in image_stems and stem not in paired:
            paired[stem] = path
            continue
        if stem in paired:
            unpaired.append({"annotation_path": str(path), "kind": kind, "problem": "duplicate",
                             "candidate_image_id": stem,
                             "detail": f"{path.name}: {paired[stem].name} is already paired with image {stem}"})
            continue
        near = by_loose.get(loose_key(stem))
        if near is not None:
            unpaired.append({"annotation_path": str(path), "kind": kind, "problem": "near_miss",
                             "candidate_image_id": near,
                             "detail": f"name {stem} nearly matches {near}"})
        else:
            unpaired.append({"annotation_path": str(path), "kind": kind, "problem": "no_image",
                             "candidate_image_id": None, "detail": f"no image for {stem}"})
    return paired, unpaired


def unique_ids(paths: list[Path], root: Path) -> dict[Path, str]:
    """Stable image ids for files: the stem when stems are unique, else the relative path without the
    extension with ``/`` replaced by ``__`` (for the clashing files only)."""
    stems: dict[str, int] = {}
    for p in paths:
        stems[stem_of(p)] = stems.get(stem_of(p), 0) + 1
    out: dict[Path, str] = {}
    for p in paths:
        stem = stem_of(p)
        if stems[stem] == 1:
            out[p] = stem
        else:
            rel = p.relative_to(root)
            out[p] = "__".join(list(rel.parts[:-1]) + [stem])
    return out

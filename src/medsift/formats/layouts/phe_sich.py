"""PHE-SICH-CT-IDS layout: ``images/PPPP_SS.*``, ``masks/PPPP_SS.*``, ``annotations/PPPP_SS.xml`` (VOC).

Files pair by stem ``PPPP_SS`` whatever their extension says; ``image_id`` is the stem, ``patient_id`` is
``PPPP`` and ``slice_index`` is ``SS``. Every annotation file is either paired or listed as unpaired
(``no_image``, ``near_miss`` with a candidate such as ``1_05 -> 0001_05``, or ``duplicate``).
Names that do not follow ``PPPP_SS`` keep their stem as id and get status ``bad_name``.
"""

from __future__ import annotations

import re
from pathlib import Path

from medsift.errors import LayoutError
from medsift.formats.layouts.base import (Candidate, LayoutScan, Status, is_skipped, list_files,
                                          pair_side_files, require_folder, stem_of)

NAME = re.compile(r"^(\d{4})_(\d{2,3})$")
LOOSE_NAME = re.compile(r"^(\d+)[_\-\s]+(\d+)$")


def parse_name(stem: str) -> tuple[str, int] | None:
    """``"0004_15" -> ("0004", 15)``; ``None`` when the stem is not ``PPPP_SS``."""
    m = NAME.match(stem)
    return (m.group(1), int(m.group(2))) if m else None


def scan_phe_sich(src: Path, *, labels: Path | None = None) -> LayoutScan:
    """List the images of a PHE-SICH folder and pair masks and VOC annotations to them by stem."""
    if labels is not None:
        raise LayoutError(f"layout phe-sich takes its labels from annotations/*.xml; got --labels {labels}. "
                          f"Use --layout folder for a folder of images with a labels CSV")
    require_folder(src, "images/, masks/ and annotations/ subfolders (PHE-SICH layout)")
    images_dir = src / "images"
    if not images_dir.is_dir():
        found = sorted(p.name for p in src.iterdir())[:10]
        raise LayoutError(f"{src} has no images/ folder; the phe-sich layout expects images/, masks/, "
                          f"annotations/ (found: {found})")
    skipped: list[str] = []
    images: list[Path] = []
    for p in list_files(images_dir):
        (skipped.append(str(p)) if is_skipped(p) else images.append(p))
    if not images:
        raise LayoutError(f"{images_dir} holds no image files; expected PPPP_SS.png slices")
    masks = [p for p in list_files(src / "masks") if not is_skipped(p)] if (src / "masks").is_dir() else []
    anns = [p for p in list_files(src / "annotations") if not p.name.startswith(".")] \
        if (src / "annotations").is_dir() else []

    by_stem: dict[str, Path] = {}
    candidates: list[Candidate] = []
    duplicates: list[Path] = []
    for p in images:
        stem = stem_of(p)
        if stem in by_stem:
            duplicates.append(p)
        else:
            by_stem[stem] = p
    mask_of, unpaired_masks = pair_side_files(by_stem, masks, kind="mask")
    ann_of, unpaired_anns = pair_side_files(by_stem, anns, kind="annotation")

    for stem, path in by_stem.items():
        cand = Candidate(image_id=stem, patient_id="unknown", image_path=str(path),
                         mask_path=str(mask_of[stem]) if stem in mask_of else None,
                         annotation_path=str(ann_of[stem]) if stem in ann_of else None)
        _name_fields(cand, stem)
        if cand.annotation_path is not None:
            cand.fields["label_source"] = "annotation"
        candidates.append(cand)
    for p in duplicates:
        stem = stem_of(p)
        cand = Candidate(image_id=f"{stem}{p.suffix.replace('.', '~')}", patient_id="unknown", image_path=str(p))
        _name_fields(cand, stem)
        cand.problems.append((Status.DUPLICATE_NAME.value,
                              f"{p.name} has the same stem as {by_stem[stem].name}, which holds image_id {stem}"))
        candidates.append(cand)
    return LayoutScan(candidates=candidates, unpaired=unpaired_anns + unpaired_masks, skipped=skipped,
                      annotations_total=len(anns))


def _name_fields(cand: Candidate, stem: str) -> None:
    parsed = parse_name(stem)
    if parsed is not None:
        cand.patient_id, cand.fields["slice_index"] = parsed[0], parsed[1]
    else:
        loose = LOOSE_NAME.match(stem)
        if loose:
            cand.patient_id = f"{int(loose.group(1)):04d}"
            cand.fields["slice_index"] = int(loose.group(2))
        cand.problems.append((Status.BAD_NAME.value, f"{stem}: expected a PPPP_SS name (4-digit patient, "
                                                     f"2-digit slice)"))
    cand.fields["study_id"] = cand.patient_id
    cand.fields["series_id"] = cand.patient_id

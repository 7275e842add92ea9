"""Generic folder layout (PNG/JPEG, format decided by content). Three shapes, tried in this order:

1. ``--labels FILE`` given: images under ``SRC/images/`` (or ``SRC``), a CSV with a filename column
   (``filename``, ``file``, ``image``, ``path`` ...) plus label and metadata columns (as RSNA ``labels.csv``).
   Labels map ``any -> label_hemorrhage``, ``epidural -> label_edh``, ``intraparenchymal -> label_iph``,
   ``intraventricular -> label_ivh``, ``subarachnoid -> label_sah``, ``subdural -> label_sdh``
   (short names ``edh``... and ``label_*`` columns also accepted). Metadata: patient/study/series ids,
   pixel spacing, window, rescale (list-like text such as ``"['00036', '00036']"`` keeps its first number);
   other columns are kept as ``csv_<name>``. ``slice_index`` is the rank of the ``image_position`` z within a
   series when the CSV has positions. Rows of the CSV with no file go to the unpaired table (kind ``label_row``).
2. ``SRC/images/`` (+ optional ``masks/``, ``annotations/`` VOC): paired by stem like PHE-SICH.
3. Class-named subfolders ``SRC/<class>/*``: ``class_name`` column; ``normal/negative/no_hemorrhage`` ->
   ``label_hemorrhage`` 0, ``hemorrhage/positive/ich`` -> 1, a subtype name -> that subtype 1 and
   ``label_hemorrhage`` 1. A flat folder of images gives unlabelled rows.

``patient_id`` (without CSV): the part of the stem before a final ``_<digits>``, else the stem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medsift.errors import LayoutError
from medsift.formats.layouts.base import (Candidate, LayoutScan, Status, is_skipped, list_files,
                                          pair_side_files, require_folder, stem_of, unique_ids)

LABEL_MAP: dict[str, str] = {
    "any": "label_hemorrhage", "hemorrhage": "label_hemorrhage", "ich": "label_hemorrhage",
    "epidural": "label_edh", "edh": "label_edh", "intraparenchymal": "label_iph", "iph": "label_iph",
    "intraventricular": "label_ivh", "ivh": "label_ivh", "subarachnoid": "label_sah", "sah": "label_sah",
    "subdural": "label_sdh", "sdh": "label_sdh",
}
META_MAP: dict[str, tuple[str, ...]] = {
    "patient_id": ("patient_id", "patientid", "patient"),
    "study_id": ("study_instance_uid", "studyinstanceuid", "study_id", "study"),
    "series_id": ("series_instance_uid", "seriesinstanceuid", "series_id", "series"),
    "spacing_mm": ("pixel_spacing", "pixelspacing", "spacing_mm", "spacing"),
    "slice_thickness_mm": ("slice_thickness", "slicethickness", "slice_thickness_mm"),
    "window_center": ("window_center", "windowcenter"),
    "window_width": ("window_width", "windowwidth"),
    "hu_intercept": ("rescale_intercept", "rescaleintercept", "hu_intercept"),
    "hu_slope": ("rescale_slope", "rescaleslope", "hu_slope"),
    "slice_index": ("slice_index",),
}
FILENAME_COLUMNS = ("filename", "file_name", "file", "image", "image_name", "image_path", "path", "image_id", "id")
NEGATIVE_CLASSES = frozenset({"normal", "negative", "no_hemorrhage", "none", "healthy", "0", "no"})
POSITIVE_CLASSES = frozenset({"hemorrhage", "haemorrhage", "positive", "ich", "bleed", "1", "yes"})
_NUMBER = re.compile(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?")
_PATIENT = re.compile(r"^(.+)_\d+$")


def first_number(value: Any) -> float | None:
    """First number in a value: ``"['00036', '00036']" -> 36.0``, ``"-1024" -> -1024.0``, junk -> None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return None if value != value else float(value)
    m = _NUMBER.search(str(value))
    return float(m.group()) if m else None


def numbers(value: Any) -> list[float]:
    """Every number in a list-like text value."""
    return [float(x) for x in _NUMBER.findall(str(value))] if value is not None else []


def patient_from_stem(stem: str) -> str:
    """``0004_15 -> 0004``; ``ID_abc -> ID_abc`` (no trailing ``_<digits>``)."""
    m = _PATIENT.match(stem)
    return m.group(1) if m else stem


def scan_folder(src: Path, *, labels: Path | None = None) -> LayoutScan:
    """Scan a generic folder (see the module docstring for the three accepted shapes)."""
    require_folder(src, "images (PNG/JPEG) in class folders, in images/ (+ masks/, annotations/), "
                        "or with a labels CSV")
    if labels is not None:
        return _scan_with_csv(src, labels)
    if (src / "images").is_dir():
        return _scan_paired(src)
    return _scan_classes(src)


def _images_under(folder: Path, *, recursive: bool) -> tuple[list[Path], list[str]]:
    images, skipped = [], []
    for p in list_files(folder, recursive=recursive):
        (skipped.append(str(p)) if is_skipped(p) else images.append(p))
    return images, skipped


def _scan_paired(src: Path) -> LayoutScan:
    images, skipped = _images_under(src / "images", recursive=False)
    if not images:
        raise LayoutError(f"{src / 'images'} holds no image files; expected PNG/JPEG files")
    ids = unique_ids(images, src / "images")
    by_id = {ids[p]: p for p in images}
    masks = [p for p in list_files(src / "masks") if not is_skipped(p)] if (src / "masks").is_dir() else []
    anns = [p for p in list_files(src / "annotations") if not p.name.startswith(".")] \
        if (src / "annotations").is_dir() else []
    mask_of, un_masks = pair_side_files(by_id, masks, kind="mask")
    ann_of, un_anns = pair_side_files(by_id, anns, kind="annotation")
    cands = []
    for image_id, path in by_id.items():
        c = Candidate(image_id=image_id, patient_id=patient_from_stem(stem_of(path)), image_path=str(path),
                      mask_path=str(mask_of[image_id]) if image_id in mask_of else None,
                      annotation_path=str(ann_of[image_id]) if image_id in ann_of else None)
        if c.annotation_path:
            c.fields["label_source"] = "annotation"
        cands.append(c)
    return LayoutScan(cands, un_anns + un_masks, skipped, annotations_total=len(anns))


def _class_labels(name: str) -> dict[str, int]:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in NEGATIVE_CLASSES:
        return {"label_hemorrhage": 0}
    if key in POSITIVE_CLASSES:
        return {"label_hemorrhage": 1}
    if key in LABEL_MAP:
        return {LABEL_MAP[key]: 1, "label_hemorrhage": 1}
    return {}


def _scan_classes(src: Path) -> LayoutScan:
    subdirs = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose, skipped = _images_under(src, recursive=False)
    if subdirs and not loose:
        images: list[Path] = []
        for d in subdirs:
            found, skip = _images_under(d, recursive=True)
            images += found
            skipped += skip
    else:
        images = loose
    if not images:
        raise LayoutError(f"{src} holds no image files; expected class folders of PNG/JPEG images, "
                          f"an images/ folder, or images with --labels CSV")
    ids = unique_ids(images, src)
    cands = []
    for path in images:
        c = Candidate(image_id=ids[path], patient_id=patient_from_stem(stem_of(path)), image_path=str(path))
        if path.parent != src:
            cls = path.relative_to(src).parts[0]
            c.fields["class_name"] = cls
            labels = _class_labels(cls)
            if labels:
                c.fields.update(labels, label_source="folder")
        cands.append(c)
    return LayoutScan(cands, [], skipped)


def _read_csv(labels: Path):
    import pandas as pd

    try:
        return pd.read_csv(labels, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise LayoutError(f"--labels {labels}: cannot read as CSV ({exc})") from None


def _scan_with_csv(src: Path, labels: Path) -> LayoutScan:
    table = _read_csv(labels)
    lower = {c.strip().lower(): c for c in table.columns}
    name_col = next((lower[n] for n in FILENAME_COLUMNS if n in lower), None)
    if name_col is None:
        raise LayoutError(f"--labels {labels}: no filename column; expected one of {list(FILENAME_COLUMNS)}, "
                          f"got {list(table.columns)}")
    folder = src / "images" if (src / "images").is_dir() else src
    images, skipped = _images_under(folder, recursive=True)
    skipped = [s for s in skipped if Path(s) != labels]
    if not images:
        raise LayoutError(f"{folder} holds no image files; expected the files named in {labels.name}")
    by_rel = {str(p.relative_to(folder)).replace("\\", "/"): p for p in images}
    by_name: dict[str, Path] = {}
    by_stem: dict[str, Path] = {}
    for p in images:
        by_name.setdefault(p.name, p)
        by_stem.setdefault(stem_of(p), p)
    label_cols = {c: LABEL_MAP.get(c.strip().lower(), c.strip().lower()) for c in table.columns
                  if c.strip().lower() in LABEL_MAP or c.strip().lower().startswith("label_")}
    label_cols = {c: t for c, t in label_cols.items() if t != "label_source"}
    meta_cols = {target: lower[n] for target, names in META_MAP.items() for n in names if n in lower}
    used = set(label_cols) | set(meta_cols.values()) | {name_col}
    extra = [c for c in table.columns if c not in used and c.strip() and not c.startswith("Unnamed")]

    ids = unique_ids(images, folder)
    cands: dict[Path, Candidate] = {p: Candidate(image_id=ids[p], patient_id=patient_from_stem(stem_of(p)),
                                                 image_path=str(p)) for p in images}
    unpaired: list[dict] = []
    seen: set[Path] = set()
    for i, rec in enumerate(table.to_dict("records")):
        name = str(rec[name_col]).strip().replace("\\", "/")
        path = by_rel.get(name) or by_name.get(Path(name).name) or by_stem.get(stem_of(Path(name)))
        if path is None or path in seen:
            unpaired.append({"annotation_path": f"{labels}#row{i + 2}", "kind": "label_row",
                             "problem": "duplicate" if path is not None else "no_image",
                             "candidate_image_id": ids[path] if path is not None else None,
                             "detail": f"{name}: " + ("second label row for this file" if path is not None
                                                      else f"no such file under {folder}")})
            continue
        seen.add(path)
        _apply_csv_row(cands[path], rec, label_cols, meta_cols, extra)
    _rank_positions(list(cands.values()))
    return LayoutScan(list(cands.values()), unpaired, skipped, annotations_total=0)


def _apply_csv_row(c: Candidate, rec: dict, label_cols: dict, meta_cols: dict, extra: list[str]) -> None:
    for col, target in label_cols.items():
        raw = str(rec[col]).strip()
        if raw == "":
            continue
        value = first_number(raw)
        if value in (0.0, 1.0):
            c.fields[target] = int(value)
        else:
            c.problems.append((Status.BAD_LABEL.value, f"label {col}={raw!r}; expected 0 or 1"))
    c.fields["label_source"] = "csv"
    for target, col in meta_cols.items():
        raw = str(rec[col]).strip()
        if not raw:
            continue
        if target in ("patient_id", "study_id", "series_id"):
            if target == "patient_id":
                c.patient_id = raw
            else:
                c.fields[target] = raw
        elif target == "slice_index":
            num = first_number(raw)
            if num is not None:
                c.fields[target] = int(num)
        else:
            c.fields[target] = first_number(raw)
    for col in extra:
        c.fields[f"csv_{col.strip()}"] = str(rec[col])


def _rank_positions(cands: list[Candidate]) -> None:
    """slice_index = rank of the z of ``csv_image_position`` inside each series (when not given)."""
    groups: dict[str, list[tuple[float, str, Candidate]]] = {}
    for c in cands:
        if "slice_index" in c.fields or "series_id" not in c.fields:
            continue
        pos = numbers(c.fields.get("csv_image_position"))
        if len(pos) == 3:
            groups.setdefault(c.fields["series_id"], []).append((pos[2], c.image_id, c))
    for members in groups.values():
        for rank, (_, _, c) in enumerate(sorted(members, key=lambda t: (t[0], t[1]))):
            c.fields["slice_index"] = rank

"""NIfTI layout: 3D volumes (``.nii``/``.nii.gz``, recognised by content) + optional label volumes.

Pairing of label volumes, tried in order:
- nnU-Net style folders: ``imagesTr/``/``imagesTs/``/``images/`` with ``labelsTr/``/``labels/``/``masks/``;
  an image ``case_0000.nii.gz`` pairs with label ``case.nii.gz`` (channel suffix dropped) or the same name;
- one folder: ``case.nii.gz`` with ``case_seg``/``case_label``/``case_labels``/``case_mask`` beside it.

One row per slice (third voxel axis): ``image_id`` = ``<case>_<kkk>``, ``patient_id`` = ``series_id`` =
``case``, ``volume_index`` = ``slice_index`` = k. Every non-zero label counts as lesion for the mask and for
``label_hemorrhage`` (1 when the slice has any labelled voxel), unless ``SRC/dataset.json`` (nnU-Net style,
``{"labels": {"background": 0, "IPH": 1, "edema": 2, ...}}``) names the labels: then only blood names
(hemorrhage/ICH, IPH, IVH, SAH, EDH, SDH and their long names) count, subtypes fill ``label_<subtype>``, and
the names are kept in ``mask_label_names``. The mask from :func:`medsift.io.load_mask` is always every
non-zero label. ``mask_labels`` keeps the JSON list of label values in the volume. ``content_hash`` is the
sha256 of the slice's stored voxels (``file_hash`` is that of the file).
"""

from __future__ import annotations

import re
from pathlib import Path

from medsift.errors import LayoutError
from medsift.formats.layouts.base import Candidate, Kind, LayoutScan, is_skipped, list_files, require_folder, stem_of

IMAGE_DIRS = ("imagesTr", "imagesTs", "images")
LABEL_DIRS = ("labelsTr", "labelsTs", "labels", "masks")
LABEL_SUFFIXES = ("_seg", "_label", "_labels", "_mask")
_CHANNEL = re.compile(r"^(.+)_\d{4}$")


def _case(stem: str) -> str:
    m = _CHANNEL.match(stem)
    return m.group(1) if m else stem


def read_label_names(src: Path) -> str | None:
    """``{value: name}`` as JSON text from ``src/dataset.json`` (nnU-Net v1 or v2 style), or None."""
    import json

    path = src / "dataset.json"
    if not path.is_file():
        return None
    try:
        labels = json.loads(path.read_text()).get("labels")
    except (OSError, ValueError, AttributeError) as exc:
        raise LayoutError(f"{path}: cannot read label names ({exc}); expected JSON with a 'labels' object")
    if not isinstance(labels, dict):
        return None
    pairs = {}
    for key, value in labels.items():
        if str(key).lstrip("-").isdigit():
            pairs[int(key)] = str(value)          # v1: {"0": "background", "1": "IPH"}
        elif isinstance(value, int):
            pairs[value] = str(key)               # v2: {"background": 0, "IPH": 1}
    return json.dumps({str(k): v for k, v in sorted(pairs.items())}) if pairs else None


def scan_nifti(src: Path, *, labels: Path | None = None) -> LayoutScan:
    """List NIfTI volumes of ``src`` and pair label volumes to them."""
    if labels is not None:
        raise LayoutError(f"layout nifti takes no --labels (got {labels}); labels come from label volumes")
    require_folder(src, "NIfTI volumes (.nii/.nii.gz), optionally imagesTr/ + labelsTr/")
    image_dirs = [src / d for d in IMAGE_DIRS if (src / d).is_dir()]
    skipped: list[str] = []
    cands: list[Candidate] = []
    unpaired: list[dict] = []
    if image_dirs:
        label_dirs = [src / d for d in LABEL_DIRS if (src / d).is_dir()]
        label_files = {}
        for d in label_dirs:
            for p in list_files(d):
                if not is_skipped(p):
                    label_files.setdefault(stem_of(p), p)
        used = set()
        for d in image_dirs:
            for p in list_files(d):
                if is_skipped(p):
                    skipped.append(str(p))
                    continue
                case = _case(stem_of(p))
                lab = label_files.get(case) or label_files.get(stem_of(p))
                if lab is not None:
                    used.add(lab)
                cands.append(Candidate(image_id=case, patient_id=case, image_path=str(p), kind=Kind.VOLUME,
                                       mask_path=str(lab) if lab else None, fields={"series_id": case}))
        for lab in sorted(set(label_files.values()) - used):
            unpaired.append({"annotation_path": str(lab), "kind": "label_volume", "problem": "no_image",
                             "candidate_image_id": None, "detail": f"no image volume for {stem_of(lab)}"})
    else:
        files = []
        for p in list_files(src):
            (skipped.append(str(p)) if is_skipped(p) else files.append(p))
        stems = {stem_of(p): p for p in files}
        label_of = {}
        for stem, p in stems.items():
            for suffix in LABEL_SUFFIXES:
                if stem.endswith(suffix) and stem[: -len(suffix)] in stems:
                    label_of[stem[: -len(suffix)]] = p
        label_paths = set(label_of.values())
        for stem, p in stems.items():
            if p in label_paths:
                continue
            lab = label_of.get(stem)
            case = _case(stem)
            cands.append(Candidate(image_id=case, patient_id=case, image_path=str(p), kind=Kind.VOLUME,
                                   mask_path=str(lab) if lab else None, fields={"series_id": case}))
    if not cands:
        raise LayoutError(f"{src} holds no NIfTI volumes; expected .nii/.nii.gz files or imagesTr/")
    names = read_label_names(src)
    if names:
        for c in cands:
            if c.mask_path:
                c.fields["mask_label_names"] = names
    seen: dict[str, int] = {}
    for c in cands:
        seen[c.image_id] = seen.get(c.image_id, 0) + 1
    for c in cands:
        if seen[c.image_id] > 1:
            c.image_id = "__".join(Path(c.image_path).relative_to(src).parts[:-1] + (c.image_id,))
    return LayoutScan(cands, unpaired, skipped, annotations_total=0)

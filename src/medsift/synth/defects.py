"""Defects injected into a written PHE-SICH layout, each recorded as ground truth.

:func:`plan_defects` draws which images get which defect (never two defects on one image, and an image that
a defect copies or swaps with is left clean too); :func:`apply_defect` is the deterministic twin that edits
the files of the layout (the generator's own output, never source data) and returns the truth rows.

Kinds (``detail`` says the variant):
    exact_duplicate      an image (with its mask and annotation) copied as a new slice at the end of its
                         patient; related_id = original.
    near_duplicate       the same, shifted 1-3 pixels and re-noised (+-2 grey levels).
    rotated              the image rotated by 90/180/270 degrees (mask and annotation untouched).
    flipped              the image flipped up-down (front <-> back; left-right is invisible on a symmetric head).
    inverted             ``255 - image``.
    out_of_sequence      two slices swapped (image, mask and annotation together), inside one patient or
                         between two patients: one row per image, related_id = the partner.
    orphan_annotation    an annotation with no image (an extra slice number, or a patient that does not exist).
    misnamed_annotation  the annotation saved without leading zeros (``1_05.xml``), or its <filename> naming
                         another image (related_id).
    corrupt_file         the PNG truncated.
    wrong_extension      JPEG bytes saved as ``.png``.
    box_mask_disagreement on a slice with IPH and edema: the box moved off the mask, the mask erased (box
                         without mask) or the box removed (mask without box).
    constant_image       every pixel the same value.
    line_mask            on a slice with edema between two slices with edema: the mask replaced by its own 1-px
                         outline (traced, not filled).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from medsift.formats.masks import mask_bbox

from medsift.synth.truth import image_id
from medsift.synth.writers import HEMORRHAGE_LABEL, png_bytes


class DefectKind(str, Enum):
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    ROTATED = "rotated"
    FLIPPED = "flipped"
    INVERTED = "inverted"
    OUT_OF_SEQUENCE = "out_of_sequence"
    ORPHAN_ANNOTATION = "orphan_annotation"
    MISNAMED_ANNOTATION = "misnamed_annotation"
    CORRUPT_FILE = "corrupt_file"
    WRONG_EXTENSION = "wrong_extension"
    BOX_MASK_DISAGREEMENT = "box_mask_disagreement"
    CONSTANT_IMAGE = "constant_image"
    LINE_MASK = "line_mask"


@dataclass(frozen=True)
class DefectPlan:
    """One defect to inject: its kind, the image(s) it touches, and the sampled variant parameters."""

    kind: DefectKind
    image_id: str
    related_id: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def defects_per_kind(n_patients: int) -> int:
    """How many of each kind: 1 for up to 5 patients, 3 for 12, at most 4."""
    return int(min(4, max(1, round(n_patients / 4))))


def _parse(iid: str) -> tuple[str, int]:
    pid, s = iid.rsplit("_", 1)
    return pid, int(s)


def plan_defects(rng: np.random.Generator, slices: list[dict[str, Any]], *, n_per_kind: int,
                 n_patients: int) -> list[DefectPlan]:
    """Choose the defects for a clean PHE-SICH layout whose truth rows are ``slices``.

    Scarce targets (slices with IPH and edema) are chosen first; every image is touched by at most one defect.
    """
    by_id = {r["image_id"]: r for r in slices}
    ids = sorted(by_id)
    used: set[str] = set()
    next_slice = {}
    for r in slices:
        next_slice[r["patient_id"]] = max(next_slice.get(r["patient_id"], 0), r["slice_index"] + 1)
    plans: list[DefectPlan] = []

    def free(candidates: list[str]) -> list[str]:
        return [c for c in candidates if c not in used]

    def take(candidates: list[str]) -> str | None:
        pool = free(candidates)
        if not pool:
            return None
        pick = pool[int(rng.integers(0, len(pool)))]
        used.add(pick)
        return pick

    def new_slice_id(pid: str) -> str:
        k = next_slice[pid]
        next_slice[pid] = k + 1
        return image_id(pid, k)

    iph = [i for i in ids if by_id[i]["edema_pixels"] > 0 and any(b[4] == "iph" for b in by_id[i]["boxes"])]
    for j in range(n_per_kind):
        target = take(iph)
        if target is not None:
            variant = ("box_shifted", "box_without_mask", "mask_without_box")[j % 3]
            plans.append(DefectPlan(DefectKind.BOX_MASK_DISAGREEMENT, target, params={"variant": variant}))
    for kind in (DefectKind.EXACT_DUPLICATE, DefectKind.NEAR_DUPLICATE):
        for _ in range(n_per_kind):
            original = take(ids)
            if original is None:
                break
            pid, _s = _parse(original)
            params = {"dy": int(rng.choice([-3, -2, -1, 1, 2, 3])), "dx": int(rng.choice([-3, -2, -1, 1, 2, 3])),
                      "noise_seed": int(rng.integers(0, 2**31 - 1))} if kind == DefectKind.NEAR_DUPLICATE else {}
            plans.append(DefectPlan(kind, new_slice_id(pid), original, params))
    for j in range(max(1, math.ceil(n_per_kind / 2))):
        a = take(ids)
        if a is None:
            break
        pid, s = _parse(a)
        across = j % 2 == 1 and n_patients > 1
        if across:
            partners = [i for i in ids if _parse(i)[0] != pid and abs(_parse(i)[1] - s) <= 3]
        else:
            partners = [i for i in ids if _parse(i)[0] == pid and abs(_parse(i)[1] - s) >= 3]
        b = take(partners)
        if b is None:
            used.discard(a)
            continue
        plans.append(DefectPlan(DefectKind.OUT_OF_SEQUENCE, a, b, {"across_patients": across}))
    for kind in (DefectKind.ROTATED, DefectKind.FLIPPED, DefectKind.INVERTED, DefectKind.CORRUPT_FILE,
                 DefectKind.WRONG_EXTENSION, DefectKind.CONSTANT_IMAGE, DefectKind.MISNAMED_ANNOTATION):
        for j in range(n_per_kind):
            target = take(ids)
            if target is None:
                break
            params: dict[str, Any] = {}
            related = ""
            if kind == DefectKind.ROTATED:
                params = {"k": int(rng.integers(1, 4))}
            elif kind == DefectKind.CORRUPT_FILE:
                params = {"keep": float(rng.uniform(0.3, 0.7))}
            elif kind == DefectKind.CONSTANT_IMAGE:
                params = {"value": int(rng.choice([0, 0, 255, 128]))}
            elif kind == DefectKind.MISNAMED_ANNOTATION:
                if j % 2 == 0:
                    params = {"variant": "no_leading_zeros"}
                else:
                    pid, s = _parse(target)
                    neighbours = [image_id(pid, s + d) for d in (1, -1, 2, -2, 3, -3) if image_id(pid, s + d) in by_id]
                    related = (free(neighbours) or [""])[0]
                    if related:
                        used.add(related)
                    params = {"variant": "filename_field" if related else "no_leading_zeros"}
            plans.append(DefectPlan(kind, target, related, params))
    pids = sorted({r["patient_id"] for r in slices})
    for j in range(n_per_kind):
        if j % 2 == 0:
            orphan = new_slice_id(pids[int(rng.integers(0, len(pids)))])
        else:
            orphan = image_id(f"{n_patients + 1 + j:04d}", int(rng.integers(0, 20)))
        source = ids[int(rng.integers(0, len(ids)))]
        plans.append(DefectPlan(DefectKind.ORPHAN_ANNOTATION, orphan, "", {"boxes_from": source}))
    # drawn last so that adding it left every earlier draw (and so every older phantom set) as it was; inside a
    # lesion (the slices above and below keep their edema, untouched), as a traced slice is told from a thin end
    moved = {i for q in plans if q.kind == DefectKind.OUT_OF_SEQUENCE or q.params.get("variant") == "box_without_mask"
             for i in (q.image_id, q.related_id)}  # masks erased or swapped away

    def rim(iid: str) -> bool:
        return iid in by_id and iid not in moved and by_id[iid]["edema_pixels"] >= 30

    def around(iid: str) -> list[str]:
        pid, s = _parse(iid)
        return [image_id(pid, s - 1), image_id(pid, s + 1)]

    for _ in range(n_per_kind):
        target = take([i for i in ids if rim(i) and all(rim(n) for n in around(i))])
        if target is not None:
            moved.update([target, *around(target)])
            plans.append(DefectPlan(DefectKind.LINE_MASK, target))
    return plans


# --- applying ---------------------------------------------------------------------------------------------------

def _read_gray(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def _annotation(iid: str, boxes: list[list], size: int) -> bytes:
    from medsift.formats.voc import voc_xml

    return voc_xml(filename=f"{iid}.png", width=size, height=size,
                   boxes=[[b[0], b[1], b[2], b[3], HEMORRHAGE_LABEL] for b in boxes])


def _files(root: Path, iid: str) -> tuple[Path, Path, Path]:
    return root / "images" / f"{iid}.png", root / "masks" / f"{iid}.png", root / "annotations" / f"{iid}.xml"


def apply_defect(plan: DefectPlan, root: Path, truth: dict[str, dict[str, Any]], *, size: int) -> list[dict[str, str]]:
    """Inject ``plan`` into the PHE-SICH layout at ``root``; update ``truth`` (image_id -> truth row) for images
    added or whose content moved; return the defect truth rows."""
    kind = plan.kind
    img, mask, ann = _files(root, plan.image_id)
    p = plan.params
    detail = ""
    rows = [{"image_id": plan.image_id, "defect": kind.value, "related_id": plan.related_id, "detail": ""}]
    if kind in (DefectKind.EXACT_DUPLICATE, DefectKind.NEAR_DUPLICATE):
        src_img, src_mask, _ = _files(root, plan.related_id)
        boxes = truth[plan.related_id]["boxes"]
        if kind == DefectKind.EXACT_DUPLICATE:
            img.write_bytes(src_img.read_bytes())
            mask.write_bytes(src_mask.read_bytes())
            detail = f"byte-identical copy of {plan.related_id}"
        else:
            dy, dx = p["dy"], p["dx"]
            noise = np.random.default_rng(p["noise_seed"]).integers(-2, 3, size=(size, size))
            pixels = np.roll(_read_gray(src_img), (dy, dx), axis=(0, 1)).astype(np.int16) + noise
            img.write_bytes(png_bytes(np.clip(pixels, 0, 255).astype(np.uint8)))
            mask.write_bytes(png_bytes(np.roll(_read_gray(src_mask), (dy, dx), axis=(0, 1))))
            boxes = [[min(max(b[0] + dx, 0), size), min(max(b[1] + dy, 0), size), min(max(b[2] + dx, 0), size),
                      min(max(b[3] + dy, 0), size), b[4]] for b in boxes]
            detail = f"copy of {plan.related_id} shifted by (dy={dy}, dx={dx}) px and re-noised (+-2 grey levels)"
        ann.write_bytes(_annotation(plan.image_id, boxes, size))
        pid, s = _parse(plan.image_id)
        truth[plan.image_id] = {**truth[plan.related_id], "image_id": plan.image_id, "patient_id": pid,
                                "slice_index": s, "boxes": boxes, "dicom_path": "", "nifti_path": "",
                                "nifti_index": "", "folder_filename": ""}
    elif kind == DefectKind.ROTATED:
        img.write_bytes(png_bytes(np.ascontiguousarray(np.rot90(_read_gray(img), k=p["k"]))))
        detail = f"rotated {90 * p['k']} degrees counter-clockwise (numpy.rot90 k={p['k']})"
    elif kind == DefectKind.FLIPPED:
        img.write_bytes(png_bytes(np.ascontiguousarray(_read_gray(img)[::-1])))
        detail = "flipped up-down (anterior <-> posterior)"
    elif kind == DefectKind.INVERTED:
        img.write_bytes(png_bytes(255 - _read_gray(img)))
        detail = "intensities inverted (255 - value)"
    elif kind == DefectKind.CONSTANT_IMAGE:
        img.write_bytes(png_bytes(np.full((size, size), p["value"], dtype=np.uint8)))
        detail = f"every pixel = {p['value']}"
    elif kind == DefectKind.CORRUPT_FILE:
        data = img.read_bytes()
        keep = int(len(data) * p["keep"])
        img.write_bytes(data[:keep])
        detail = f"PNG truncated to {keep} of {len(data)} bytes"
    elif kind == DefectKind.WRONG_EXTENSION:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(_read_gray(img), mode="L").save(buf, format="JPEG", quality=95)
        img.write_bytes(buf.getvalue())
        detail = "JPEG bytes saved with a .png extension"
    elif kind == DefectKind.OUT_OF_SEQUENCE:
        other = _files(root, plan.related_id)
        for here, there in zip((img, mask), other[:2]):
            a, b = here.read_bytes(), there.read_bytes()
            here.write_bytes(b)
            there.write_bytes(a)
        ta, tb = truth[plan.image_id], truth[plan.related_id]
        content = ("content_id", "label_hemorrhage", "edema_pixels", "n_boxes", "boxes",
                   *[k for k in ta if k.startswith("label_")])
        swapped_a = {k: tb[k] for k in content}
        swapped_b = {k: ta[k] for k in content}
        ta.update(swapped_a)
        tb.update(swapped_b)
        ann.write_bytes(_annotation(plan.image_id, ta["boxes"], size))
        other[2].write_bytes(_annotation(plan.related_id, tb["boxes"], size))
        where = "another patient" if p["across_patients"] else "the same patient"
        detail = f"image, mask and annotation swapped with {plan.related_id} ({where})"
        rows.append({"image_id": plan.related_id, "defect": kind.value, "related_id": plan.image_id,
                     "detail": f"image, mask and annotation swapped with {plan.image_id} ({where})"})
        rows[0]["detail"] = detail
        return rows
    elif kind == DefectKind.ORPHAN_ANNOTATION:
        ann.write_bytes(_annotation(plan.image_id, truth[p["boxes_from"]]["boxes"], size))
        detail = f"annotation {ann.name} has no image"
    elif kind == DefectKind.MISNAMED_ANNOTATION:
        if p["variant"] == "no_leading_zeros":
            pid, s = _parse(plan.image_id)
            wrong = ann.with_name(f"{int(pid)}_{s:02d}.xml")
            wrong.write_bytes(ann.read_bytes())
            ann.unlink()
            detail = f"annotation saved as {wrong.name} instead of {ann.name}"
        else:
            ann.write_bytes(ann.read_bytes().replace(f"<filename>{plan.image_id}.png<".encode(),
                                                     f"<filename>{plan.related_id}.png<".encode()))
            detail = f"<filename> in {ann.name} names {plan.related_id}.png"
    elif kind == DefectKind.LINE_MASK:
        from medsift.metrics.segmentation import surface

        mask.write_bytes(png_bytes(surface(_read_gray(mask) > 0).astype(np.uint8) * 255))
        detail = "edema mask replaced by its 1-px outline"
    elif kind == DefectKind.BOX_MASK_DISAGREEMENT:
        boxes = [list(b) for b in truth[plan.image_id]["boxes"]]
        variant = p["variant"]
        if variant == "box_shifted":
            mx1, _, mx2, _ = mask_bbox(_read_gray(mask) > 0)
            for b in boxes:
                if b[4] == "iph":
                    w, h = b[2] - b[0], b[3] - b[1]
                    # move the box to the far side of the mask, past its extent horizontally
                    x1 = mx2 + 1 if mx2 + 1 + w <= size else max(mx1 - 2 - w, 0)
                    b[0], b[2] = int(x1), int(x1 + w)
                    b[1], b[3] = int(max(min(b[1], size - h), 0)), int(max(min(b[1], size - h), 0) + h)
            ann.write_bytes(_annotation(plan.image_id, boxes, size))
            detail = "IPH box moved off the edema mask"
        elif variant == "box_without_mask":
            mask.write_bytes(png_bytes(np.zeros((size, size), dtype=np.uint8)))
            detail = "edema mask erased; the IPH box remains"
        else:
            ann.write_bytes(_annotation(plan.image_id, [b for b in boxes if b[4] != "iph"], size))
            detail = "IPH box removed; the edema mask remains"
    rows[0]["detail"] = detail
    return rows


def apply_defects(plans: list[DefectPlan], root: Path, truth: dict[str, dict[str, Any]], *,
                  size: int) -> list[dict[str, str]]:
    """Apply every plan in order; returns all defect truth rows."""
    out: list[dict[str, str]] = []
    for plan in plans:
        out.extend(apply_defect(plan, root, truth, size=size))
    return out

"""Ground truth of a synthetic dataset: per-slice labels and boxes, and the injected defects.

``truth/slices.csv`` has one row per image of the PHE-SICH layout (duplicates added by the defects included):
``image_id`` (``PPPP_SS``), ``patient_id``, ``slice_index``, ``content_id`` (the clean slice whose pixels the
file shows: itself, the original of a duplicate, the partner of a swap), ``label_hemorrhage`` and one
``label_<subtype>`` per subtype (0/1, of the content), ``edema_pixels``, ``n_boxes``, ``boxes`` (JSON list of
``[x1, y1, x2, y2, subtype]``, pixels, x2/y2 exclusive), and where the same slice lives in the other layouts:
``dicom_path``, ``nifti_path`` + ``nifti_index``, ``folder_filename`` (empty when a layout was not written).
Only the PHE-SICH layout has defects: the DICOM/NIfTI/folder copies of slice ``X`` are always clean, and
their labels are those of the row whose ``content_id`` is ``X`` (the same row unless ``X`` was swapped).

``truth/defects.csv`` has one row per defective image (a swap gives two rows, one per image):
``image_id, defect, related_id, detail``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from medsift.formats.masks import mask_bbox

from medsift.synth.lesions import LABEL_MAP, Subtype

SLICE_COLUMNS: tuple[str, ...] = (
    "image_id", "patient_id", "slice_index", "content_id", "label_hemorrhage",
    *(f"label_{s.value}" for s in Subtype), "edema_pixels", "n_boxes", "boxes",
    "dicom_path", "nifti_path", "nifti_index", "folder_filename",
)
DEFECT_COLUMNS: tuple[str, ...] = ("image_id", "defect", "related_id", "detail")


def image_id(patient_id: str, slice_index: int) -> str:
    """``PPPP_SS`` (slice index zero-padded to 2 digits, more when needed)."""
    return f"{patient_id}_{slice_index:02d}"


def slice_boxes(labels: dict[str, Any], z: int) -> list[list]:
    """Boxes ``[x1, y1, x2, y2, subtype]`` (pixels, x2/y2 exclusive) of each lesion's blood on slice ``z``."""
    inst = labels["instance"][z]
    boxes = []
    for k, subtype in enumerate(labels["lesions"], start=1):
        m = inst == k
        if not m.any():
            continue
        boxes.append([*mask_bbox(m), subtype])
    return boxes


def slice_records(patient_id: str, labels: dict[str, Any]) -> list[dict[str, Any]]:
    """One truth row per slice of a patient (labels, edema pixel count and boxes)."""
    label = labels["label"]
    present = {s: (label == LABEL_MAP[s.value]).any(axis=(1, 2)) for s in Subtype}
    edema = (label == LABEL_MAP["edema"]).sum(axis=(1, 2))
    rows = []
    for z in range(label.shape[0]):
        iid = image_id(patient_id, z)
        boxes = slice_boxes(labels, z)
        row: dict[str, Any] = {"image_id": iid, "patient_id": patient_id, "slice_index": z, "content_id": iid}
        row["label_hemorrhage"] = int(any(bool(present[s][z]) for s in Subtype))
        row.update({f"label_{s.value}": int(present[s][z]) for s in Subtype})
        row.update({"edema_pixels": int(edema[z]), "n_boxes": len(boxes), "boxes": boxes})
        rows.append(row)
    return rows


def slices_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The truth slice table, sorted by image id, boxes as JSON text."""
    df = pd.DataFrame(rows)
    for col in SLICE_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    df["boxes"] = [json.dumps(b) for b in df["boxes"]]
    df["n_boxes"] = [len(json.loads(b)) for b in df["boxes"]]
    return df[list(SLICE_COLUMNS)].sort_values("image_id", kind="stable").reset_index(drop=True)


def defects_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The truth defect table, one row per defective image, sorted by defect then image id."""
    df = pd.DataFrame(rows, columns=list(DEFECT_COLUMNS)).fillna("")
    return df.sort_values(["defect", "image_id"], kind="stable").reset_index(drop=True)


def read_truth_slices(path) -> pd.DataFrame:
    """Read ``truth/slices.csv`` back with ids as text and ``boxes`` as lists."""
    df = pd.read_csv(path, dtype={"image_id": str, "patient_id": str, "content_id": str, "dicom_path": str,
                                  "nifti_path": str, "folder_filename": str}, keep_default_na=False)
    df["boxes"] = [json.loads(b) for b in df["boxes"]]
    return df


def read_truth_defects(path) -> pd.DataFrame:
    """Read ``truth/defects.csv`` back with every column as text."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def summarize(slices: pd.DataFrame, defects: pd.DataFrame) -> dict[str, object]:
    """Counts for a summary: patients, slices, per subtype (patients, slices, lesion boxes) and defects per kind.

    ``slices`` and ``defects`` as returned by :func:`read_truth_slices` / :func:`read_truth_defects`.
    Returns ``{"patients": int, "slices": int, "hemorrhage_slices": int, "subtypes": DataFrame indexed by
    subtype with columns patients/slices/boxes, "defects": Series defect kind -> images}``.
    """
    rows = {}
    for s in Subtype:
        on = slices[f"label_{s.value}"].astype(int) == 1
        boxes = sum(1 for bs in slices["boxes"] for b in bs if b[4] == s.value)
        rows[s.value] = {"patients": int(slices.loc[on, "patient_id"].nunique()), "slices": int(on.sum()),
                         "boxes": int(boxes)}
    return {
        "patients": int(slices["patient_id"].nunique()),
        "slices": int(len(slices)),
        "hemorrhage_slices": int((slices["label_hemorrhage"].astype(int) == 1).sum()),
        "subtypes": pd.DataFrame.from_dict(rows, orient="index"),
        "defects": defects.groupby("defect").size() if len(defects) else pd.Series(dtype=int),
    }

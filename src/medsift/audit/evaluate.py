"""Score the audit against the ground truth of synthetic phantoms (``truth/defects.csv`` of :mod:`medsift.synth`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medsift.errors import ConfigError

DEFECT_CHECK: dict[str, str] = {
    "corrupt_file": "integrity", "wrong_extension": "integrity", "constant_image": "integrity",
    "orphan_annotation": "pairing", "misnamed_annotation": "pairing",
    "box_mask_disagreement": "label_consistency", "line_mask": "label_consistency",
    "exact_duplicate": "duplicate", "near_duplicate": "duplicate",
    "out_of_sequence": "sequence",
    "rotated": "orientation", "flipped": "orientation",
    "inverted": "intensity",
}
"""Which check must find each injected defect kind."""

FINDING_DEFECT: dict[tuple[str, str], str] = {
    ("integrity", "truncated"): "corrupt_file", ("integrity", "unreadable"): "corrupt_file",
    ("integrity", "missing"): "corrupt_file", ("integrity", "ingest_status"): "corrupt_file",
    ("integrity", "wrong_extension"): "wrong_extension", ("integrity", "constant"): "constant_image",
    ("pairing", "orphan_annotation"): "orphan_annotation", ("pairing", "near_match"): "misnamed_annotation",
    ("pairing", "annotation_filename"): "misnamed_annotation",
    ("label_consistency", "box_mask_disagree"): "box_mask_disagreement",
    ("label_consistency", "box_without_mask"): "box_mask_disagreement",
    ("label_consistency", "mask_without_box"): "box_mask_disagreement",
    ("label_consistency", "line_mask"): "line_mask",
    ("duplicate", "exact_duplicate"): "exact_duplicate", ("duplicate", "near_duplicate"): "near_duplicate",
    ("sequence", "out_of_sequence"): "out_of_sequence",
    ("orientation", "rotated"): "rotated", ("orientation", "flipped"): "flipped",
    ("intensity", "inverted"): "inverted",
}
"""(check, kind written first in ``detail``) -> defect kind it claims."""

PAIR_KINDS = frozenset({"exact_duplicate", "near_duplicate", "out_of_sequence"})
"""Defects that involve two images: both the copy and its original (``related_id``) are true positives."""

ALSO_EXPLAINS: dict[str, frozenset[str]] = {
    "out_of_sequence": frozenset({"rotated", "flipped", "inverted", "exact_duplicate", "near_duplicate",
                                  "constant_image", "corrupt_file", "wrong_extension"}),
}
"""A flag for defect K on an image carrying one of these other defects is a correct flag (not a false positive):
a rotated or appended copy really is unlike its volume neighbours."""


def flagged_by_defect(findings: pd.DataFrame) -> dict[str, set[str]]:
    """Images flagged (warning or error) per defect kind they claim."""
    out: dict[str, set[str]] = {k: set() for k in DEFECT_CHECK}
    if findings is None or not len(findings):
        return out
    f = findings[findings["severity"].isin(["warning", "error"])]
    kinds = f["detail"].astype(str).str.split(":").str[0].str.strip()
    for (check, kind), iid in zip(zip(f["check"].astype(str), kinds), f["image_id"].astype(str)):
        defect = FINDING_DEFECT.get((check, kind))
        if defect is not None:
            out[defect].add(iid)
    return out


def evaluate_against_truth(findings: pd.DataFrame, truth_defects_csv: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of the audit per injected defect kind.

    Args:
        findings: the audit's findings table.
        truth_defects_csv: ``image_id, defect, related_id, detail`` (path or DataFrame).

    Returns:
        One row per defect kind present in the truth: ``defect, check, n, n_flagged, tp, precision, recall``.
        Recall counts truth images flagged for that kind; precision counts flagged images that carry that defect
        (or, for pair kinds, are the partner; or carry a defect listed in :data:`ALSO_EXPLAINS`).
    """
    truth = truth_defects_csv if isinstance(truth_defects_csv, pd.DataFrame) else \
        pd.read_csv(truth_defects_csv, dtype=str, keep_default_na=False)
    unknown = sorted(set(truth["defect"]) - set(DEFECT_CHECK))
    if unknown:
        raise ConfigError(f"unknown defect kinds {unknown}; expected some of {sorted(DEFECT_CHECK)}")
    flagged = flagged_by_defect(findings)
    by_image: dict[str, set[str]] = {}
    for iid, d in zip(truth["image_id"], truth["defect"]):
        by_image.setdefault(iid, set()).add(d)
    rows = []
    for defect, sub in truth.groupby("defect", sort=True):
        true_ids = set(sub["image_id"])
        ok_ids = set(true_ids)
        if defect in PAIR_KINDS:
            ok_ids |= {r for r in sub["related_id"] if r}
        explains = ALSO_EXPLAINS.get(defect, frozenset())
        ok_ids |= {i for i, ds in by_image.items() if ds & explains}
        got = flagged[defect]
        tp_recall = len(true_ids & got)
        tp_prec = len(got & ok_ids)
        rows.append({"defect": defect, "check": DEFECT_CHECK[defect], "n": len(true_ids), "n_flagged": len(got),
                     "tp": tp_recall, "precision": tp_prec / len(got) if got else (1.0 if not true_ids else 0.0),
                     "recall": tp_recall / len(true_ids) if true_ids else 1.0})
    return pd.DataFrame(rows, columns=["defect", "check", "n", "n_flagged", "tp", "precision", "recall"])

"""Agreement between label sets of the same images (one workspace per annotator) and their consensus.

``compare_label_sets`` matches rows by ``image_id`` and measures, for every label column, pairwise Cohen's
and overall Fleiss' kappa; for masks, pairwise Dice/IoU/HD95 and a STAPLE consensus; for boxes, IoU matching.
It returns tables a person can adjudicate from, and ``write_consensus`` writes the consensus label set.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.label.agreement import cohen_kappa, fleiss_kappa, majority_vote, match_boxes, staple
from medsift.manifest import atomic_write_bytes, label_columns


@dataclass
class AgreementReport:
    """Summary numbers, per-image disagreements and the consensus labels."""

    raters: list[str]
    summary: dict = field(default_factory=dict)
    disagreements: pd.DataFrame = field(default_factory=pd.DataFrame)
    consensus: pd.DataFrame = field(default_factory=pd.DataFrame)
    consensus_masks: dict[str, np.ndarray] = field(default_factory=dict)


def compare_label_sets(manifests: Sequence[pd.DataFrame], raters: Sequence[str], *,
                       masks: bool = True, iou_threshold: float = 0.5) -> AgreementReport:
    """Agreement of two or more label sets; rows are matched on ``image_id`` (images all raters labelled)."""
    if len(manifests) < 2 or len(manifests) != len(raters):
        raise ConfigError(f"need >= 2 label sets with one rater name each; got {len(manifests)} sets, "
                          f"{len(raters)} names")
    ids = sorted(set.intersection(*(set(m["image_id"]) for m in manifests)))
    if not ids:
        raise ConfigError("the label sets share no image_id; agreement needs the same images")
    tables = [m.set_index("image_id").loc[ids] for m in manifests]
    report = AgreementReport(list(raters), summary={"n_images": len(ids)})
    consensus = pd.DataFrame({"image_id": ids})
    rows: list[dict] = []

    for col in sorted(set.intersection(*(set(label_columns(m)) for m in manifests))):
        known = np.logical_and.reduce([t[col].notna().to_numpy() for t in tables])
        if not known.any():
            continue
        ratings = np.stack([t[col].to_numpy()[known].astype(int) for t in tables], axis=1)
        pair = {f"{raters[i]}~{raters[j]}": cohen_kappa(ratings[:, i], ratings[:, j])
                for i, j in itertools.combinations(range(len(raters)), 2)}
        report.summary[col] = {"fleiss_kappa": fleiss_kappa(ratings), "cohen_kappa": pair,
                               "n_rated": int(known.sum()),
                               "percent_agreement": float((ratings == ratings[:, :1]).all(axis=1).mean())}
        vote = pd.array([pd.NA] * len(ids), dtype="Int64")
        vote[known] = majority_vote(ratings)
        consensus[col] = vote
        for image_id, r in zip(np.asarray(ids)[known], ratings):
            if not (r == r[0]).all():
                rows.append({"image_id": image_id, "kind": col, "detail": dict(zip(raters, r.tolist()))})

    box_f1, box_iou = [], []
    for image_id in ids:
        sets = [t.at[image_id, "boxes"] for t in tables]
        for i, j in itertools.combinations(range(len(raters)), 2):
            m = match_boxes(sets[i], sets[j], iou_threshold=iou_threshold)
            box_f1.append(m.f1)
            if m.pairs:
                box_iou.append(m.mean_iou)
            if m.unmatched_a or m.unmatched_b:
                rows.append({"image_id": image_id, "kind": "boxes",
                             "detail": {raters[i]: len(sets[i]), raters[j]: len(sets[j]),
                                        "matched": len(m.pairs)}})
    report.summary["boxes"] = {"match_f1": float(np.mean(box_f1)) if box_f1 else float("nan"),
                               "mean_iou_matched": float(np.mean(box_iou)) if box_iou else float("nan")}

    if masks and all(t["mask_path"].notna().any() for t in tables):
        report.summary["masks"] = _mask_agreement(tables, ids, raters, report, rows)
    report.disagreements = pd.DataFrame(rows, columns=["image_id", "kind", "detail"])
    report.consensus = consensus
    return report


def _mask_agreement(tables, ids, raters, report: AgreementReport, rows: list[dict]) -> dict:
    from medsift.io import load_mask
    from medsift.metrics.segmentation import dice, hausdorff95, iou

    dices, ious, hds = [], [], []
    for image_id in ids:
        ms = []
        for t in tables:
            row = t.loc[image_id].copy()
            row["image_id"] = image_id
            m = load_mask(row)
            ms.append(np.zeros((int(row["height"]), int(row["width"])), bool) if m is None else m)
        for i, j in itertools.combinations(range(len(ms)), 2):
            d = dice(ms[i], ms[j])
            dices.append(d)
            ious.append(iou(ms[i], ms[j]))
            if ms[i].any() and ms[j].any():
                hds.append(hausdorff95(ms[i], ms[j]))
            if d < 0.8:
                rows.append({"image_id": image_id, "kind": "mask",
                             "detail": {f"{raters[i]}~{raters[j]}_dice": round(d, 3)}})
        report.consensus_masks[image_id] = staple(ms).consensus
    return {"dice_mean": float(np.mean(dices)), "iou_mean": float(np.mean(ious)),
            "hd95_mean_px": float(np.mean(hds)) if hds else float("nan")}


def write_consensus(report: AgreementReport, out: str | Path) -> Path:
    """Write ``summary.json``, ``disagreements.csv``, ``consensus_labels.csv`` and STAPLE masks to ``out``."""
    from medsift.formats.masks import write_mask_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "summary.json", json.dumps({"raters": report.raters, **report.summary},
                                                        indent=1, default=float).encode())
    dis = report.disagreements.assign(detail=report.disagreements["detail"].map(json.dumps))
    atomic_write_bytes(out / "disagreements.csv", dis.to_csv(index=False).encode())
    atomic_write_bytes(out / "consensus_labels.csv", report.consensus.to_csv(index=False).encode())
    for image_id, mask in report.consensus_masks.items():
        write_mask_png(out / "consensus_masks" / f"{image_id}.png", mask)
    return out

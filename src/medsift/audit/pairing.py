"""Pairing and naming: orphan annotations, images without annotation, near-miss names, VOC <filename> mismatches."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame

_DIGITS = re.compile(r"(\d+)")


def name_key(stem: str) -> tuple:
    """A name with numbers compared by value and letters case-folded: ``004_15`` and ``0004_15`` share a key."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in _DIGITS.split(stem) if p != "")


def _stem(path: str) -> str:
    name = Path(str(path).replace("\\", "/")).name
    for suffix in (".nii.gz", ".xml", ".json", ".txt"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _present(v) -> bool:
    return isinstance(v, str) and v.strip() != ""


def read_unpaired(workspace: Path | None) -> pd.DataFrame:
    """All ``WS/ingest/<source>/unpaired_annotations.csv`` tables, concatenated (empty when none)."""
    cols = ["annotation_path", "problem", "candidate_image_id", "detail", "source"]
    if workspace is None:
        return pd.DataFrame(columns=cols)
    frames = []
    for csv in sorted(Path(workspace).glob("ingest/*/unpaired_annotations.csv")):
        t = pd.read_csv(csv, dtype=str, keep_default_na=False)
        t["source"] = csv.parent.name
        frames.append(t)
    return pd.concat(frames, ignore_index=True).reindex(columns=cols).fillna("") if frames else pd.DataFrame(columns=cols)


def _voc_filenames(m: pd.DataFrame) -> pd.Series:
    if "voc_filename" in m.columns:
        return m["voc_filename"].astype("string").fillna("")
    from medsift.errors import FormatError
    from medsift.formats.voc import read_voc

    out = []
    for p in m["annotation_path"].astype("string").fillna(""):
        if str(p).lower().endswith(".xml") and Path(str(p)).is_file():
            try:
                out.append(read_voc(str(p)).filename or "")
            except FormatError:
                out.append("")
        else:
            out.append("")
    return pd.Series(out, index=m.index, dtype="string")


@CHECKS.register("pairing")
def check_pairing(ctx: AuditContext) -> CheckResult:
    """Flag annotation/image pairing problems.

    - ``orphan_annotation`` (error): an annotation file that matches no image (from ingest's unpaired table).
    - ``near_match`` (warning): an unpaired annotation whose name nearly matches an image (``004_15`` vs
      ``0004_15``); reported on that image.
    - ``missing_annotation`` (warning when most images of the source have one, else info).
    - ``annotation_filename`` (warning): the VOC ``<filename>`` names another image than the file it sits in;
      an extension-only difference (``.jpg`` inside ``0004_15.xml`` for ``0004_15.png``) is counted in the summary.
    """
    m = ctx.manifest
    ids = ctx.ids
    scores = ctx.zeros()
    rows: list[dict] = []
    id_by_key: dict[tuple, list[str]] = {}
    for iid in ids:
        id_by_key.setdefault(name_key(iid), []).append(iid)
    unpaired = read_unpaired(ctx.workspace)
    claimed: set[str] = set()
    for r in unpaired.itertuples(index=False):
        stem = _stem(r.annotation_path)
        cand = r.candidate_image_id if _present(r.candidate_image_id) and r.candidate_image_id in set(ids) else ""
        if not cand:
            near = [i for i in id_by_key.get(name_key(stem), []) if i != stem]
            cand = near[0] if near else ""
        if cand:
            claimed.add(cand)
            rows.append({"image_id": cand, "check": "pairing", "severity": "warning", "score": 0.9,
                         "detail": f"near_match: annotation {Path(r.annotation_path).name} nearly matches this image "
                                   f"({r.problem}) {r.detail}".strip(), "related_id": stem})
        else:
            rows.append({"image_id": stem, "check": "pairing", "severity": "error", "score": 1.0,
                         "detail": f"orphan_annotation: {r.annotation_path} matches no image ({r.problem}) "
                                   f"{r.detail}".strip(), "related_id": ""})
    ann = m["annotation_path"].astype("string").fillna("") if "annotation_path" in m else pd.Series([""] * len(m))
    has_ann = ann.str.len().to_numpy() > 0
    source = m["source"].astype(str).to_numpy()
    ext_only = 0
    examples: list[str] = []
    for src in np.unique(source):
        sel = source == src
        frac = float(has_ann[sel].mean())
        if frac == 0.0:
            continue
        severity = "warning" if frac >= 0.5 else "info"
        for i in np.flatnonzero(sel & ~has_ann):
            if ids[i] in claimed:
                continue
            rows.append({"image_id": ids[i], "check": "pairing", "severity": severity,
                         "score": 0.6 if severity == "warning" else 0.2,
                         "detail": f"missing_annotation: no annotation file, while {frac:.0%} of source {src!r} has one"})
    if has_ann.any():
        voc = _voc_filenames(m)
        for i in np.flatnonzero(has_ann & (voc.str.len().to_numpy() > 0)):
            inside, own = _stem(voc.iloc[i]), _stem(ann.iloc[i])
            if inside != own and inside != ids[i]:
                rows.append({"image_id": ids[i], "check": "pairing", "severity": "warning", "score": 0.8,
                             "detail": f"annotation_filename: <filename>{voc.iloc[i]}</filename> inside "
                                       f"{Path(ann.iloc[i]).name} names another image",
                             "related_id": inside if inside in set(ids) else ""})
            elif Path(str(voc.iloc[i])).suffix.lower() != Path(str(m["image_path"].iloc[i])).suffix.lower():
                ext_only += 1
                if len(examples) < 5:
                    examples.append(f"{Path(ann.iloc[i]).name}: <filename>{voc.iloc[i]}</filename> for "
                                    f"{Path(str(m['image_path'].iloc[i])).name}")
    findings = findings_frame(rows)
    in_manifest = findings[findings["image_id"].isin(set(ids))]
    for iid, s in in_manifest.groupby("image_id")["score"].max().items():
        scores.loc[iid] = s
    kinds = findings["detail"].str.split(":").str[0].value_counts().to_dict() if len(findings) else {}
    return CheckResult(scores, findings, {"kinds": {str(k): int(v) for k, v in kinds.items()},
                                          "n_unpaired_annotations": int(len(unpaired)),
                                          "extension_only_filename_mismatch": ext_only,
                                          "extension_only_examples": examples})

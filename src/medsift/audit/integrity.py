"""Integrity: unreadable or truncated files, content type vs extension, odd size/mode/bit depth, constant images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.audit.base import CHECKS, AuditContext, CheckResult, findings_frame

_COMPATIBLE = {("jpeg", "jpeg"), ("png", "png"), ("dicom", "dicom"), ("gzip", "gzip"), ("nifti", "nifti"),
               ("bmp", "bmp"), ("tiff", "tiff"), ("unknown", "dicom")}


def _mode_of(values: pd.Series) -> object:
    v = values[values.astype(str) != ""]
    return v.mode().iloc[0] if len(v) else None


@CHECKS.register("integrity")
def check_integrity(ctx: AuditContext) -> CheckResult:
    """Flag files that cannot be trusted as pixels.

    Errors: ingest status not ok, missing/unreadable/truncated file, content type that disagrees with the
    extension, constant image (max == min). Warnings: size, mode or bit depth unlike the majority of its
    source (e.g. 16-bit where the dataset is 8-bit).
    """
    f, m = ctx.features, ctx.manifest
    rows: list[dict] = []
    scores = ctx.zeros()
    ids = ctx.ids
    source = m["source"].astype(str).to_numpy() if "source" in m else np.array(["default"] * len(m))
    status = m["status"].astype(str).to_numpy() if "status" in m else np.array(["ok"] * len(m))
    majority: dict[str, dict] = {}
    for src in np.unique(source):
        sel = (source == src) & ctx.readable
        sub = f[sel]
        size = (sub["img_w"].astype(str) + "x" + sub["img_h"].astype(str))
        majority[src] = {"size": _mode_of(size), "mode": _mode_of(sub["mode"]),
                         "bit_depth": _mode_of(sub["bit_depth"].astype(str))}

    def add(i: int, severity: str, score: float, detail: str) -> None:
        rows.append({"image_id": ids[i], "check": "integrity", "severity": severity, "score": score,
                     "detail": detail})
        scores.iloc[i] = max(scores.iloc[i], score)

    for i, r in enumerate(f.itertuples(index=False)):
        if status[i] not in ("ok", "<NA>", "nan"):
            detail = str(m["status_detail"].iloc[i]) if "status_detail" in m and pd.notna(m["status_detail"].iloc[i]) else ""
            add(i, "error", 1.0, f"ingest_status: {status[i]} {detail}".strip())
        if not r.read_ok:
            add(i, "error", 1.0, f"{r.error_kind or 'unreadable'}: {r.error}")
        ext, sniffed = r.ext_type, r.sniffed
        if sniffed and ext != "unknown" and sniffed != "unknown" and (ext, sniffed) not in _COMPATIBLE:
            add(i, "error", 1.0, f"wrong_extension: file name says {ext} but content is {sniffed}")
        if not r.read_ok:
            continue
        if r.vmax == r.vmin:
            add(i, "error", 1.0, f"constant: every pixel equals {r.vmin:g}")
        maj = majority[source[i]]
        size = f"{r.img_w}x{r.img_h}"
        if maj["size"] is not None and size != maj["size"]:
            add(i, "warning", 0.7, f"size: {size} but most images of source {source[i]!r} are {maj['size']}")
        if maj["mode"] is not None and r.mode != maj["mode"]:
            add(i, "warning", 0.6, f"mode: {r.mode} but most images are {maj['mode']}")
        if maj["bit_depth"] is not None and str(r.bit_depth) != maj["bit_depth"]:
            add(i, "warning", 0.6, f"bit_depth: {r.bit_depth}-bit where {maj['bit_depth']}-bit is expected")
        w, h = m["width"].iloc[i] if "width" in m else pd.NA, m["height"].iloc[i] if "height" in m else pd.NA
        if pd.notna(w) and pd.notna(h) and (int(w), int(h)) != (r.img_w, r.img_h):
            add(i, "warning", 0.7, f"size: manifest says {int(w)}x{int(h)} but pixels are {size}")
    findings = findings_frame(rows)
    kinds = findings["detail"].str.split(":").str[0].value_counts().to_dict() if len(findings) else {}
    return CheckResult(scores, findings, {"kinds": {str(k): int(v) for k, v in kinds.items()}, "majority": majority})

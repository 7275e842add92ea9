"""A tiny workspace for report and review tests: 2 patients x 4 slices of 64x64 PNGs, masks, boxes, findings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FINDINGS_CSV = """image_id,check,severity,score,detail,related_id
P1_02,duplicates,warning,0.91,near-duplicate of P2_02 (phash distance 2),P2_02
P2_02,duplicates,warning,0.91,near-duplicate of P1_02 (phash distance 2),P1_02
P1_01,pairing,error,1.0,mask without any box,
P2_03,intensity,info,0.40,"dark slice, mean 12.5",
P1_01,orientation,warning,0.70,possibly flipped left-right,
P9_99,pairing,error,1.0,annotation without image,
"""


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def slice_pixels(patient: int, index: int) -> np.ndarray:
    """64x64 uint8 gradient plus a bright square whose place depends on the slice (hand-checkable values)."""
    img = np.tile(np.arange(64, dtype=np.uint8) * 2, (64, 1))
    img[16 + 4 * index:24 + 4 * index, 20:28] = 250 - 10 * patient
    return img


def build_workspace(root: Path, *, findings: bool = True) -> Path:
    """Write source PNGs under ``root/src`` and a workspace at ``root/ws``; returns the workspace folder."""
    from medsift.manifest import new_manifest
    from medsift.workspace import Workspace

    src = root / "src"
    rows = []
    for p in (1, 2):
        for s in range(4):
            iid = f"P{p}_{s:02d}"
            img = write_png(src / "images" / f"{iid}.png", slice_pixels(p, s))
            mask_path = ""
            boxes: list = []
            if s in (1, 2):
                m = np.zeros((64, 64), np.uint8)
                m[16 + 4 * s:24 + 4 * s, 20:28] = 255
                mask_path = str(write_png(src / "masks" / f"{iid}.png", m))
                boxes = [[20.0, 16.0 + 4 * s, 28.0, 24.0 + 4 * s, "a"]]
            rows.append({
                "image_id": iid, "source": "tiny", "patient_id": f"P{p}", "series_id": f"P{p}",
                "slice_index": s, "image_path": str(img), "mask_path": mask_path or None, "format": "png",
                "width": 64, "height": 64, "boxes": boxes, "label_hemorrhage": 1 if boxes else 0,
                "split": "train" if p == 1 else "test", "has_hu": False,
            })
    ws = Workspace.at(root / "ws")
    ws.root.mkdir(parents=True, exist_ok=True)
    ws.write(new_manifest(rows), reason="test fixture")
    if findings:
        (ws.sub("audit") / "findings.csv").write_text(FINDINGS_CSV)
    return ws.root

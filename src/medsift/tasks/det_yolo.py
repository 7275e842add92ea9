"""Detection data from medsift's COCO / YOLO exports, and the optional YOLO backend (``ultralytics``).

``ultralytics`` is AGPL-3.0 licensed: it is only an optional extra (``pip install medsift[yolo]``), never a core
dependency, and nothing in medsift imports it unless :func:`train_yolo` is called.

Example (after ``medsift export WS --target yolo --out EXP``)::

    gt = yolo_ground_truth("EXP", split="test")        # {image_id: (n, 4) xyxy pixels}
    train_yolo("EXP", "RUN-yolo", epochs=30, imgsz=256)  # needs ultralytics
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medsift.errors import ConfigError


def _as_arrays(table: dict[str, list[list]], labels: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    return {str(k): np.asarray([[float(v) for v in b[:4]] for b in boxes if labels is None or str(b[4]) in labels],
                               np.float64).reshape(-1, 4) for k, boxes in table.items()}


def coco_ground_truth(export_dir: str | Path, *, split: str,
                      labels: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``{image stem: (n, 4) xyxy pixel boxes}`` of a medsift COCO export's ``annotations/instances_<split>.json``
    (images without boxes included, with empty arrays); only categories in ``labels`` when given (a COCO
    export also holds one box per mask component under the mask category)."""
    from medsift.formats.coco import read_coco

    path = Path(export_dir) / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; export the workspace with `medsift export WS --target coco`")
    return {Path(k).stem: v for k, v in _as_arrays(read_coco(path), labels).items()}


def yolo_ground_truth(export_dir: str | Path, *, split: str) -> dict[str, np.ndarray]:
    """``{image stem: (n, 4) xyxy pixel boxes}`` of a medsift YOLO export (``data.yaml``, ``labels/<split>``)."""
    from medsift.formats.yolo import image_sizes_from_dir, read_data_yaml, read_yolo_dir

    root = Path(export_dir)
    data = read_data_yaml(root / "data.yaml")
    if split not in data.splits:
        raise ConfigError(f"{root / 'data.yaml'} has no split {split!r}; it lists {sorted(data.splits)}")
    images = data.splits[split]
    images = Path(images)
    labels = images.parent.parent / "labels" / images.name if images.parent.name == "images" else \
        root / "labels" / split  # YOLO's rule: .../images/<split> -> .../labels/<split>
    return _as_arrays(read_yolo_dir(labels, names=data.names, image_sizes=image_sizes_from_dir(images)))


def train_yolo(export_dir: str | Path, out: str | Path, *, model: str = "yolov8n.yaml", epochs: int = 30,
               imgsz: int = 256, device: str = "cpu", batch: int = 16, seed: int = 0) -> dict[str, Any]:
    """Train an ultralytics YOLO model from scratch (``model`` a ``.yaml`` architecture: no download) on a
    medsift YOLO export; returns its validation metrics (``map50``, ``map50_95``).

    Raises:
        ConfigError: ``ultralytics`` is not installed (it is an optional, AGPL-licensed extra) or the export
            has no ``data.yaml``.
    """
    try:
        from ultralytics import YOLO
    except ImportError:
        raise ConfigError("the YOLO backend needs the optional extra `ultralytics` (AGPL-3.0): "
                          "pip install 'medsift[yolo]'; the default detectors need nothing extra") from None
    data = Path(export_dir) / "data.yaml"
    if not data.is_file():
        raise ConfigError(f"{data} does not exist; export the workspace with `medsift export WS --target yolo`")
    out = Path(out)
    net = YOLO(model)
    net.train(data=str(data), epochs=int(epochs), imgsz=int(imgsz), device=device, batch=int(batch), seed=int(seed),
              project=str(out.parent), name=out.name, exist_ok=True, pretrained=False, verbose=False)
    metrics = net.val(data=str(data), imgsz=int(imgsz), device=device, verbose=False)
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}

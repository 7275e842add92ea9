"""COCO JSON: boxes ``[x, y, w, h]`` and instance masks as compressed RLE (via pycocotools).

Conversion to/from medsift boxes ``[x1, y1, x2, y2, label]`` (pixels, x2/y2 = last pixel + 1, see
:mod:`medsift.formats.masks`): ``[x, y, w, h] = [x1, y1, x2 - x1, y2 - y1]``, exact in both directions.

Example:
    >>> xyxy_to_xywh([3, 2, 7, 5, "a"])
    [3.0, 2.0, 4.0, 3.0]
    >>> xywh_to_xyxy([3, 2, 4, 3], "a")
    [3.0, 2.0, 7.0, 5.0, 'a']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from medsift.errors import FormatError
from medsift.manifest import atomic_write_bytes


def xyxy_to_xywh(box: Sequence) -> list[float]:
    """``[x1, y1, x2, y2, (label)]`` -> COCO ``[x, y, w, h]`` (pixels)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return [x1, y1, x2 - x1, y2 - y1]


def xywh_to_xyxy(bbox: Sequence[float], label: str) -> list:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2, label]`` (pixels, x2/y2 exclusive)."""
    x, y, w, h = (float(v) for v in bbox[:4])
    return [x, y, x + w, y + h, label]


def mask_to_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a binary (H, W) mask, JSON-ready.

    Returns:
        ``{"size": [H, W], "counts": str}`` (column-major run lengths, as pycocotools writes them).
    """
    from pycocotools import mask as mask_utils

    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise FormatError(f"mask must be 2D (H, W); got shape {arr.shape}")
    rle = mask_utils.encode(np.asfortranarray(arr.astype(bool).astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed ``counts`` str/bytes, or uncompressed list of ints) to a bool (H, W) mask."""
    from pycocotools import mask as mask_utils

    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"RLE must be {{'size': [H, W], 'counts': ...}}; got {rle!r:.200} ({exc})") from None
    if isinstance(counts, list):
        if sum(int(c) for c in counts) != h * w:
            raise FormatError(f"uncompressed RLE counts sum to {sum(counts)}; expected H*W = {h * w}")
        compressed = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, (str, bytes)):
        compressed = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise FormatError(f"RLE counts must be a string or a list of ints; got {type(counts).__name__}")
    import warnings

    with warnings.catch_warnings():  # pycocotools <= 2.0.11 trips numpy 2's __array__(copy=) deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(compressed).astype(bool)


@dataclass(frozen=True)
class CocoImage:
    """One image entry: file name relative to the image folder, size in pixels, boxes, optional mask.

    ``extra`` keys (e.g. ``medsift_id``, ``patient_id``) are copied into the COCO image record.
    """

    file_name: str
    width: int
    height: int
    boxes: list = field(default_factory=list)
    mask: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def build_coco(images: Sequence[CocoImage], *, categories: Sequence[str], mask_label: str = "lesion",
               min_area: int = 1, description: str = "medsift export") -> dict:
    """A COCO detection/instance dataset dict.

    Box annotations come from ``CocoImage.boxes`` (bbox only). A mask gives one annotation per connected
    component (category ``mask_label``) with its bbox, pixel area and RLE ``segmentation``.
    Image and annotation ids start at 1; category ids are 1..K in the order of ``categories``.

    Raises:
        FormatError: a box label or ``mask_label`` (when a mask is given) is not in ``categories``.
    """
    from skimage.measure import label as cc_label
    from skimage.measure import regionprops

    cat_ids = {name: i + 1 for i, name in enumerate(categories)}
    out_images, annotations = [], []
    for image_id, img in enumerate(images, start=1):
        out_images.append({"id": image_id, "file_name": img.file_name, "width": int(img.width),
                           "height": int(img.height), **img.extra})
        for box in img.boxes:
            label = str(box[4])
            if label not in cat_ids:
                raise FormatError(f"box label {label!r} of {img.file_name} is not a category; "
                                  f"expected one of {list(categories)}")
            x, y, w, h = xyxy_to_xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_ids[label],
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        if img.mask is None or not np.asarray(img.mask).any():
            continue
        if mask_label not in cat_ids:
            raise FormatError(f"mask label {mask_label!r} is not a category; expected one of {list(categories)}")
        mask = np.asarray(img.mask).astype(bool)
        if mask.shape != (int(img.height), int(img.width)):
            raise FormatError(f"mask of {img.file_name} has shape {mask.shape}; expected (H, W) = "
                              f"({img.height}, {img.width})")
        labelled = cc_label(mask, connectivity=2)
        for region in regionprops(labelled):
            if region.area < min_area:
                continue
            r0, c0, r1, c1 = region.bbox
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": cat_ids[mask_label],
                                "bbox": [float(c0), float(r0), float(c1 - c0), float(r1 - r0)],
                                "area": float(region.area), "iscrowd": 0,
                                "segmentation": mask_to_rle(labelled == region.label)})
    return {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": cat_ids[n], "name": n, "supercategory": "lesion"} for n in categories],
    }


def box_result(*, image_id: int, category_id: int, box: Sequence, score: float) -> dict:
    """One COCO *results* entry for a predicted box ``[x1, y1, x2, y2, ...]`` (``COCO.loadRes``, iouType bbox)."""
    return {"image_id": int(image_id), "category_id": int(category_id), "bbox": xyxy_to_xywh(box),
            "score": float(score)}


def mask_result(*, image_id: int, category_id: int, mask: np.ndarray, score: float) -> dict:
    """One COCO *results* entry for a predicted binary (H, W) mask as RLE (``COCO.loadRes``, iouType segm)."""
    return {"image_id": int(image_id), "category_id": int(category_id), "segmentation": mask_to_rle(mask),
            "score": float(score)}


def write_coco(path: str | Path, dataset: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Path:
    """Write a COCO dataset dict (or a results list) as JSON atomically."""
    path = Path(path)
    atomic_write_bytes(path, json.dumps(dataset, indent=1).encode("utf-8"))
    return path


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _records(data: Mapping[str, Any], key: str, needed: tuple[str, ...], path: Path) -> list[dict]:
    items = data.get(key)
    if not isinstance(items, list):
        raise FormatError(f"{path}: COCO key {key!r} must be a list; got {type(items).__name__}")
    for i, item in enumerate(items):
        missing = [k for k in needed if not isinstance(item, dict) or k not in item]
        if missing:
            raise FormatError(f"{path}: {key}[{i}] lacks keys {missing}; expected {list(needed)}")
    return items


def read_coco(path: str | Path) -> dict[str, list[list]]:
    """Read a COCO JSON file as ``{file_name: [[x1, y1, x2, y2, category_name], ...]}`` (pixels).

    Every image appears, with an empty list when it has no annotations.

    Raises:
        FormatError: not JSON; missing ``images``/``annotations``/``categories`` or record keys; duplicate ids
            or file names; annotation pointing at an unknown image or category; bbox not 4 finite numbers;
            negative width or height.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not a readable JSON file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: COCO file must hold a JSON object; got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise FormatError(f"{path}: COCO file lacks keys {missing}; expected images, annotations, categories")
    images = _records(data, "images", ("id", "file_name"), path)
    categories = _records(data, "categories", ("id", "name"), path)
    annotations = _records(data, "annotations", ("image_id", "category_id", "bbox"), path)

    names: dict[Any, str] = {}
    for cat in categories:
        if cat["id"] in names:
            raise FormatError(f"{path}: category id {cat['id']!r} appears twice")
        names[cat["id"]] = str(cat["name"])
    files: dict[Any, str] = {}
    out: dict[str, list[list]] = {}
    for img in images:
        if img["id"] in files:
            raise FormatError(f"{path}: image id {img['id']!r} appears twice")
        if str(img["file_name"]) in out:
            raise FormatError(f"{path}: file_name {img['file_name']!r} appears twice")
        files[img["id"]] = str(img["file_name"])
        out[str(img["file_name"])] = []
    for i, ann in enumerate(annotations):
        if ann["image_id"] not in files:
            raise FormatError(f"{path}: annotations[{i}] has image_id {ann['image_id']!r}, not in images")
        if ann["category_id"] not in names:
            raise FormatError(f"{path}: annotations[{i}] has category_id {ann['category_id']!r}; "
                              f"expected one of {sorted(names)}")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_finite_number(v) for v in bbox):
            raise FormatError(f"{path}: annotations[{i}] bbox must be 4 finite numbers [x, y, w, h]; got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise FormatError(f"{path}: annotations[{i}] bbox has negative width/height; got {bbox!r}")
        out[files[ann["image_id"]]].append(xywh_to_xyxy(bbox, names[ann["category_id"]]))
    return out

"""MONAI decathlon-style datalist JSON: ``{"training": [...], "validation": [...], "test": [...]}``.

Each item is a dict with ``image`` (path relative to the JSON file's folder), optional ``label`` (mask
path), and any other keys (``fold``, ``image_id``, ``label_hemorrhage``...). Loads with
``monai.data.load_decathlon_datalist(path, data_list_key="training")``, which resolves ``image``/``label``
against the JSON file's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from medsift.errors import FormatError
from medsift.manifest import atomic_write_bytes

SPLIT_KEYS: dict[str, str] = {"train": "training", "val": "validation", "test": "test"}
"""manifest ``split`` -> datalist key."""


def build_datalist(items: Mapping[str, Sequence[Mapping[str, Any]]], *, name: str = "medsift",
                   description: str = "", labels: Mapping[int, str] | None = None,
                   modality: Mapping[int, str] | None = None) -> dict:
    """A decathlon-style datalist.

    Args:
        items: ``{"train"|"val"|"test": [item, ...]}`` (manifest split names).
        labels: ``{value: name}`` of the label maps, e.g. ``{0: "background", 1: "lesion"}``.
        modality: ``{channel: name}``, e.g. ``{0: "CT"}``.

    Raises:
        FormatError: an unknown split name or an item without ``image``.
    """
    out: dict[str, Any] = {"name": name, "description": description,
                           "modality": {str(k): v for k, v in (modality or {0: "CT"}).items()},
                           "labels": {str(k): v for k, v in (labels or {}).items()}}
    for split, key in SPLIT_KEYS.items():
        out[key] = [dict(it) for it in items.get(split, [])]
    unknown = sorted(set(items) - set(SPLIT_KEYS))
    if unknown:
        raise FormatError(f"datalist splits must be among {list(SPLIT_KEYS)}; got {unknown}")
    for key in SPLIT_KEYS.values():
        for i, item in enumerate(out[key]):
            if "image" not in item:
                raise FormatError(f"datalist {key}[{i}] lacks 'image'; got keys {sorted(item)}")
    out["numTraining"] = len(out["training"])
    out["numValidation"] = len(out["validation"])
    out["numTest"] = len(out["test"])
    return out


def write_datalist(path: str | Path, datalist: Mapping[str, Any]) -> Path:
    """Write a datalist JSON atomically."""
    path = Path(path)
    atomic_write_bytes(path, json.dumps(datalist, indent=1).encode("utf-8"))
    return path

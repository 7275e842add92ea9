"""YOLO detection labels (one ``.txt`` per image, ``class cx cy w h`` normalised to 0..1) and ``data.yaml``.

Conversion to/from medsift boxes ``[x1, y1, x2, y2, label]`` (pixels, x2/y2 = last pixel + 1):
``cx = (x1 + x2) / 2 / W``, ``cy = (y1 + y2) / 2 / H``, ``w = (x2 - x1) / W``, ``h = (y2 - y1) / H``.
Labels are written with 6 decimals, so a round trip moves a coordinate by at most ``1e-6 * 512`` pixels
on a 512-pixel image.

Example:
    >>> xyxy_to_yolo([3, 2, 7, 5, "a"], width=10, height=10)
    (0.5, 0.35, 0.4, 0.3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from medsift.errors import FormatError
from medsift.manifest import atomic_write_bytes

DECIMALS = 6
_TOL = 1e-6


def _check_size(width: float, height: float) -> None:
    if not (width > 0 and height > 0):
        raise FormatError(f"image size must be positive pixels; got width={width!r}, height={height!r}")


def xyxy_to_yolo(box: Sequence, *, width: int, height: int) -> tuple[float, float, float, float]:
    """``[x1, y1, x2, y2, (label)]`` in pixels -> normalised ``(cx, cy, w, h)``."""
    _check_size(width, height)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def yolo_to_xyxy(cxcywh: Sequence[float], label: str, *, width: int, height: int) -> list:
    """Normalised ``(cx, cy, w, h)`` -> ``[x1, y1, x2, y2, label]`` in pixels."""
    _check_size(width, height)
    cx, cy, w, h = (float(v) for v in cxcywh[:4])
    return [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height, label]


def yolo_label_text(boxes: Sequence[Sequence], *, names: Sequence[str], width: int, height: int) -> str:
    """The text of one YOLO label file (empty string for an image without boxes).

    Raises:
        FormatError: a box label is not in ``names``.
    """
    index = {n: i for i, n in enumerate(names)}
    lines = []
    for box in boxes:
        label = str(box[4])
        if label not in index:
            raise FormatError(f"box label {label!r} is not a YOLO class; expected one of {list(names)}")
        values = xyxy_to_yolo(box, width=width, height=height)
        lines.append(" ".join([str(index[label])] + [f"{v:.{DECIMALS}f}" for v in values]))
    return "".join(line + "\n" for line in lines)


def parse_yolo_label(text: str, *, names: Sequence[str], width: int, height: int,
                     source: str = "<text>") -> list[list]:
    """Parse YOLO detection lines into pixel boxes ``[x1, y1, x2, y2, class_name]``.

    Raises:
        FormatError: a line without exactly 5 fields, a non-integer or out-of-range class, a non-finite value,
            a centre outside 0..1, or a width/height outside 0..1 (negative included).
    """
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{source}:{n}"
        if len(fields) != 5:
            raise FormatError(f"{where}: expected 5 fields 'class cx cy w h' (detection); got {len(fields)}: "
                              f"{line.strip()[:80]!r}")
        try:
            cls = int(fields[0])
        except ValueError:
            raise FormatError(f"{where}: class must be an integer; got {fields[0]!r}") from None
        if not 0 <= cls < len(names):
            raise FormatError(f"{where}: class {cls} out of range; expected 0..{len(names) - 1} ({list(names)})")
        try:
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise FormatError(f"{where}: cx cy w h must be numbers; got {fields[1:]}") from None
        if not all(math.isfinite(v) for v in (cx, cy, w, h)):
            raise FormatError(f"{where}: values must be finite; got {fields[1:]}")
        if w < 0 or h < 0:
            raise FormatError(f"{where}: width/height must be >= 0; got w={w}, h={h}")
        if not all(-_TOL <= v <= 1 + _TOL for v in (cx, cy, w, h)):
            raise FormatError(f"{where}: cx cy w h must be normalised to 0..1; got {fields[1:]}")
        out.append(yolo_to_xyxy((cx, cy, w, h), names[cls], width=width, height=height))
    return out


def read_yolo_file(path: str | Path, *, names: Sequence[str], width: int, height: int) -> list[list]:
    """Read one YOLO label file as pixel boxes (see :func:`parse_yolo_label`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read YOLO label file ({exc})") from None
    return parse_yolo_label(text, names=names, width=width, height=height, source=str(path))


def image_sizes_from_dir(images_dir: str | Path) -> dict[str, tuple[int, int]]:
    """``{stem: (width, height)}`` of the images in a folder (headers only), for :func:`read_yolo_dir`."""
    from PIL import Image, UnidentifiedImageError

    sizes = {}
    for path in sorted(Path(images_dir).iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            with Image.open(path) as img:
                sizes[path.stem] = (int(img.width), int(img.height))
        except (OSError, UnidentifiedImageError):
            continue  # not an image (e.g. a cache file)
    return sizes


def read_yolo_dir(labels_dir: str | Path, *, names: Sequence[str],
                  image_sizes: Mapping[str, tuple[int, int]]) -> dict[str, list[list]]:
    """Read every ``*.txt`` label of a folder as ``{stem: [[x1, y1, x2, y2, class_name], ...]}`` in pixels.

    Args:
        labels_dir: folder of YOLO ``.txt`` files (``labels/train``...).
        names: class names, index = class id (from ``data.yaml``, see :func:`read_data_yaml`).
        image_sizes: ``{stem: (width, height)}`` of the images (see :func:`image_sizes_from_dir`);
            images without a label file get an empty list (YOLO's "background image").

    Raises:
        FormatError: a label file has no image size, or bad content (see :func:`parse_yolo_label`).
    """
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise FormatError(f"{labels_dir}: YOLO labels folder does not exist")
    out: dict[str, list[list]] = {stem: [] for stem in image_sizes}
    for path in sorted(labels_dir.glob("*.txt")):
        if path.stem not in image_sizes:
            raise FormatError(f"{path}: no image named {path.stem!r} with a known size; "
                              f"expected one of {sorted(image_sizes)[:5]}...")
        w, h = image_sizes[path.stem]
        out[path.stem] = read_yolo_file(path, names=names, width=w, height=h)
    return out


@dataclass(frozen=True)
class YoloData:
    """What a ``data.yaml`` says: class names and image folders per split, resolved against its folder."""

    root: Path
    names: list[str]
    splits: dict[str, Path]


def data_yaml_text(*, names: Sequence[str], splits: Mapping[str, str]) -> str:
    """Text of an Ultralytics-style ``data.yaml``.

    No ``path:`` key is written, so tools resolve the split folders (``images/train``...) relative to
    the yaml's own folder and the dataset can be moved as a whole.
    """
    import yaml

    body = {**{k: str(v) for k, v in splits.items()}, "nc": len(names), "names": list(names)}
    return "# written by medsift export; split paths are relative to this file\n" + yaml.safe_dump(
        body, sort_keys=False)


def write_data_yaml(path: str | Path, *, names: Sequence[str], splits: Mapping[str, str]) -> Path:
    """Write :func:`data_yaml_text` atomically."""
    path = Path(path)
    atomic_write_bytes(path, data_yaml_text(names=names, splits=splits).encode("utf-8"))
    return path


def read_data_yaml(path: str | Path) -> YoloData:
    """Read a YOLO ``data.yaml`` (names as a list or an ``{id: name}`` map; ``nc`` checked when present).

    Raises:
        FormatError: not YAML, no ``names``, ids not 0..n-1, or ``nc`` disagreeing with ``names``.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FormatError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(data, dict) or "names" not in data:
        raise FormatError(f"{path}: data.yaml must be a mapping with 'names'; got {str(data)[:80]!r}")
    raw = data["names"]
    if isinstance(raw, dict):
        try:
            ids = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise FormatError(f"{path}: names keys must be integers; got {list(raw)}") from None
        if ids != list(range(len(ids))):
            raise FormatError(f"{path}: names ids must be 0..{len(ids) - 1}; got {ids}")
        names = [str(raw[k] if k in raw else raw[str(k)]) for k in ids]
    elif isinstance(raw, list):
        names = [str(n) for n in raw]
    else:
        raise FormatError(f"{path}: names must be a list or a mapping; got {type(raw).__name__}")
    if "nc" in data and data["nc"] != len(names):
        raise FormatError(f"{path}: nc = {data['nc']!r} but names has {len(names)} entries")
    base = path.parent
    if data.get("path"):
        base = Path(str(data["path"]))
        base = base if base.is_absolute() else path.parent / base
    splits = {k: base / str(data[k]) for k in ("train", "val", "test") if data.get(k)}
    return YoloData(root=base, names=names, splits=splits)

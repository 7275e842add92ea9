"""Pascal VOC XML annotations: parse safely (defusedxml), write the same layout.

Boxes are ``[x1, y1, x2, y2, label]`` in pixels as written in the file (VOC ``xmin..xmax``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from medsift.errors import FormatError
from medsift.manifest import atomic_write_bytes

MAX_XML_BYTES = 5_000_000


@dataclass(frozen=True)
class VocAnnotation:
    """What one VOC file says: the image file name it claims, the image size if given, and its boxes."""

    filename: str | None
    width: int | None
    height: int | None
    boxes: list[list] = field(default_factory=list)
    path_field: str | None = None


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else None


def _number(node: ET.Element, tag: str, path: Path) -> float:
    raw = _text(node, tag)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FormatError(f"{path}: bndbox/{tag} must be a number; got {raw!r}") from None
    if not math.isfinite(value):
        raise FormatError(f"{path}: bndbox/{tag} must be finite; got {raw!r}")
    return value


def read_voc(path: str | Path) -> VocAnnotation:
    """Parse one VOC file. Raises :class:`FormatError` for malformed, hostile or oversized XML."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise FormatError(f"{path}: {size} bytes is too large for a VOC annotation (max {MAX_XML_BYTES})")
        root = SafeET.parse(str(path), forbid_dtd=True).getroot()
    except (ET.ParseError, DefusedXmlException) as exc:
        raise FormatError(f"{path}: not a well-formed, safe XML file ({type(exc).__name__}: {exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None
    if root.tag != "annotation":
        raise FormatError(f"{path}: root element must be <annotation>; got <{root.tag}>")
    size_node = root.find("size")
    width = height = None
    if size_node is not None:
        w, h = _text(size_node, "width"), _text(size_node, "height")
        width = int(float(w)) if w and w.replace(".", "", 1).isdigit() else None
        height = int(float(h)) if h and h.replace(".", "", 1).isdigit() else None
    boxes = []
    for obj in root.iter("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            raise FormatError(f"{path}: <object> without <bndbox>")
        label = _text(obj, "name") or "object"
        boxes.append([_number(bnd, t, path) for t in ("xmin", "ymin", "xmax", "ymax")] + [label])
    return VocAnnotation(_text(root, "filename"), width, height, boxes, _text(root, "path"))


def voc_xml(*, filename: str, width: int, height: int, boxes: list[list], depth: int = 1,
            folder: str = "images") -> bytes:
    """Serialise boxes ``[x1, y1, x2, y2, label]`` as a VOC annotation (integers, as VOC tools expect)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        ET.SubElement(size, tag).text = str(int(value))
    ET.SubElement(root, "segmented").text = "0"
    for x1, y1, x2, y2, label in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = str(label)
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x1), ("ymin", y1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bnd, tag).text = str(int(round(float(value))))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_voc(path: str | Path, **kwargs) -> Path:
    """Write a VOC file atomically; keyword arguments as :func:`voc_xml`."""
    path = Path(path)
    atomic_write_bytes(path, voc_xml(**kwargs))
    return path

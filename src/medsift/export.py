"""Export a workspace as a dataset another tool loads unchanged: COCO, YOLO, Pascal VOC, nnU-Net v2, MONAI.

Rows exported: ``status == "ok"`` and not ``excluded`` (:func:`medsift.manifest.active`). The manifest
``split`` column picks the subset (train/val/test); rows without a split go to ``train`` (counted in the
summary notes). Output goes to a fresh folder: written in a hidden staging folder next to it and renamed
into place at the end, so a failed export leaves nothing half-written. A non-empty output folder is refused
unless ``overwrite`` is set, and even then only when it holds a previous medsift export (marker file
``.medsift-export.json``). The output folder may not be inside (or contain) a source folder of the data.

Pixels (from :func:`medsift.io.load_slice`, masks from :func:`medsift.io.load_mask`):

* 8-bit rows (``has_hu`` false) become 8-bit gray PNG; a source that already is an 8-bit gray PNG is copied
  byte for byte. COCO/YOLO/VOC may ask for JPEG instead (lossy, for tools that only take ``.jpg``).
* HU rows (``has_hu`` true): nnU-Net and MONAI get one float32 NIfTI per slice in HU (affine = pixel spacing
  in mm), nnU-Net channel name ``CT``. COCO/YOLO/VOC get PNG windowed with the row's stored window
  (``window_center``/``window_width``), else the brain window 40/80 HU; the summary counts both cases.
* Masks: 0/1 label maps (PNG or NIfTI, same geometry as the image) for nnU-Net/MONAI; COCO RLE per
  connected component for COCO.

Layouts (``OUT`` = the output folder):

* ``coco``: ``images/<split>/<id>.png``, ``annotations/instances_<split>.json``
* ``yolo``: ``images/<split>/<id>.png``, ``labels/<split>/<id>.txt``, ``data.yaml`` (relative paths)
* ``voc``: ``VOCdevkit/VOC2012/{JPEGImages/<id>.png, Annotations/<id>.xml, ImageSets/Main/<split>.txt}``
  (``trainval.txt`` too); torchvision's ``VOCDetection(OUT, year="2012")`` hard-codes ``.jpg``, so for it
  export with ``image_format=jpg`` (lossy)
* ``nnunet``: ``nnUNet_raw/DatasetNNN_Name/{imagesTr,labelsTr,imagesTs,labelsTs}``, ``dataset.json``,
  ``nnUNet_preprocessed/DatasetNNN_Name/splits_final.json`` (patient-level folds from the manifest)
* ``monai``: ``images/<id>.<ext>``, ``labels/<id>.<ext>``, ``datalist.json``
"""

from __future__ import annotations

import gzip
import io
import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from medsift.errors import ConfigError, FormatError
from medsift.manifest import SPLITS, active, label_columns
from medsift.registry import Registry

MARKER = ".medsift-export.json"
VOC_ROOT = "VOCdevkit/VOC2012"
BRAIN_WINDOW = (40.0, 80.0)


class ExportTarget(str, Enum):
    """Tools medsift exports to."""

    COCO = "coco"
    YOLO = "yolo"
    VOC = "voc"
    NNUNET = "nnunet"
    MONAI = "monai"


class ImageFormat(str, Enum):
    """Image files written. nnU-Net/MONAI: PNG or NIfTI (lossless only). COCO/YOLO/VOC: PNG or JPEG."""

    AUTO = "auto"  # nnU-Net/MONAI: NIfTI when every row has HU, PNG when none has; COCO/YOLO/VOC: PNG
    PNG = "png"
    NIFTI = "nifti"
    JPG = "jpg"  # lossy (quality 95); only for tools that insist on .jpg, e.g. torchvision's VOCDetection


class BoxSource(str, Enum):
    """Where YOLO/VOC/COCO boxes come from."""

    ANNOTATIONS = "annotations"  # the manifest ``boxes`` column
    MASK = "mask"  # one box per connected component of the mask


@dataclass(frozen=True)
class ExportOptions:
    """Settings of one export.

    Attributes:
        image_format: PNG or NIfTI for nnU-Net/MONAI images and labels.
        box_source: boxes from annotations or from mask components.
        mask_label: class name of mask foreground (nnU-Net label 1, COCO category, YOLO class with masks).
        min_area: smallest mask component (pixels) turned into a box/instance.
        dataset_id: nnU-Net dataset id (custom datasets: 500..999).
        dataset_name: nnU-Net dataset name / datalist name.
        default_window: (centre, width) HU used for HU rows without a stored window (PNG targets).
    """

    image_format: ImageFormat = ImageFormat.AUTO
    box_source: BoxSource = BoxSource.ANNOTATIONS
    mask_label: str = "lesion"
    min_area: int = 1
    dataset_id: int = 501
    dataset_name: str = "medsift"
    default_window: tuple[float, float] = BRAIN_WINDOW


@dataclass
class ExportSummary:
    """What an export wrote: images per split, boxes and masks, skipped rows by reason, notes."""

    target: str
    out_dir: str
    images: dict[str, int] = field(default_factory=dict)
    boxes: int = 0
    masks: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return sum(self.images.values())

    def count(self, split: str) -> None:
        self.images[split] = self.images.get(split, 0) + 1

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    row: pd.Series
    image_id: str
    stem: str
    split: str


@dataclass
class _Context:
    root: Path
    options: ExportOptions
    summary: ExportSummary
    progress: bool = False
    windowed: dict[str, int] = field(default_factory=dict)
    clipped: int = 0


Exporter = Callable[[list[_Item], _Context], None]
EXPORTERS: Registry[Exporter] = Registry("export target")


def _put(path: Path, data: bytes) -> None:
    """Write a file inside the staging folder. No per-file fsync: the staging folder is invisible until it is
    renamed into place at the end, which is what makes the export atomic (fsync per file tripled the time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---------------------------------------------------------------------------------------------- rows
def _text(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) or str(value) == "" else str(value)


def _flag(value: Any) -> bool:
    return False if value is None or pd.isna(value) else bool(value)


def _items(rows: pd.DataFrame, summary: ExportSummary) -> list[_Item]:
    from medsift.formats.nnunet import case_identifier

    items, stems = [], {}
    unsplit = 0
    for _, row in rows.iterrows():
        image_id = str(row["image_id"])
        stem = case_identifier(image_id)
        if stem in stems:
            raise ConfigError(f"image ids {stems[stem]!r} and {image_id!r} give the same file name {stem!r}")
        stems[stem] = image_id
        split = _text(row.get("split"))
        if split is None:
            unsplit += 1
            split = "train"
        items.append(_Item(row, image_id, stem, split))
    if unsplit:
        summary.notes.append(f"{unsplit} rows without a split were exported as train (run `medsift split` first)")
    order = {s: i for i, s in enumerate(SPLITS)}
    return sorted(items, key=lambda it: (order.get(it.split, 99), it.image_id))


def _iterate(items: list[_Item], ctx: _Context, what: str) -> Iterable[_Item]:
    from medsift.progress import track

    return track(items, description=f"export {what}", total=len(items), show=ctx.progress)


# -------------------------------------------------------------------------------------------- pixels
def _gray8_png_size(row: pd.Series) -> tuple[int, int] | None:
    """(width, height) when the source is a plain 8-bit gray PNG that can be copied as is, else None."""
    from PIL import Image, UnidentifiedImageError

    path = _text(row.get("image_path"))
    if path is None or _flag(row.get("has_hu")) or str(row.get("format")) != "png" \
            or not pd.isna(row.get("volume_index")):
        return None
    try:
        with Image.open(path) as img:
            if img.format == "PNG" and img.mode == "L":
                return int(img.width), int(img.height)
    except (OSError, UnidentifiedImageError):
        return None
    return None


def _load_slice(row: pd.Series) -> np.ndarray:
    import medsift.io as mio

    arr = np.asarray(mio.load_slice(row), dtype=np.float32)
    if arr.ndim != 2:
        raise FormatError(f"{row['image_id']}: load_slice gave shape {arr.shape}; expected (H, W)")
    return arr


def _load_mask(row: pd.Series, ctx: _Context) -> np.ndarray | None:
    """The row's mask as bool (H, W); None when it has none or it cannot be read (counted, with a note)."""
    import medsift.io as mio

    if _text(row.get("mask_path")) is None:
        return None
    try:
        mask = mio.load_mask(row)
    except FormatError as exc:
        ctx.summary.skip("mask_unreadable")
        ctx.summary.notes.append(f"{row['image_id']}: mask left out ({exc})")
        return None
    return None if mask is None else np.asarray(mask).astype(bool)


def _unreadable(item: _Item, exc: FormatError, ctx: _Context) -> None:
    ctx.summary.skip("image_unreadable")
    ctx.summary.notes.append(f"{item.image_id}: image left out ({exc})")


def _row_window(row: pd.Series, ctx: _Context) -> tuple[float, float]:
    c, w = row.get("window_center"), row.get("window_width")
    if c is not None and w is not None and not pd.isna(c) and not pd.isna(w) and math.isfinite(float(c)) \
            and float(w) > 0:
        ctx.windowed["stored"] = ctx.windowed.get("stored", 0) + 1
        return float(c), float(w)
    ctx.windowed["default"] = ctx.windowed.get("default", 0) + 1
    return ctx.options.default_window


def _raster_bytes(arr: np.ndarray, *, jpeg: bool) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(arr))
    if jpeg:
        img.save(buf, format="JPEG", quality=95)
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def _write_raster(item: _Item, dest: Path, ctx: _Context, *, jpeg: bool) -> tuple[int, int]:
    """Write the slice as an 8-bit gray PNG (or JPEG); returns (width, height)."""
    size = None if jpeg else _gray8_png_size(item.row)
    if size is not None:
        _put(dest, Path(str(item.row["image_path"])).read_bytes())
        return size
    arr = _load_slice(item.row)
    if _flag(item.row.get("has_hu")):
        from medsift.preprocess.windowing import window

        center, width = _row_window(item.row, ctx)
        arr = window(arr, center, width) * 255.0
    out = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    _put(dest, _raster_bytes(out, jpeg=jpeg))
    return int(out.shape[1]), int(out.shape[0])


def _nifti_bytes(arr: np.ndarray, row: pd.Series, dtype: type) -> bytes:
    """A gzipped NIfTI-1 of one (H, W) slice stored as (x=W, y=H, z=1) with the pixel spacing in mm."""
    import nibabel as nib

    spacing = row.get("spacing_mm")
    thick = row.get("slice_thickness_mm")
    sp = float(spacing) if spacing is not None and not pd.isna(spacing) and float(spacing) > 0 else 1.0
    th = float(thick) if thick is not None and not pd.isna(thick) and float(thick) > 0 else 1.0
    img = nib.Nifti1Image(np.asarray(arr, dtype=dtype).T[:, :, None], np.diag([sp, sp, th, 1.0]))
    img.header.set_xyzt_units("mm")
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def _try_write_image(item: _Item, dest_no_ext: Path, ending: str, ctx: _Context) -> tuple[str, int, int] | None:
    """:func:`_write_image`, or None when the source is unreadable (counted and noted in the summary)."""
    try:
        return _write_image(item, dest_no_ext, ending, ctx)
    except FormatError as exc:
        _unreadable(item, exc, ctx)
        return None


def _write_image(item: _Item, dest_no_ext: Path, ending: str, ctx: _Context) -> tuple[str, int, int]:
    """Write the slice as ``.png``, ``.jpg`` or ``.nii.gz``; returns (file name, width, height)."""
    dest = dest_no_ext.with_name(dest_no_ext.name + ending)
    if ending in (".png", ".jpg"):
        w, h = _write_raster(item, dest, ctx, jpeg=ending == ".jpg")
    else:
        arr = _load_slice(item.row)
        _put(dest, _nifti_bytes(arr, item.row, np.float32))
        w, h = int(arr.shape[1]), int(arr.shape[0])
    return dest.name, w, h


def _write_label(mask: np.ndarray, dest_no_ext: Path, ending: str, row: pd.Series) -> str:
    """Write a 0/1 label map (uint8) as ``.png`` or ``.nii.gz``; returns the file name."""
    from medsift.formats.masks import encode_mask_png

    dest = dest_no_ext.with_name(dest_no_ext.name + ending)
    data = encode_mask_png(mask, value=1) if ending == ".png" else _nifti_bytes(mask.astype(np.uint8), row, np.uint8)
    _put(dest, data)
    return dest.name


def _mask_for(item: _Item, width: int, height: int, ctx: _Context) -> np.ndarray | None:
    """The row's mask, or None (no mask, or a mask whose shape disagrees with the image: counted as skipped)."""
    mask = _load_mask(item.row, ctx)
    if mask is None:
        return None
    if mask.shape != (height, width):
        ctx.summary.skip("mask_shape_mismatch")
        ctx.summary.notes.append(f"{item.image_id}: mask shape {mask.shape} != image (H, W) = ({height}, {width}); "
                                 f"mask left out")
        return None
    ctx.summary.masks += 1
    return mask


def _clip(boxes: list, width: int, height: int, ctx: _Context) -> list[list]:
    """Boxes clipped to the image; empty ones dropped (both counted)."""
    out = []
    for x1, y1, x2, y2, label in boxes:
        c = [min(max(float(x1), 0.0), width), min(max(float(y1), 0.0), height),
             min(max(float(x2), 0.0), width), min(max(float(y2), 0.0), height)]
        if c != [float(x1), float(y1), float(x2), float(y2)]:
            ctx.clipped += 1
        if c[2] > c[0] and c[3] > c[1]:
            out.append(c + [str(label)])
    return out


def _boxes_for(item: _Item, mask: np.ndarray | None, width: int, height: int, ctx: _Context) -> list[list]:
    from medsift.formats.masks import mask_to_boxes

    if ctx.options.box_source is BoxSource.MASK:
        if mask is None:
            return []
        return mask_to_boxes(mask, min_area=ctx.options.min_area, label=ctx.options.mask_label)
    return _clip(list(item.row.get("boxes") or []), width, height, ctx)


def _box_labels(items: list[_Item], options: ExportOptions) -> list[str]:
    if options.box_source is BoxSource.MASK:
        return [options.mask_label] if any(_text(it.row.get("mask_path")) for it in items) else []
    return sorted({str(b[4]) for it in items for b in (it.row.get("boxes") or [])})


def _raster_ending(options: ExportOptions, ctx: _Context) -> str:
    """File ending of COCO/YOLO/VOC images: ``.png`` (default) or ``.jpg``."""
    if options.image_format is ImageFormat.NIFTI:
        raise ConfigError(f"{ctx.summary.target} images must be PNG or JPEG; got --image-format nifti")
    if options.image_format is ImageFormat.JPG:
        ctx.summary.notes.append("images written as lossy JPEG (quality 95); PNG keeps pixels exact")
        return ".jpg"
    return ".png"


def _resolve_ending(items: list[_Item], options: ExportOptions) -> str:
    hu = sum(_flag(it.row.get("has_hu")) for it in items)
    fmt = options.image_format
    if fmt is ImageFormat.JPG:
        raise ConfigError("nnU-Net and MONAI exports need lossless images; use --image-format png or nifti")
    if fmt is ImageFormat.AUTO:
        if 0 < hu < len(items):
            raise ConfigError(f"{hu} of {len(items)} rows are in HU and the rest 8-bit; choose one file type "
                              f"with --image-format png (HU windowed to 8 bit) or nifti (8-bit values kept as is)")
        fmt = ImageFormat.NIFTI if hu else ImageFormat.PNG
    return ".nii.gz" if fmt is ImageFormat.NIFTI else ".png"


def _by_split(items: list[_Item]) -> dict[str, list[_Item]]:
    out: dict[str, list[_Item]] = {}
    for it in items:
        out.setdefault(it.split, []).append(it)
    return out


# ------------------------------------------------------------------------------------------- targets
@EXPORTERS.register(ExportTarget.COCO.value)
def _export_coco(items: list[_Item], ctx: _Context) -> None:
    from medsift.formats.coco import CocoImage, build_coco, write_coco

    has_masks = any(_text(it.row.get("mask_path")) for it in items)
    box_labels = sorted({str(b[4]) for it in items for b in (it.row.get("boxes") or [])}) \
        if ctx.options.box_source is BoxSource.ANNOTATIONS else []
    categories = sorted(set(box_labels) | ({ctx.options.mask_label} if has_masks else set()))
    ending = _raster_ending(ctx.options, ctx)
    for split, group in _by_split(items).items():
        images = []
        for it in _iterate(group, ctx, f"coco {split}"):
            image_file = _try_write_image(it, ctx.root / "images" / split / it.stem, ending, ctx)
            if image_file is None:
                continue
            name, w, h = image_file
            mask = _mask_for(it, w, h, ctx)
            boxes = _clip(list(it.row.get("boxes") or []), w, h, ctx) \
                if ctx.options.box_source is BoxSource.ANNOTATIONS else []
            ctx.summary.boxes += len(boxes)
            images.append(CocoImage(name, w, h, boxes, mask,
                                    {"medsift_image_id": it.image_id, "patient_id": str(it.row["patient_id"])}))
            ctx.summary.count(split)
        rel = f"annotations/instances_{split}.json"
        write_coco(ctx.root / rel, build_coco(images, categories=categories, mask_label=ctx.options.mask_label,
                                              min_area=ctx.options.min_area))
        ctx.summary.files[f"coco_{split}"] = rel


@EXPORTERS.register(ExportTarget.YOLO.value)
def _export_yolo(items: list[_Item], ctx: _Context) -> None:
    from medsift.formats.yolo import write_data_yaml, yolo_label_text

    names = _box_labels(items, ctx.options)
    if not names:
        raise ConfigError("YOLO export needs boxes: no exported row has a box (with --box-source mask: a mask)")
    groups = _by_split(items)
    ending = _raster_ending(ctx.options, ctx)
    if "train" not in groups:
        raise ConfigError(f"YOLO export needs train rows; splits present: {sorted(groups)}")
    for split, group in groups.items():
        for it in _iterate(group, ctx, f"yolo {split}"):
            image_file = _try_write_image(it, ctx.root / "images" / split / it.stem, ending, ctx)
            if image_file is None:
                continue
            _, w, h = image_file
            mask = _mask_for(it, w, h, ctx) if ctx.options.box_source is BoxSource.MASK else None
            boxes = _boxes_for(it, mask, w, h, ctx)
            ctx.summary.boxes += len(boxes)
            _put(ctx.root / "labels" / split / f"{it.stem}.txt",
                               yolo_label_text(boxes, names=names, width=w, height=h).encode("utf-8"))
            ctx.summary.count(split)
    splits = {s: f"images/{s}" for s in SPLITS if s in groups}
    if "val" not in splits:
        splits = {"train": splits["train"], "val": splits["train"], **{k: v for k, v in splits.items() if k != "train"}}
        ctx.summary.notes.append("no val rows: data.yaml points val at images/train")
    write_data_yaml(ctx.root / "data.yaml", names=names, splits=splits)
    ctx.summary.files["data_yaml"] = "data.yaml"


@EXPORTERS.register(ExportTarget.VOC.value)
def _export_voc(items: list[_Item], ctx: _Context) -> None:
    from medsift.formats.voc import voc_xml

    written: dict[str, list[str]] = {}
    ending = _raster_ending(ctx.options, ctx)
    voc = ctx.root / VOC_ROOT
    for split, group in _by_split(items).items():
        for it in _iterate(group, ctx, f"voc {split}"):
            image_file = _try_write_image(it, voc / "JPEGImages" / it.stem, ending, ctx)
            if image_file is None:
                continue
            name, w, h = image_file
            mask = _mask_for(it, w, h, ctx) if ctx.options.box_source is BoxSource.MASK else None
            boxes = _boxes_for(it, mask, w, h, ctx)
            ctx.summary.boxes += len(boxes)
            _put(voc / "Annotations" / f"{it.stem}.xml",
                               voc_xml(filename=name, width=w, height=h, boxes=boxes, folder="JPEGImages"))
            written.setdefault(split, []).append(it.stem)
            ctx.summary.count(split)
    if "train" in written and "val" in written:
        written["trainval"] = written["train"] + written["val"]
    for split, stems in written.items():
        _put(voc / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{s}\n" for s in stems).encode())
    ctx.summary.files["voc_root"] = VOC_ROOT


@EXPORTERS.register(ExportTarget.NNUNET.value)
def _export_nnunet(items: list[_Item], ctx: _Context) -> None:
    from medsift.formats import nnunet

    if not any(_text(it.row.get("mask_path")) for it in items):
        raise ConfigError(f"nnU-Net export needs segmentation masks; none of the {len(items)} rows has a mask_path")
    ending = _resolve_ending(items, ctx.options)
    folder = nnunet.dataset_folder_name(ctx.options.dataset_id, ctx.options.dataset_name)
    raw = ctx.root / "nnUNet_raw" / folder
    folds: dict[str, int] = {}
    train_cases, val_cases = [], []
    for it in _iterate(items, ctx, "nnU-Net"):
        is_test = it.split == "test"
        mask = _load_mask(it.row, ctx)
        if mask is None and not is_test:
            ctx.summary.skip("no_mask")
            continue
        sub = "imagesTs" if is_test else "imagesTr"
        dest = raw / sub / nnunet.image_file_name(it.stem, "", channel=0)
        image_file = _try_write_image(it, dest, ending, ctx)
        if image_file is None:
            continue
        _, w, h = image_file
        if mask is not None and mask.shape != (h, w):
            ctx.summary.skip("mask_shape_mismatch")
            (dest.with_name(dest.name + ending)).unlink()
            continue
        if mask is not None:
            ctx.summary.masks += 1
            _write_label(mask, raw / ("labelsTs" if is_test else "labelsTr") / it.stem, ending, it.row)
        ctx.summary.count(it.split)
        if is_test:
            continue
        (val_cases if it.split == "val" else train_cases).append(it.stem)
        fold = it.row.get("fold")
        if fold is not None and not pd.isna(fold):
            folds[it.stem] = int(fold)
    hu = ending == ".nii.gz" and all(_flag(it.row.get("has_hu")) for it in items)
    meta = nnunet.dataset_json(
        channel_names={0: "CT" if hu else "zscore"},
        labels={"background": 0, ctx.options.mask_label: 1},
        num_training=len(train_cases) + len(val_cases), file_ending=ending, name=folder,
        description="exported by medsift: one case per 2D slice")
    _put(raw / "dataset.json", json.dumps(meta, indent=1).encode())
    ctx.summary.files["dataset_json"] = f"nnUNet_raw/{folder}/dataset.json"
    splits = None
    if len({f for f in folds.values()}) >= 2:
        no_fold = [c for c in train_cases + val_cases if c not in folds]
        splits = nnunet.splits_from_folds(folds)
        for s in splits:
            s["train"] = sorted(s["train"] + no_fold)
        if no_fold:
            ctx.summary.notes.append(f"{len(no_fold)} training cases without a fold are in every fold's train set")
    elif val_cases:
        splits = nnunet.split_from_sets(train_cases, val_cases)
    else:
        ctx.summary.notes.append("no folds and no val rows: nnU-Net will split slices at random, mixing "
                                 "patients across folds; run `medsift split` first")
    if splits is not None:
        rel = f"nnUNet_preprocessed/{folder}/splits_final.json"
        _put(ctx.root / rel, json.dumps(splits, indent=1).encode())
        ctx.summary.files["splits_final"] = rel


@EXPORTERS.register(ExportTarget.MONAI.value)
def _export_monai(items: list[_Item], ctx: _Context) -> None:
    from medsift.formats.monai_datalist import build_datalist, write_datalist

    ending = _resolve_ending(items, ctx.options)
    segmentation = any(_text(it.row.get("mask_path")) for it in items)
    labels = label_columns(pd.DataFrame(columns=items[0].row.index)) if items else []
    out: dict[str, list[dict]] = {}
    for it in _iterate(items, ctx, "MONAI"):
        mask = _load_mask(it.row, ctx) if segmentation else None
        if segmentation and mask is None and it.split != "test":
            ctx.summary.skip("no_mask")
            continue
        image_file = _try_write_image(it, ctx.root / "images" / it.stem, ending, ctx)
        if image_file is None:
            continue
        name, w, h = image_file
        entry: dict[str, Any] = {"image": f"images/{name}"}
        if mask is not None:
            if mask.shape != (h, w):
                ctx.summary.skip("mask_shape_mismatch")
                (ctx.root / "images" / name).unlink()
                continue
            ctx.summary.masks += 1
            entry["label"] = "labels/" + _write_label(mask, ctx.root / "labels" / it.stem, ending, it.row)
        entry["image_id"] = it.image_id
        entry["patient_id"] = str(it.row["patient_id"])
        for col in labels:
            value = it.row.get(col)
            if value is not None and not pd.isna(value):
                entry[col] = int(value)
        fold = it.row.get("fold")
        if it.split != "test" and fold is not None and not pd.isna(fold):
            entry["fold"] = int(fold)
        out.setdefault(it.split, []).append(entry)
        ctx.summary.count(it.split)
    datalist = build_datalist(out, name=ctx.options.dataset_name, description="exported by medsift",
                              labels={0: "background", 1: ctx.options.mask_label} if segmentation else None)
    write_datalist(ctx.root / "datalist.json", datalist)
    ctx.summary.files["datalist"] = "datalist.json"


# ------------------------------------------------------------------------------------------ frontend
def _source_dirs(df: pd.DataFrame) -> set[Path]:
    dirs = set()
    for col in ("image_path", "mask_path", "annotation_path"):
        if col in df.columns:
            for value in df[col].dropna().unique():
                if str(value):
                    path = Path(str(value)).expanduser()
                    try:
                        dirs.add(path.resolve().parent)
                    except (RuntimeError, OSError):  # symlink loop: its folder is still a source folder
                        dirs.add(path.parent.resolve())
    return dirs


def _check_out(out: Path, df: pd.DataFrame, *, overwrite: bool) -> None:
    for src in sorted(_source_dirs(df)):
        if out == src or src in out.parents:
            raise ConfigError(f"refusing to export into a source folder: {out} is inside {src}; "
                              f"choose an output folder outside the data")
        if out in src.parents:
            raise ConfigError(f"refusing to export to {out}: it contains the source folder {src}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"output folder {out} is not empty; pass --overwrite to replace a previous export")
        if not (out / MARKER).is_file():
            raise ConfigError(f"output folder {out} is not empty and holds no medsift export ({MARKER}); "
                              f"refusing to delete it, choose another folder")


def export(manifest: pd.DataFrame, out_dir: str | Path, *, target: str | ExportTarget,
           overwrite: bool = False, options: ExportOptions | None = None, progress: bool = False) -> ExportSummary:
    """Export the active rows of a manifest to ``out_dir`` in the layout of ``target``.

    Args:
        manifest: a validated manifest (see :mod:`medsift.manifest`).
        out_dir: output folder; created, or replaced when ``overwrite`` and it holds a previous export.
        target: one of :data:`EXPORTERS` (``coco``, ``yolo``, ``voc``, ``nnunet``, ``monai``).
        overwrite: replace a previous medsift export in ``out_dir``.
        options: see :class:`ExportOptions`.
        progress: show progress bars.

    Returns:
        The :class:`ExportSummary` (also saved as ``out_dir/.medsift-export.json``).

    Raises:
        ConfigError: unknown target (lists the valid ones), bad output folder, nothing to export, or data the
            target cannot hold (no masks for nnU-Net, no boxes for YOLO, mixed HU/8-bit with auto format).
    """
    name = target.value if isinstance(target, ExportTarget) else str(target)
    exporter = EXPORTERS.get(name)
    options = options or ExportOptions()
    out = Path(out_dir).expanduser().resolve()
    _check_out(out, manifest, overwrite=overwrite)
    rows = active(manifest)
    if rows.empty:
        raise ConfigError(f"nothing to export: none of the {len(manifest)} rows has status ok and is not excluded")
    summary = ExportSummary(target=name, out_dir=str(out))
    skipped_rows = len(manifest) - len(rows)
    if skipped_rows:
        summary.skipped["excluded_or_not_ok"] = skipped_rows
    items = _items(rows, summary)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    ctx = _Context(stage, options, summary, progress=progress)
    try:
        exporter(items, ctx)
        if ctx.windowed:
            summary.notes.append(
                f"HU slices windowed to 8-bit PNG: {ctx.windowed.get('stored', 0)} with their stored window, "
                f"{ctx.windowed.get('default', 0)} with the default {options.default_window[0]:g}/"
                f"{options.default_window[1]:g} HU")
        if ctx.clipped:
            summary.notes.append(f"{ctx.clipped} boxes reaching outside their image were clipped to it")
        marker = {**summary.to_dict(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "options": {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(options).items()}}
        _put(stage / MARKER, json.dumps(marker, indent=1).encode())
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return summary


def export_workspace(workspace: str | Path, out_dir: str | Path, *, target: str | ExportTarget,
                     overwrite: bool = False, options: ExportOptions | None = None,
                     progress: bool = False) -> ExportSummary:
    """Read the workspace's current manifest and :func:`export` it (the output may not be the workspace itself)."""
    from medsift.workspace import Workspace

    ws = Workspace.at(workspace)
    out = Path(out_dir).expanduser().resolve()
    if out == ws.root or out in ws.root.parents:
        raise ConfigError(f"refusing to export to {out}: it is (or contains) the workspace {ws.root}")
    return export(ws.read(), out, target=target, overwrite=overwrite, options=options, progress=progress)

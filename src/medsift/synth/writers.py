"""Write a synthetic patient in the layouts real data comes in.

- ``phe-sich/``: ``images/PPPP_SS.png`` (8-bit, brain window 40/80), ``masks/PPPP_SS.png`` (0/255 edema),
  ``annotations/PPPP_SS.xml`` (VOC, one ``hemorrhage`` box per lesion on the slice; no object when none).
- ``dicom/<patient>/<SeriesInstanceUID>/IM_NN.dcm``: a CT series; file names and InstanceNumber are
  shuffled, only ImagePositionPatient gives the order. Stored int16 = HU + 1024 (slope 1, intercept -1024).
- ``nifti/<patient>.nii.gz`` (int16 HU) and ``nifti/<patient>_label.nii.gz`` (uint8 codes of
  :data:`~medsift.synth.lesions.LABEL_MAP`). Array order is nibabel's ``(x, y, z)``:
  ``data[:, :, k].T`` is slice ``k`` as displayed (rows = y, columns = x); the affine maps to RAS mm.
- ``folder/images/<ID_hex>.png`` + ``folder/labels.csv``: RSNA-like multi-label table.

Writers are pure with respect to randomness: whatever varies (UIDs, shuffles, windows) comes from arguments.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from medsift.formats.voc import voc_xml
from medsift.synth.lesions import LABEL_MAP, RSNA_NAMES, Subtype
from medsift.synth.truth import image_id, slice_boxes

BRAIN_WINDOW: tuple[float, float] = (40.0, 80.0)
HEMORRHAGE_LABEL = "hemorrhage"
PNG_COMPRESS_LEVEL = 1
DICOM_INTERCEPT = -1024.0
FOLDER_WINDOWS: tuple[tuple[float, float], ...] = ((40.0, 80.0), (35.0, 135.0), (30.0, 80.0), (40.0, 150.0))


class Layout(str, Enum):
    """Output layouts of :func:`medsift.synth.generate`."""

    PHE_SICH = "phe-sich"
    DICOM = "dicom"
    NIFTI = "nifti"
    FOLDER = "folder"


def window_uint8(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """HU -> 8-bit display values: ``center - width/2`` -> 0, ``center + width/2`` -> 255, clipped, rounded."""
    low = center - width / 2.0
    return np.clip(np.rint((hu - low) * (255.0 / width)), 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a 2D uint8 array as a greyscale PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def stable_hex(*parts: object, n: int = 9) -> str:
    """A deterministic hex id from ``parts`` (sha256), ``n`` characters."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


# --- PHE-SICH ---------------------------------------------------------------------------------------------------

def phe_sich_annotation(iid: str, boxes: list[list], *, size: int) -> bytes:
    """VOC bytes for one slice: every lesion box labelled :data:`HEMORRHAGE_LABEL`."""
    return voc_xml(filename=f"{iid}.png", width=size, height=size,
                   boxes=[[x1, y1, x2, y2, HEMORRHAGE_LABEL] for x1, y1, x2, y2, _ in boxes])


def write_phe_sich(root: Path, patient_id: str, hu: np.ndarray, labels: dict[str, Any]) -> None:
    """Write one patient into ``root/images``, ``root/masks``, ``root/annotations``."""
    size = hu.shape[-1]
    edema = labels["label"] == LABEL_MAP["edema"]
    for z in range(hu.shape[0]):
        iid = image_id(patient_id, z)
        _put(root / "images" / f"{iid}.png", png_bytes(window_uint8(hu[z], *BRAIN_WINDOW)))
        _put(root / "masks" / f"{iid}.png", png_bytes(edema[z].astype(np.uint8) * 255))
        _put(root / "annotations" / f"{iid}.xml", phe_sich_annotation(iid, slice_boxes(labels, z), size=size))


# --- DICOM ------------------------------------------------------------------------------------------------------

def dicom_uid(*parts: object) -> str:
    """A valid, deterministic DICOM UID from ``parts``."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def write_dicom(root: Path, patient_id: str, hu: np.ndarray, labels: dict[str, Any], *, seed: int,
                file_order: np.ndarray, instance_order: np.ndarray, z0_mm: float) -> list[str]:
    """Write one patient's CT series; returns, per slice index, the file path relative to ``root``.

    ``file_order[k]`` is the file number of slice ``k`` and ``instance_order[k]`` its InstanceNumber - 1
    (both permutations of ``range(Z)``); slice ``k`` sits at ``z = z0_mm + k * thickness``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    thickness, dy, dx = labels["spacing_mm"]
    n, rows, cols = hu.shape
    study_uid = dicom_uid("study", seed, patient_id)
    series_uid = dicom_uid("series", seed, patient_id)
    frame_uid = dicom_uid("frame", seed, patient_id)
    origin_x, origin_y = -dx * cols / 2.0, -dy * rows / 2.0
    stored = np.rint(hu - DICOM_INTERCEPT).astype(np.int16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = "20200101"
    ds.Modality = "CT"
    ds.Manufacturer = "medsift-synth"
    ds.StudyDescription = "CT HEAD WO CONTRAST (synthetic phantom)"
    ds.SeriesDescription = f"AXIAL {thickness:g}MM"
    ds.PatientName = f"Phantom^{patient_id}"
    ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = f"{thickness:g}"
    ds.PixelSpacing = [f"{dy:.6f}", f"{dx:.6f}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = f"{DICOM_INTERCEPT:g}"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = f"{BRAIN_WINDOW[0]:g}"
    ds.WindowWidth = f"{BRAIN_WINDOW[1]:g}"
    paths = []
    for k in range(n):  # one dataset, its per-slice elements replaced before each write
        sop_uid = dicom_uid("sop", seed, patient_id, k)
        meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = int(instance_order[k]) + 1
        z_mm = z0_mm + k * thickness
        ds.ImagePositionPatient = [f"{origin_x:.4f}", f"{origin_y:.4f}", f"{z_mm:.4f}"]
        ds.SliceLocation = f"{z_mm:.4f}"
        ds.PixelData = stored[k].tobytes()
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        rel = Path(patient_id) / series_uid / f"IM_{int(file_order[k]):02d}.dcm"
        _put(root / rel, buf.getvalue())
        paths.append(rel.as_posix())
    return paths


# --- NIfTI ------------------------------------------------------------------------------------------------------

def nifti_affine(spacing_mm: tuple[float, float, float], shape: tuple[int, int, int], *, z0_mm: float) -> np.ndarray:
    """RAS affine for data indexed ``[x, y, z]`` (column, row, slice), matching the DICOM series geometry."""
    thickness, dy, dx = spacing_mm
    _, rows, cols = shape
    origin_x, origin_y = -dx * cols / 2.0, -dy * rows / 2.0  # LPS, as ImagePositionPatient
    return np.array([[-dx, 0, 0, -origin_x],
                     [0, -dy, 0, -origin_y],
                     [0, 0, thickness, z0_mm],
                     [0, 0, 0, 1]], dtype=np.float64)


def nifti_gz_bytes(volume_xyz: np.ndarray, affine: np.ndarray) -> bytes:
    """A ``.nii.gz`` file's bytes (gzip mtime 0, so identical inputs give identical bytes)."""
    import nibabel as nib

    img = nib.Nifti1Image(volume_xyz, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=1, mtime=0)


def write_nifti(root: Path, patient_id: str, hu: np.ndarray, labels: dict[str, Any], *, z0_mm: float) -> tuple[str, str]:
    """Write ``<patient>.nii.gz`` (int16 HU) and ``<patient>_label.nii.gz``; returns both relative paths."""
    affine = nifti_affine(labels["spacing_mm"], hu.shape, z0_mm=z0_mm)
    image = f"{patient_id}.nii.gz"
    label = f"{patient_id}_label.nii.gz"
    _put(root / image, nifti_gz_bytes(np.ascontiguousarray(np.rint(hu).astype(np.int16).transpose(2, 1, 0)), affine))
    _put(root / label, nifti_gz_bytes(np.ascontiguousarray(labels["label"].astype(np.uint8).transpose(2, 1, 0)), affine))
    return image, label


# --- RSNA-like folder -------------------------------------------------------------------------------------------

FOLDER_COLUMNS: tuple[str, ...] = (
    "filename", "any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural",
    "patient_id", "study_instance_uid", "series_instance_uid", "image_position", "pixel_spacing",
    "window_center", "window_width", "rescale_intercept", "rescale_slope", "slice_id",
)


def _list_text(values: list[float], fmt: str) -> str:
    return "[" + ", ".join(f"'{v:{fmt}}'" for v in values) + "]"


def write_folder(root: Path, patient_id: str, hu: np.ndarray, labels: dict[str, Any], *, seed: int,
                 window: tuple[float, float], z0_mm: float) -> list[dict[str, Any]]:
    """Write ``root/images/ID_<hex>.png`` (windowed with ``window``); returns the ``labels.csv`` rows."""
    thickness, dy, dx = labels["spacing_mm"]
    n, rows_px, cols_px = hu.shape
    pid = f"ID_{stable_hex('patient', seed, patient_id, n=8)}"
    study = f"ID_{stable_hex('study', seed, patient_id, n=10)}"
    series = f"ID_{stable_hex('series', seed, patient_id, n=10)}"
    label = labels["label"]
    present = {s: (label == LABEL_MAP[s.value]).any(axis=(1, 2)) for s in Subtype}
    out = []
    for k in range(n):
        name = f"ID_{stable_hex('image', seed, patient_id, k)}.png"
        _put(root / "images" / name, png_bytes(window_uint8(hu[k], *window)))
        row: dict[str, Any] = {"filename": name, "any": int(any(present[s][k] for s in Subtype))}
        row.update({RSNA_NAMES[s]: int(present[s][k]) for s in Subtype})
        row.update({
            "patient_id": pid, "study_instance_uid": study, "series_instance_uid": series,
            "image_position": _list_text([-dx * cols_px / 2.0, -dy * rows_px / 2.0, z0_mm + k * thickness], ".6f"),
            "pixel_spacing": _list_text([dy, dx], ".8f"),
            "window_center": int(window[0]), "window_width": int(window[1]),
            "rescale_intercept": int(DICOM_INTERCEPT), "rescale_slope": 1, "slice_id": f"{study}_{k}",
        })
        out.append(row)
    return out

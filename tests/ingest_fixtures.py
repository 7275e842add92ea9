"""Builders of tiny source folders for the ingest/io tests (PNG, VOC, DICOM, NIfTI, bad inputs).

Values are chosen so expected results can be computed by hand in the tests.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from medsift.formats.voc import voc_xml

SLOPE, INTERCEPT = 2.0, -1024.0
"""DICOM rescale of the fixture series: HU = stored * 2 - 1024."""


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def gray(h: int = 32, w: int = 32, value: int = 100) -> np.ndarray:
    arr = np.full((h, w), value, dtype=np.uint8)
    arr[4:8, 4:8] = 200
    return arr


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def voc(name: str, boxes: list, *, w: int = 32, h: int = 32) -> bytes:
    return voc_xml(filename=f"{name}.jpg", width=w, height=h, boxes=boxes)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>&lol3;</filename></annotation>"""


def make_phe(root: Path) -> Path:
    """A clean PHE-SICH folder: patient 0001 (2 slices), 0002 (1 slice, JPEG bytes named .png).

    - 0001_00: annotation with one box -> label 1; mask 32x32.
    - 0001_01: annotation without boxes -> label 0; mask.
    - 0002_00: no annotation (label NA) but ``2_00.xml`` nearly matches it; content is JPEG.
    - 0003_00.xml: annotation without image.
    """
    src = root / "phe"
    write(src / "images" / "0001_00.png", png_bytes(gray()))
    write(src / "images" / "0001_01.png", png_bytes(gray(value=50)))
    write(src / "images" / "0002_00.png", jpg_bytes(gray(value=80)))
    write(src / "masks" / "0001_00.png", png_bytes((gray() > 150).astype(np.uint8) * 255))
    write(src / "masks" / "0001_01.png", png_bytes(np.zeros((32, 32), np.uint8)))
    write(src / "annotations" / "0001_00.xml", voc("0001_00", [[4, 4, 8, 8, "a"]]))
    write(src / "annotations" / "0001_01.xml", voc("0001_01", []))
    write(src / "annotations" / "2_00.xml", voc("2_00", []))
    write(src / "annotations" / "0003_00.xml", voc("0003_00", [[1, 1, 5, 5, "a"]]))
    return src


def make_phe_bad(root: Path) -> Path:
    """A PHE-SICH folder where every image after 0001_00 has one problem (see names in the tests)."""
    src = root / "phe_bad"
    good = png_bytes(gray())
    write(src / "images" / "0001_00.png", good)
    write(src / "annotations" / "0001_00.xml", voc("0001_00", []))
    write(src / "images" / "0001_01.png", good[: len(good) // 2])                 # truncated
    write(src / "images" / "0001_02.png", b"")                                     # zero bytes
    write(src / "images" / "0001_03.png", b"this is not an image at all\n" * 4)     # non-image
    write(src / "images" / "0001_04.png", png_bytes(gray(value=20)))
    write(src / "annotations" / "0001_04.xml", b"<annotation><object><name>a</name>")  # malformed XML
    write(src / "images" / "0001_05.png", png_bytes(gray(value=30)))
    write(src / "annotations" / "0001_05.xml", BILLION_LAUGHS)                    # entity expansion
    write(src / "images" / "0001_06.png", png_bytes(gray(value=40)))
    write(src / "annotations" / "0001_06.xml", voc("0001_06", [[20, 20, 40, 30, "a"]]))  # x2 > 32
    write(src / "images" / "0001_07.png", png_bytes(gray(value=60)))
    write(src / "masks" / "0001_07.png", png_bytes(np.zeros((16, 16), np.uint8)))  # mask of another size
    write(src / "images" / "notes.txt", b"ignored documentation")
    return src


def tree_digest(folder: Path) -> dict[str, tuple[str, float]]:
    """sha256 and mtime of every file under ``folder`` (to prove ingest never writes there)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def stored_slice(k: int) -> np.ndarray:
    """Stored int16 values of fixture DICOM slice ``k``: 500 + 10*k everywhere, 600 + k at [1, 2]."""
    arr = np.full((4, 5), 500 + 10 * k, dtype=np.int16)
    arr[1, 2] = 600 + k
    return arr


def write_dicom(path: Path, stored: np.ndarray, *, z: float, patient: str = "PAT1", series: str = "1.2.3.4",
                instance: int = 1, slope: float = SLOPE, intercept: float = INTERCEPT) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = f"{series}.{instance}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"{series}.{instance}"
    ds.PatientID = patient
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = series
    ds.Modality = "CT"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-10.0, -10.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 99.0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.WindowCenter = [40, 40]
    ds.WindowWidth = [80, 80]
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = stored.astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_dicom_tree(root: Path) -> Path:
    """3-slice series plus a README. By z: ``s_b`` 2.5 (k=0), ``s_c`` 5.0 (k=1), ``s_a`` 7.5 (k=2); names and
    InstanceNumber (10 - k) both disagree with that order, so only positions give it. Spacing 2.5 mm."""
    src = root / "dicom"
    # name -> (z, k): z order gives slice_index; names deliberately not in that order.
    for name, z, k in (("s_a", 7.5, 2), ("s_b", 2.5, 0), ("s_c", 5.0, 1)):
        write_dicom(src / "series1" / f"{name}.dcm", stored_slice(k), z=z, instance=10 - k)
    write(src / "README.md", b"docs")
    return src


def make_nifti(root: Path) -> Path:
    """One volume ``case1.nii.gz`` (X=4, Y=3, Z=5) with scl_slope 2 / scl_inter -1000 and a label volume
    ``case1_seg.nii.gz`` with labels 1 on slice 1 and 2 on slice 3."""
    import nibabel as nib

    src = root / "nifti"
    src.mkdir(parents=True, exist_ok=True)
    stored = np.arange(4 * 3 * 5, dtype=np.int16).reshape(4, 3, 5)
    img = nib.Nifti1Image(stored, np.diag([0.8, 0.8, 3.0, 1.0]))
    img.header.set_data_dtype(np.int16)
    img.header.set_slope_inter(2.0, -1000.0)
    nib.save(img, str(src / "case1.nii.gz"))
    lab = np.zeros((4, 3, 5), dtype=np.uint8)
    lab[1, 1, 1] = 1
    lab[2, 0, 3] = 2
    nib.save(nib.Nifti1Image(lab, np.diag([0.8, 0.8, 3.0, 1.0])), str(src / "case1_seg.nii.gz"))
    return src


RSNA_CSV = """,Unnamed: 0,filename,any,epidural,intraparenchymal,intraventricular,subarachnoid,subdural,patient_id,study_instance_uid,series_instance_uid,image_position,pixel_spacing,window_center,window_width,rescale_intercept,rescale_slope
1,1,ID_a.png,1,0,1,0,0,0,ID_p1,ST1,SE1,"['-125', '-120', '30.5']","['0.48828125', '0.48828125']","['00036', '00036']","['00080', '00080']",-1024,1
2,2,ID_b.png,0,0,0,0,0,0,ID_p1,ST1,SE1,"['-125', '-120', '25.5']","['0.48828125', '0.48828125']",40,150,-1024,1
3,3,ID_c.png,1,1,0,0,0,1,ID_p2,ST2,SE2,"['-125', '-120', '10']",0.5,35,135,-1000,1
4,4,ID_missing.png,0,0,0,0,0,0,ID_p3,ST3,SE3,"['-125', '-120', '10']",0.5,35,135,-1000,1
"""


def make_rsna_like(root: Path) -> tuple[Path, Path]:
    """``images/ID_a.png``, ``ID_b.png``, ``ID_c.png`` (RGB) and an RSNA-style labels.csv naming one extra file."""
    src = root / "rsna"
    write(src / "images" / "ID_a.png", png_bytes(gray()))
    write(src / "images" / "ID_b.png", png_bytes(gray(value=10)))
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 255
    write(src / "images" / "ID_c.png", png_bytes(rgb))
    labels = write(src / "labels.csv", RSNA_CSV.encode())
    return src, labels

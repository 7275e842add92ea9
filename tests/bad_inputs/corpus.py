"""Build the bad-input corpus in a temporary folder (generated here, never downloaded, nothing binary committed).

:func:`build` writes three source folders, one per layout (``phe-sich``, ``folder``, ``dicom``), and returns
one :class:`BadInput` per hostile file with the ingest ``status`` it must get (see
:class:`medsift.formats.layouts.base.Status`), or ``ABSENT`` for things that are not files (FIFO, folder)
and must be left alone without blocking the run.

Every byte string is crafted by hand below: truncated PNG/JPEG/DICOM, zero-byte files, wrong extensions,
decompression bombs (PNG/JPEG/DICOM headers declaring billions of pixels), malformed and malicious XML
(billion laughs, external entities, external DTD, NaN/inf/negative/inverted boxes), masks of another size,
non-UTF-8 and very long names, symlink loops, symlinks leaving the source, unreadable permissions.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ABSENT = "absent"
"""Expected outcome for a non-file (FIFO, folder named like an image): no row, and the run does not block."""

PASSWD = "/etc/passwd"
SECRET = "medsift-secret-7f3a"
"""Text of a file outside the sources that external entities point to; it must never appear in outputs."""


@dataclass(frozen=True)
class BadInput:
    """One hostile input: which layout source holds it, the image id it gets, what it is, what must happen."""

    layout: str
    image_id: str
    what: str
    expected: str


# ----------------------------------------------------------------------------------------------- bytes


def gray(h: int = 32, w: int = 32, value: int = 100) -> np.ndarray:
    """(h, w) uint8 image: ``value`` with a 4x4 bright square at [4:8, 4:8]."""
    arr = np.full((h, w), value, dtype=np.uint8)
    arr[4:8, 4:8] = 200
    return arr


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) whose IHDR declares ``width x height`` 8-bit gray pixels, with one
    compressed row of data: a decompression bomb by its header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (min(width, 4096) + 1))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_bad_crc() -> bytes:
    """A PNG with one flipped byte inside its IDAT chunk (CRC no longer matches)."""
    data = bytearray(png(gray()))
    at = data.index(b"IDAT") + 6
    data[at] ^= 0xFF
    return bytes(data)


def jpg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 marker is patched to declare ``width x height``."""
    data = bytearray(jpg(gray()))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def dicom(*, rows: int = 8, cols: int = 8, z: float = 0.0, instance: int = 1, rle_declared: bool = False,
          pixels: bool = True, patient: str = "PAT1") -> bytes:
    """A CT DICOM slice (int16, slope 1, intercept -1024). ``rle_declared``: RLE Lossless with a 4-byte
    payload for ``rows x cols`` (a bomb when large); ``pixels=False``: no PixelData element."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless

    uid = f"1.2.826.0.1.3680043.99.{instance}.{rows}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = RLELossless if rle_declared else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, "1.2.3", "1.2.3.4"
    ds.Modality, ds.InstanceNumber = "CT", instance
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, z], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 5.0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    if pixels and rle_declared:
        header = struct.pack("<16L", 2, 64, 66, *([0] * 13))
        ds.PixelData = encapsulate([header + b"\x81\x00\x81\x00"])
        ds["PixelData"].is_undefined_length = True
    elif pixels and rows * cols > 1_000_000:
        ds.PixelData = b"\x00" * 64  # far less than declared
    elif pixels:
        ds.PixelData = np.full((rows, cols), 1064 + instance, dtype="<i2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def voc(boxes: list, *, w: int = 32, h: int = 32, name: str = "x") -> bytes:
    """VOC XML with boxes written verbatim (so NaN, inf, negative and inverted values survive)."""
    objs = "".join(f"<object><name>a</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    return (f"<annotation><filename>{name}.jpg</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>1</depth></size>{objs}</annotation>").encode()


BILLION_LAUGHS = ("<?xml version=\"1.0\"?><!DOCTYPE annotation [<!ENTITY l0 \"ha\">"
                  + "".join(f"<!ENTITY l{k} \"{('&l' + str(k - 1) + ';') * 10}\">" for k in range(1, 10))
                  + "]><annotation><filename>&l9;</filename></annotation>").encode()
"""10**9 copies of "ha" once expanded (2 GB): must be refused, not expanded."""

QUADRATIC_BLOWUP = ("<?xml version=\"1.0\"?><!DOCTYPE annotation [<!ENTITY a \"" + "x" * 50_000 + "\">]>"
                    "<annotation><filename>" + "&a;" * 5_000 + "</filename></annotation>").encode()


def xxe(target: str) -> bytes:
    """External entity reading ``target`` into the file name field."""
    return (f"<?xml version=\"1.0\"?><!DOCTYPE annotation [<!ENTITY x SYSTEM \"{target}\">]>"
            f"<annotation><filename>&x;</filename><size><width>32</width><height>32</height></size>"
            f"</annotation>").encode()


def external_dtd(target: str) -> bytes:
    return (f"<?xml version=\"1.0\"?><!DOCTYPE annotation SYSTEM \"{target}\">"
            f"<annotation><filename>a.jpg</filename></annotation>").encode()


PARAMETER_ENTITY = (b"<?xml version=\"1.0\"?><!DOCTYPE annotation [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>"
                    b"<annotation/>")


# ----------------------------------------------------------------------------------------------- files


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _fifo(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkfifo(path)
    except (OSError, AttributeError):
        return False
    return True


def _nonutf8(folder: Path, stem: bytes, suffix: bytes, data: bytes) -> bool:
    """Write ``folder/<stem><suffix>`` with a raw (non-UTF-8) byte name; False where the file system refuses."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(os.fsencode(folder) + b"/" + stem + suffix, "wb") as f:
            f.write(data)
    except OSError:
        return False
    return True


def permission_denied_works() -> bool:
    """Whether chmod 000 actually denies reading here (not for root, nor on some file systems)."""
    return hasattr(os, "geteuid") and os.geteuid() != 0


def _secret(root: Path) -> Path:
    return _write(root / "outside" / "secret.txt", (SECRET + "\n").encode())


def _phe(root: Path, secret: Path) -> tuple[Path, list[BadInput]]:
    src = root / "phe"
    img, msk, ann = src / "images", src / "masks", src / "annotations"
    good = png(gray())
    out: list[BadInput] = []

    def add(image_id: str, what: str, expected: str, data: bytes | None = None, *, suffix: str = ".png",
            annotation: bytes | None = None, mask: bytes | None = None) -> None:
        if data is not None:
            _write(img / f"{image_id}{suffix}", data)
        if annotation is not None:
            _write(ann / f"{image_id}.xml", annotation)
        if mask is not None:
            _write(msk / f"{image_id}.png", mask)
        out.append(BadInput("phe-sich", image_id, what, expected))

    add("0001_00", "control: valid PNG, mask and VOC box", "ok", good, annotation=voc([[4, 4, 8, 8]]),
        mask=png((gray() > 150).astype(np.uint8) * 255))
    add("0001_01", "truncated PNG (first half)", "unreadable", good[: len(good) // 2])
    add("0001_02", "truncated JPEG (first half)", "unreadable", jpg(gray())[:300], suffix=".jpg")
    add("0001_03", "zero-byte .png", "empty_file", b"")
    add("0001_04", "text in a .png", "not_image", b"not an image\n" * 8)
    add("0001_05", "JPEG bytes named .png (wrong extension, read by content)", "ok", jpg(gray()))
    add("0001_06", "PNG bytes named .dcm (wrong extension)", "ok", good, suffix=".dcm")
    add("0001_07", "PNG with a corrupted IDAT (bad CRC)", "unreadable", png_bad_crc())
    add("0001_08", "PNG declaring 100000 x 100000 pixels (decompression bomb)", "too_large",
        png_declaring(100_000, 100_000))
    add("0001_09", "PNG declaring 0 x 0 pixels", "unreadable", png_declaring(0, 0))
    add("0001_10", "JPEG declaring 65535 x 65535 pixels (decompression bomb)", "too_large",
        jpg_declaring(65535, 65535), suffix=".jpg")
    add("0001_11", "malformed XML (unclosed element)", "bad_annotation", good,
        annotation=b"<annotation><object><name>a</name>")
    add("0001_12", "billion laughs entity expansion", "bad_annotation", good, annotation=BILLION_LAUGHS)
    add("0001_13", "quadratic blowup entity", "bad_annotation", good, annotation=QUADRATIC_BLOWUP)
    add("0001_14", "XXE: external entity file:///etc/passwd", "bad_annotation", good,
        annotation=xxe(f"file://{PASSWD}"))
    add("0001_15", "XXE: external entity to a secret file outside the source", "bad_annotation", good,
        annotation=xxe(secret.as_uri()))
    add("0001_16", "external DTD (SYSTEM http URL)", "bad_annotation", good,
        annotation=external_dtd("http://127.0.0.1:9/evil.dtd"))
    add("0001_17", "parameter entity to /etc/passwd", "bad_annotation", good, annotation=PARAMETER_ENTITY)
    add("0001_18", "box with NaN coordinates", "bad_annotation", good, annotation=voc([["nan", 1, 5, 5]]))
    add("0001_19", "box with inf coordinate", "bad_annotation", good, annotation=voc([[1, 1, "inf", 5]]))
    add("0001_20", "box with negative coordinates", "box_outside_image", good, annotation=voc([[-5, -5, 4, 4]]))
    add("0001_21", "inverted box (x2 < x1, y2 < y1)", "box_outside_image", good, annotation=voc([[20, 20, 4, 4]]))
    add("0001_22", "box with non-numeric coordinate", "bad_annotation", good, annotation=voc([[1, "one", 5, 5]]))
    add("0001_23", "annotation size 64x64 for a 32x32 image", "annotation_size_mismatch", good,
        annotation=voc([], w=64, h=64))
    add("0001_24", "XML in Latin-1 bytes declared UTF-8", "bad_annotation", good,
        annotation=b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><annotation><filename>\xe9\xff.jpg</filename>"
                   b"</annotation>")
    add("0001_25", "annotation of 6 MB (over the XML size limit)", "bad_annotation", good)
    _sparse(ann / "0001_25.xml", 6_000_000)
    add("0001_26", "root element is not <annotation>", "bad_annotation", good, annotation=b"<svg/>")
    add("0001_27", "mask of another size (16x16 for 32x32)", "mask_size_mismatch", good,
        mask=png(np.zeros((16, 16), np.uint8)))
    add("0001_28", "truncated mask PNG", "mask_unreadable", good, mask=good[:40])
    add("0001_29", "mask is a text file", "mask_unreadable", good, mask=b"mask? no")
    add("0001_30", "image is a symlink to itself (symlink loop)", "unreadable")
    img.mkdir(parents=True, exist_ok=True)
    os.symlink("0001_30.png", img / "0001_30.png")
    add("0001_31", "image is a dangling symlink", "unreadable")
    os.symlink(str(root / "nowhere" / "gone.png"), img / "0001_31.png")
    add("0001_32", "image is a symlink to a text file outside the source", "not_image")
    os.symlink(secret, img / "0001_32.png")
    add("0001_33", "duplicate stem: 0001_33.jpg (first by name) and 0001_33.png", "ok", jpg(gray(value=9)),
        suffix=".jpg")
    _write(img / "0001_33.png", good)
    out.append(BadInput("phe-sich", "0001_33~png", "second file with a duplicate stem", "duplicate_name"))
    long_stem = "9" * 240
    add(long_stem, "240-character file name", "bad_name", good)
    if _nonutf8(img, b"0001_34\xff\xfe", b".png", good):
        out.append(BadInput("phe-sich", "0001_34\\udcff\\udcfe", "non-UTF-8 file name", "bad_name"))
    if _fifo(img / "0001_35.png"):
        out.append(BadInput("phe-sich", "0001_35", "FIFO named .png (reading it would block)", ABSENT))
    (img / "0001_36.png").mkdir(parents=True)
    out.append(BadInput("phe-sich", "0001_36", "folder named .png", ABSENT))
    if permission_denied_works():
        add("0001_37", "image with permissions 000", "unreadable", good)
        os.chmod(img / "0001_37.png", 0)
    _write(img / "README.md", b"documentation, skipped")
    return src, out


def _folder(root: Path, secret: Path) -> tuple[Path, list[BadInput]]:
    """Folder layout, flat images/ folder: free names, ids are stems."""
    src = root / "folder"
    img = src / "images"
    good = png(gray())
    out: list[BadInput] = []

    def add(stem: str, suffix: str, data: bytes, what: str, expected: str) -> None:
        _write(img / f"{stem}{suffix}", data)
        out.append(BadInput("folder", stem, what, expected))

    add("control", ".png", good, "control: valid PNG", "ok")
    add("trunc_png", ".png", good[:-20], "truncated PNG (end cut)", "unreadable")
    add("trunc_jpg", ".jpg", jpg(gray())[:200], "truncated JPEG", "unreadable")
    add("empty", ".png", b"", "zero-byte .png", "empty_file")
    add("html", ".jpg", b"<html><body>404</body></html>", "HTML page saved as .jpg", "not_image")
    add("gz_junk", ".png", zlib.compress(b"x" * 100, wbits=31), "gzip (not NIfTI) named .png", "not_image")
    add("png_bomb", ".png", png_declaring(60_000, 60_000), "PNG declaring 60000 x 60000", "too_large")
    add("jpg_bomb", ".jpeg", jpg_declaring(40_000, 40_000), "JPEG declaring 40000 x 40000", "too_large")
    add("dicom_in_png", ".png", dicom(), "DICOM bytes named .png", "ok")
    os.symlink("loop_b.png", img / "loop_a.png")
    os.symlink("loop_a.png", img / "loop_b.png")
    out.append(BadInput("folder", "loop_a", "symlink loop a -> b", "unreadable"))
    out.append(BadInput("folder", "loop_b", "symlink loop b -> a", "unreadable"))
    os.symlink("..", img / "up")
    out.append(BadInput("folder", "up", "symlink to the parent folder (folder loop)", ABSENT))
    if _nonutf8(img, b"caf\xe9", b".png", good):
        out.append(BadInput("folder", "caf\\udce9", "Latin-1 file name", "bad_name"))
    if _fifo(img / "pipe.png"):
        out.append(BadInput("folder", "pipe", "FIFO named .png", ABSENT))
    return src, out


def _dicom(root: Path) -> tuple[Path, list[BadInput]]:
    src = root / "dicom"
    out: list[BadInput] = []

    def add(rel: str, data: bytes, what: str, expected: str) -> None:
        _write(src / rel, data)
        out.append(BadInput("dicom", Path(rel).stem, what, expected))

    add("s1/ok_a.dcm", dicom(z=0.0, instance=1), "control: valid slice z=0", "ok")
    add("s1/ok_b.dcm", dicom(z=5.0, instance=2), "control: valid slice z=5", "ok")
    full = dicom(z=10.0, instance=3)
    add("s1/cut_pixels.dcm", full[:-11], "DICOM with pixel data cut short", "unreadable")
    add("s1/cut_header.dcm", full[:150], "DICOM cut inside its header", "unreadable")
    add("s1/empty.dcm", b"", "zero-byte .dcm", "empty_file")
    add("s1/text.dcm", b"DICOM? no. " * 30, "text named .dcm", "not_image")
    add("s1/no_pixels.dcm", dicom(pixels=False, instance=4), "DICOM without PixelData", "unreadable")
    add("s1/rle_bomb.dcm", dicom(rows=65535, cols=65535, rle_declared=True, instance=5),
        "RLE DICOM declaring 65535 x 65535 in 4 bytes (decompression bomb)", "too_large")
    add("s1/huge_native.dcm", dicom(rows=65535, cols=65535, instance=6),
        "native DICOM declaring 65535 x 65535 with 64 bytes of pixels", "too_large")
    add("s1/png.dcm", png(gray()), "PNG bytes named .dcm", "ok")
    add("s1/preamble_only.dcm", b"\x00" * 128 + b"DICM", "128-byte preamble + DICM and nothing else", "unreadable")
    deep = src.joinpath(*(["d" * 200] * 15))  # a 3000-character path: under PATH_MAX (4096)
    _write(deep / "deep.dcm", dicom(z=20.0, instance=8))
    out.append(BadInput("dicom", "deep", "valid slice at a 3000-character path", "ok"))
    os.symlink("..", src / "s1" / "loop")  # folder symlink loop: rglob must not follow it
    out.append(BadInput("dicom", "loop", "folder symlink loop s1/loop -> ..", ABSENT))
    os.symlink("self.dcm", src / "s1" / "self.dcm")
    out.append(BadInput("dicom", "self", "file symlink to itself", "unreadable"))
    if _fifo(src / "s1" / "fifo.dcm"):
        out.append(BadInput("dicom", "fifo", "FIFO named .dcm", ABSENT))
    if _nonutf8(src / "s1", b"\xff\xfeslice", b".dcm", dicom(z=15.0, instance=7)):
        out.append(BadInput("dicom", "\\udcff\\udcfeslice", "valid slice with a non-UTF-8 name", "bad_name"))
    _write(src / "DICOMDIR", b"ignored")
    return src, out


@dataclass(frozen=True)
class Corpus:
    """The built corpus: ``sources[layout]`` folders, the ``outside`` folder with the secret, and every entry."""

    root: Path
    sources: dict[str, Path]
    outside: Path
    entries: list[BadInput]

    def of(self, layout: str) -> list[BadInput]:
        return [e for e in self.entries if e.layout == layout]


def build(root: Path) -> Corpus:
    """Write the corpus under ``root`` (an empty temporary folder) and return what each entry must give."""
    root.mkdir(parents=True, exist_ok=True)
    secret = _secret(root)
    phe, a = _phe(root, secret)
    folder, b = _folder(root, secret)
    dcm, c = _dicom(root)
    return Corpus(root, {"phe-sich": phe, "folder": folder, "dicom": dcm}, secret.parent, a + b + c)

"""Readers: format by content, gray decode, decompression-bomb guard, DICOM HU, NIfTI slices, masks."""

from __future__ import annotations

import numpy as np
import pytest

import ingest_fixtures as fx
from medsift.errors import FormatError
from medsift.io import load_mask, load_slice, read_image_file
from medsift.io import images as io_images
from medsift.io.images import ImageTooLargeError, probe_raster, sniff_format
from medsift.io.nifti import load_volume, nifti_slice


def test_sniff_format_uses_content_not_extension():
    assert sniff_format(fx.png_bytes(fx.gray())) == "png"
    assert sniff_format(fx.jpg_bytes(fx.gray())) == "jpg"
    assert sniff_format(b"hello world") is None


def test_png_named_file_holding_jpeg_is_read_as_jpeg(tmp_path):
    path = fx.write(tmp_path / "x.png", fx.jpg_bytes(fx.gray(value=100)))
    assert probe_raster(path.read_bytes()).format == "jpg"
    arr = read_image_file(path)
    assert arr.dtype == np.float32 and arr.shape == (32, 32)
    assert abs(float(arr[20, 20]) - 100) <= 2  # JPEG is lossy, flat areas stay within 2 levels


def test_rgb_becomes_luma_gray(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    path = fx.write(tmp_path / "red.png", fx.png_bytes(rgb))
    # ITU-R 601-2 luma: 0.299 * 255 = 76.2 -> 76
    assert read_image_file(path)[0, 0] == 76.0


def test_truncated_png_raises_format_error_with_path(tmp_path):
    data = fx.png_bytes(fx.gray())
    path = fx.write(tmp_path / "cut.png", data[: len(data) // 2])
    with pytest.raises(FormatError, match="cut.png"):
        read_image_file(path)
    with pytest.raises(FormatError):
        probe_raster(path.read_bytes(), path)


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(io_images, "MAX_IMAGE_PIXELS", 100)
    # 32x32 = 1024 pixels > 2 * 100: Pillow raises DecompressionBombError, medsift turns it into its error
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        probe_raster(fx.png_bytes(fx.gray()), "bomb.png")


def test_dicom_hu_is_stored_times_slope_plus_intercept(tmp_path):
    stored = fx.stored_slice(1)  # 510 everywhere, 601 at [1, 2]
    path = fx.write_dicom(tmp_path / "one.dcm", stored, z=0.0)
    hu = read_image_file(path)
    assert hu[1, 2] == 601 * 2 - 1024 == 178
    assert hu[0, 0] == 510 * 2 - 1024 == -4
    assert read_image_file(path, hu=False)[1, 2] == 601


def test_load_slice_hu_and_raw_follow_has_hu(tmp_path):
    path = fx.write_dicom(tmp_path / "one.dcm", fx.stored_slice(0), z=0.0)
    row = {"image_path": str(path), "format": "dicom", "has_hu": True}
    assert load_slice(row)[1, 2] == 600 * 2 - 1024
    assert load_slice(dict(row, has_hu=False))[1, 2] == 600


def test_truncated_dicom_raises_format_error(tmp_path):
    path = fx.write_dicom(tmp_path / "one.dcm", fx.stored_slice(0), z=0.0)
    data = path.read_bytes()
    cut = fx.write(tmp_path / "cut.dcm", data[:-10])
    with pytest.raises(FormatError, match="cut.dcm"):
        read_image_file(cut)


def test_nifti_slice_is_transposed_scaled_data(tmp_path):
    src = fx.make_nifti(tmp_path)
    path = str(src / "case1.nii.gz")
    stored = np.arange(60, dtype=np.int16).reshape(4, 3, 5)
    sl = nifti_slice(path, 2)
    assert sl.shape == (3, 4)  # (H, W) = (Y, X)
    np.testing.assert_array_equal(sl, (stored[:, :, 2].T * 2.0 - 1000.0).astype(np.float32))


def test_nifti_volume_is_decoded_once_for_all_slices(tmp_path):
    src = fx.make_nifti(tmp_path)
    path = str(src / "case1.nii.gz")
    load_volume.cache_clear()
    for k in range(5):
        load_slice({"image_path": path, "format": "nifti", "volume_index": k, "has_hu": True})
    info = load_volume.cache_info()
    assert (info.misses, info.hits) == (1, 4)


def test_nifti_label_mask_counts_every_nonzero_label(tmp_path):
    src = fx.make_nifti(tmp_path)
    row = {"mask_path": str(src / "case1_seg.nii.gz"), "mask_volume_index": 3, "width": 4, "height": 3}
    mask = load_mask(row)
    assert mask.dtype == bool and mask.shape == (3, 4)
    assert mask.sum() == 1 and mask[0, 2]  # label 2 at voxel (x=2, y=0)


def test_png_mask_is_nonzero_and_size_checked(tmp_path):
    m = np.zeros((8, 6), np.uint8)
    m[2, 3] = 255
    path = fx.write(tmp_path / "m.png", fx.png_bytes(m))
    mask = load_mask({"mask_path": str(path), "width": 6, "height": 8})
    assert mask.sum() == 1 and mask[2, 3]
    with pytest.raises(FormatError, match="expected the image size"):
        load_mask({"mask_path": str(path), "width": 8, "height": 8})


def test_load_mask_without_mask_is_none():
    assert load_mask({"mask_path": None}) is None


def test_missing_file_raises_format_error_with_path(tmp_path):
    with pytest.raises(FormatError, match="nope.png"):
        load_slice({"image_path": str(tmp_path / "nope.png"), "format": "png"})


def test_pillow_global_limit_is_left_as_it_was():
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    probe_raster(fx.png_bytes(fx.gray()), "x.png")
    assert Image.MAX_IMAGE_PIXELS == before


def test_clinical_sheet_with_two_rows_for_a_patient_is_refused(tmp_path):
    from medsift.io.clinical import read_clinical

    path = fx.write(tmp_path / "c.csv", b"patient_id,age\n0001,70\n0001,71\n")
    with pytest.raises(FormatError, match=r"\['0001'\] have several rows"):
        read_clinical(path)


def test_clinical_ids_match_after_normalising():
    import pandas as pd

    from medsift.io.clinical import join_clinical

    manifest = pd.DataFrame({"image_id": ["a", "b"], "patient_id": ["0007", "0008"]})
    sheet = pd.DataFrame({"patient_id": ["7"], "clinical_age": ["64"]})
    joined, report = join_clinical(manifest, sheet)
    assert joined["clinical_age"].tolist()[0] == "64" and pd.isna(joined["clinical_age"].tolist()[1])
    assert report["manifest_patients_without_row"] == ["0008"]

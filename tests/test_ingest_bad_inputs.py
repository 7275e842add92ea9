"""Bad input is recorded in ``status``/``status_detail`` and the summary, never a crash; wrong use fails clearly."""

from __future__ import annotations

import pandas as pd
import pytest

import ingest_fixtures as fx
from medsift.errors import ConfigError, LayoutError
from medsift.ingest import ingest, read_summary


@pytest.fixture(scope="session")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    src = fx.make_phe_bad(root)
    before = fx.tree_digest(src)
    df = ingest(src, layout="phe-sich", workspace=root / "ws", n_jobs=1)
    return src, root / "ws", df.set_index("image_id"), before


@pytest.mark.parametrize("image_id, status", [
    ("0001_00", "ok"),
    ("0001_01", "unreadable"),          # truncated PNG
    ("0001_02", "empty_file"),          # zero bytes
    ("0001_03", "not_image"),           # text in a .png
    ("0001_04", "bad_annotation"),      # malformed XML
    ("0001_05", "bad_annotation"),      # billion-laughs entity expansion refused by defusedxml
    ("0001_06", "box_outside_image"),   # xmax 40 > width 32
    ("0001_07", "mask_size_mismatch"),  # 16x16 mask for a 32x32 image
])
def test_each_bad_input_gets_its_status(bad, image_id, status):
    _, _, df, _ = bad
    assert df.loc[image_id, "status"] == status


def test_status_detail_says_what_was_wrong(bad):
    _, _, df, _ = bad
    assert "16x16" in df.loc["0001_07", "status_detail"] and "32x32" in df.loc["0001_07", "status_detail"]
    assert "[20.0, 20.0, 40.0, 30.0]" in df.loc["0001_06", "status_detail"]
    assert "0 bytes" in df.loc["0001_02", "status_detail"]


def test_bad_annotation_leaves_label_unknown(bad):
    _, _, df, _ = bad
    assert pd.isna(df.loc["0001_05", "label_hemorrhage"])


def test_summary_counts_and_names_the_problems(bad):
    _, ws, _, _ = bad
    summary = read_summary(ws)
    assert summary["status_counts"] == {"ok": 1, "unreadable": 1, "empty_file": 1, "not_image": 1,
                                        "bad_annotation": 2, "box_outside_image": 1, "mask_size_mismatch": 1}
    assert sorted(p["image_id"] for p in summary["problems"]) == [f"0001_0{k}" for k in range(1, 8)]
    assert summary["skipped_files"][0].endswith("notes.txt")


def test_source_folder_is_never_modified(bad):
    src, _, _, before = bad
    assert fx.tree_digest(src) == before


def test_truncated_dicom_is_recorded_with_header_ids(tmp_path):
    src = fx.make_dicom_tree(tmp_path)
    path = src / "series1" / "s_a.dcm"
    fx.write(src / "series1" / "s_cut.dcm", path.read_bytes()[:-7])
    df = ingest(src, layout="dicom", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    assert df.loc["s_cut", "status"] == "unreadable"
    assert df.loc["s_cut", "patient_id"] == "PAT1"
    assert (df.drop(index="s_cut")["status"] == "ok").all()


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="is empty; expected"):
        ingest(tmp_path / "empty", layout="folder", workspace=tmp_path / "ws")


def test_phe_layout_without_images_folder_says_what_it_expects(tmp_path):
    fx.write(tmp_path / "src" / "a.png", fx.png_bytes(fx.gray()))
    with pytest.raises(LayoutError, match="expects images/, masks/, annotations/"):
        ingest(tmp_path / "src", layout="phe-sich", workspace=tmp_path / "ws")


def test_unknown_layout_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: dicom, folder, nifti, phe-sich"):
        ingest(tmp_path, layout="voc", workspace=tmp_path / "ws")


def test_workspace_inside_source_is_refused(tmp_path):
    src = fx.make_phe(tmp_path)
    with pytest.raises(ConfigError, match="inside the source folder"):
        ingest(src, layout="phe-sich", workspace=src / "ws")


def test_bad_source_name_is_refused(tmp_path):
    src = fx.make_phe(tmp_path)
    with pytest.raises(ConfigError, match="source name"):
        ingest(src, layout="phe-sich", workspace=tmp_path / "ws", source="a/b")


def test_labels_csv_without_filename_column_says_which_columns_it_wants(tmp_path):
    src, _ = fx.make_rsna_like(tmp_path)
    labels = fx.write(tmp_path / "l.csv", b"name,any\nID_a.png,1\n")
    with pytest.raises(LayoutError, match="no filename column; expected one of"):
        ingest(src, layout="folder", workspace=tmp_path / "ws", labels=labels)


def test_labels_value_other_than_0_1_is_recorded(tmp_path):
    src, _ = fx.make_rsna_like(tmp_path)
    labels = fx.write(tmp_path / "l.csv", b"filename,any\nID_a.png,1\nID_b.png,maybe\n")
    df = ingest(src, layout="folder", workspace=tmp_path / "ws", labels=labels, n_jobs=1).set_index("image_id")
    assert df.loc["ID_b", "status"] == "bad_label" and "maybe" in df.loc["ID_b", "status_detail"]
    assert df.loc["ID_a", "label_hemorrhage"] == 1


def test_decompression_bomb_is_recorded_as_too_large(tmp_path, monkeypatch):
    from medsift.io import images as io_images

    src = tmp_path / "bomb"
    fx.write(src / "images" / "0001_00.png", fx.png_bytes(fx.gray(h=64, w=64)))  # 4096 px
    fx.write(src / "images" / "0001_01.png", fx.png_bytes(fx.gray(h=8, w=8)))    # 64 px
    monkeypatch.setattr(io_images, "MAX_IMAGE_PIXELS", 1000)
    df = ingest(src, layout="phe-sich", workspace=tmp_path / "ws", n_jobs=1).set_index("image_id")
    assert df.loc["0001_00", "status"] == "too_large" and df.loc["0001_01", "status"] == "ok"


def test_parallel_probe_gives_the_same_rows_as_in_process(tmp_path):
    from medsift.formats.layouts import LAYOUTS
    from medsift.ingest import probe_all

    scan = LAYOUTS.get("phe-sich")(fx.make_phe_bad(tmp_path))
    one = probe_all(scan.candidates, n_jobs=1)
    two = probe_all(scan.candidates, n_jobs=2, min_parallel=1)
    assert [r["image_id"] for r in two] == [r["image_id"] for r in one]
    assert [(r.get("content_hash"), r["_problems"]) for r in two] == [(r.get("content_hash"), r["_problems"])
                                                                      for r in one]

"""Every defect listed in truth/defects.csv is really present in the PHE-SICH files, and nowhere else."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medsift.formats.voc import read_voc
from medsift.synth import DefectKind, generate, read_truth_defects, read_truth_slices
from medsift.synth.defects import DefectPlan, defects_per_kind, plan_defects
from synth_fixtures import expected_png, tiny


def _rows(kind: str):
    table = read_truth_defects(tiny().truth_defects)
    rows = table[table["defect"] == kind]
    assert len(rows) >= 1, f"no {kind} injected"
    return rows.to_dict("records")


def _img(iid: str) -> np.ndarray:
    with Image.open(tiny().phe_sich / "images" / f"{iid}.png") as im:
        return np.asarray(im.convert("L"))


def _mask(iid: str) -> np.ndarray:
    return np.asarray(Image.open(tiny().phe_sich / "masks" / f"{iid}.png"))


def test_every_kind_is_injected_in_the_tiny_set():
    kinds = set(read_truth_defects(tiny().truth_defects)["defect"])
    assert kinds == {k.value for k in DefectKind}


def test_no_image_carries_two_defects():
    table = read_truth_defects(tiny().truth_defects)
    assert table["image_id"].is_unique
    swaps = table[table["defect"] == "out_of_sequence"]
    others = table[table["defect"] != "out_of_sequence"]
    related = set(others["related_id"]) - {""}
    assert not related & set(table["image_id"])
    assert set(swaps["related_id"]) <= set(swaps["image_id"])


def test_exact_duplicate_is_byte_identical_to_its_original():
    root = tiny().phe_sich / "images"
    for r in _rows("exact_duplicate"):
        assert (root / f"{r['image_id']}.png").read_bytes() == (root / f"{r['related_id']}.png").read_bytes()
        assert r["image_id"] != r["related_id"]


def test_near_duplicate_is_a_shifted_renoised_copy():
    for r in _rows("near_duplicate"):
        dup, orig = _img(r["image_id"]).astype(int), _img(r["related_id"]).astype(int)
        assert not np.array_equal(dup, orig)
        best = min(np.abs(np.roll(dup, (-dy, -dx), axis=(0, 1)) - orig)[8:-8, 8:-8].mean()
                   for dy in range(-3, 4) for dx in range(-3, 4))
        assert best <= 1.5


def test_duplicates_get_their_own_truth_row_and_annotation():
    ds = tiny()
    truth = read_truth_slices(ds.truth_slices).set_index("image_id")
    for r in _rows("exact_duplicate") + _rows("near_duplicate"):
        assert truth.loc[r["image_id"], "content_id"] == r["related_id"]
        assert read_voc(ds.phe_sich / "annotations" / f"{r['image_id']}.xml").filename == f"{r['image_id']}.png"


def test_rotated_image_rotates_back():
    for r in _rows("rotated"):
        k = int(r["detail"].split("k=")[1].rstrip(")"))
        assert np.array_equal(np.rot90(_img(r["image_id"]), -k), expected_png(r["image_id"]))


def test_flipped_image_flips_back():
    for r in _rows("flipped"):
        assert np.array_equal(_img(r["image_id"])[::-1], expected_png(r["image_id"]))


def test_inverted_image_has_a_flipped_histogram():
    for r in _rows("inverted"):
        img, clean = _img(r["image_id"]), expected_png(r["image_id"])
        assert np.array_equal(img, 255 - clean)
        assert np.array_equal(np.bincount(img.ravel(), minlength=256), np.bincount(clean.ravel(), minlength=256)[::-1])


def test_constant_image_has_one_value():
    for r in _rows("constant_image"):
        assert np.unique(_img(r["image_id"])).size == 1


def test_corrupt_file_fails_to_decode():
    for r in _rows("corrupt_file"):
        data = (tiny().phe_sich / "images" / f"{r['image_id']}.png").read_bytes()
        assert data.startswith(b"\x89PNG")
        with pytest.raises((OSError, SyntaxError)):
            with Image.open(io.BytesIO(data)) as im:
                im.load()


def test_wrong_extension_holds_jpeg_bytes():
    for r in _rows("wrong_extension"):
        path = tiny().phe_sich / "images" / f"{r['image_id']}.png"
        assert path.read_bytes()[:3] == b"\xff\xd8\xff"
        with Image.open(path) as im:
            assert im.format == "JPEG"
            assert np.abs(np.asarray(im).astype(int) - expected_png(r["image_id"])).mean() < 3


def test_out_of_sequence_slices_show_their_partner():
    truth = read_truth_slices(tiny().truth_slices).set_index("image_id")
    for r in _rows("out_of_sequence"):
        assert np.array_equal(_img(r["image_id"]), expected_png(r["related_id"]))
        assert truth.loc[r["image_id"], "content_id"] == r["related_id"]


def test_orphan_annotation_has_no_image():
    ds = tiny()
    for r in _rows("orphan_annotation"):
        assert (ds.phe_sich / "annotations" / f"{r['image_id']}.xml").is_file()
        assert not (ds.phe_sich / "images" / f"{r['image_id']}.png").exists()


def test_misnamed_annotation_is_really_misnamed():
    ds = tiny()
    for r in _rows("misnamed_annotation"):
        own = ds.phe_sich / "annotations" / f"{r['image_id']}.xml"
        if r["related_id"]:
            assert read_voc(own).filename == f"{r['related_id']}.png"
        else:
            pid, s = r["image_id"].split("_")
            assert not own.exists()
            assert (ds.phe_sich / "annotations" / f"{int(pid)}_{s}.xml").is_file()


def test_box_mask_disagreement_is_visible_in_the_files():
    ds = tiny()
    truth = read_truth_slices(ds.truth_slices).set_index("image_id")
    for r in _rows("box_mask_disagreement"):
        iid = r["image_id"]
        mask = _mask(iid) > 0
        boxes = read_voc(ds.phe_sich / "annotations" / f"{iid}.xml").boxes
        if "moved off" in r["detail"]:
            assert mask.any()
            assert all(not mask[int(b[1]):int(b[3]), int(b[0]):int(b[2])].any() for b in boxes
                       if [float(v) for v in b[:4]] not in [[float(v) for v in t[:4]] for t in truth.loc[iid, "boxes"]])
            assert len(boxes) == truth.loc[iid, "n_boxes"]
        elif "mask erased" in r["detail"]:
            assert not mask.any() and truth.loc[iid, "edema_pixels"] > 0 and boxes
        else:
            assert mask.any() and len(boxes) == truth.loc[iid, "n_boxes"] - 1


def test_line_mask_is_an_outline_without_interior():
    from scipy import ndimage

    truth = read_truth_slices(tiny().truth_slices).set_index("image_id")
    for r in _rows("line_mask"):
        mask = _mask(r["image_id"]) > 0
        assert mask.any() and not ndimage.binary_erosion(mask).any()
        assert mask.sum() < truth.loc[r["image_id"], "edema_pixels"]


def test_no_defects_when_disabled(tmp_path):
    ds = generate(tmp_path, n_patients=1, size=64, slices=(4, 4), layouts=("phe-sich",), defects=False)
    assert len(read_truth_defects(ds.truth_defects)) == 0
    assert sorted(p.stem for p in (ds.phe_sich / "images").iterdir()) == [f"0001_0{i}" for i in range(4)]
    assert sorted(p.stem for p in (ds.phe_sich / "annotations").iterdir()) == [f"0001_0{i}" for i in range(4)]


def test_defects_per_kind_scales_with_patients():
    assert [defects_per_kind(n) for n in (1, 3, 8, 12, 40)] == [1, 1, 2, 3, 4]


def _fake_slices(n_patients: int, n_slices: int) -> list[dict]:
    rows = []
    for p in range(1, n_patients + 1):
        for s in range(n_slices):
            iph = 5 <= s <= 9
            rows.append({"image_id": f"{p:04d}_{s:02d}", "patient_id": f"{p:04d}", "slice_index": s,
                         "edema_pixels": 40 if iph else 0, "boxes": [[10, 10, 20, 20, "iph"]] if iph else []})
    return rows


def test_plan_for_12_patients_has_3_of_each_kind_on_distinct_images():
    plans = plan_defects(np.random.default_rng(0), _fake_slices(12, 24), n_per_kind=3, n_patients=12)
    counts = {k: sum(p.kind == k for p in plans) for k in DefectKind}
    assert counts[DefectKind.OUT_OF_SEQUENCE] == 2  # two swaps = four images
    assert all(c == 3 for k, c in counts.items() if k != DefectKind.OUT_OF_SEQUENCE)
    touched = [p.image_id for p in plans] + [p.related_id for p in plans if p.related_id]
    assert len(touched) == len(set(touched))


def test_plan_is_deterministic():
    a = plan_defects(np.random.default_rng(1), _fake_slices(4, 10), n_per_kind=2, n_patients=4)
    b = plan_defects(np.random.default_rng(1), _fake_slices(4, 10), n_per_kind=2, n_patients=4)
    assert a == b and all(isinstance(p, DefectPlan) for p in a)

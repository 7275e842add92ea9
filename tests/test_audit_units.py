"""Unit tests of the audit building blocks on hand-made inputs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medsift.audit.base import Severity
from medsift.audit.features import extract, sniff_type
from medsift.audit.hamming import exact_groups, hamming, pairs_within
from medsift.audit.pairing import name_key
from medsift.errors import ConfigError


def test_hamming_counts_differing_bits():
    a = np.array([0b1011], dtype=np.uint64)
    b = np.array([0b0001], dtype=np.uint64)
    assert hamming(a, b).tolist() == [2]


def test_pairs_within_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**62, 300, dtype=np.int64).astype(np.uint64)
    h = np.concatenate([base, base[:50] ^ np.uint64(0b1010_0000_0001)])  # 50 planted pairs at distance 3
    i, j, d = pairs_within(h, 5)
    dist = hamming(h[:, None], h[None, :])
    bi, bj = np.nonzero(np.triu(dist <= 5, 1))
    assert set(zip(i.tolist(), j.tolist())) == set(zip(bi.tolist(), bj.tolist()))
    assert len(i) >= 50 and (d <= 5).all()


def test_pairs_within_rejects_a_radius_above_16():
    with pytest.raises(ConfigError, match="max_dist"):
        pairs_within(np.zeros(3, np.uint64), 17)


def test_exact_groups_pairs_equal_keys_and_ignores_empty():
    i, j = exact_groups(np.array(["x", "", "y", "x", "", "x"], dtype=object))
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 3), (0, 5), (3, 5)]


def test_sniff_type_reads_magic_bytes():
    assert sniff_type(b"\x89PNG\r\n\x1a\n" + b"\0" * 10) == "png"
    assert sniff_type(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_type(b"\0" * 128 + b"DICM") == "dicom"
    assert sniff_type(b"hello") == "unknown"


def test_name_key_ignores_leading_zeros():
    assert name_key("004_15") == name_key("0004_15")
    assert name_key("0004_15") != name_key("0004_16")


def test_severity_parse_lists_valid_values():
    assert Severity.parse("warning").rank == 1
    with pytest.raises(ConfigError, match="info"):
        Severity.parse("fatal")


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _row(path, **kw) -> dict:
    return {"image_id": path.stem, "image_path": str(path), "format": "png", "mask_path": None, "boxes": [], **kw}


def test_extract_flags_truncated_png(tmp_path):
    rng = np.random.default_rng(1)
    data = _png(rng.integers(0, 256, (64, 64), dtype=np.uint8))
    p = tmp_path / "t.png"
    p.write_bytes(data[: len(data) // 2])
    s = extract(_row(p)).scalars
    assert not s["read_ok"] and s["error_kind"] in ("truncated", "unreadable")


def test_extract_sees_jpeg_bytes_behind_png_name(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(buf, format="JPEG")
    p = tmp_path / "j.png"
    p.write_bytes(buf.getvalue())
    s = extract(_row(p)).scalars
    assert (s["ext_type"], s["sniffed"]) == ("png", "jpeg")


def test_extract_reports_16_bit_and_stats(tmp_path):
    arr = np.zeros((32, 32), np.uint16)
    arr[:16] = 1000
    p = tmp_path / "w.png"
    p.write_bytes(_png(arr))
    s = extract(_row(p)).scalars
    assert s["bit_depth"] == 16
    assert (s["vmin"], s["vmax"], s["vmean"]) == (0.0, 1000.0, 500.0)


def test_extract_mask_coverage_by_box(tmp_path):
    img, mask = tmp_path / "a.png", tmp_path / "m.png"
    img.write_bytes(_png(np.full((100, 100), 50, np.uint8)))
    m = np.zeros((100, 100), np.uint8)
    m[10:20, 10:20] = 255      # 100 px inside the box
    m[80:90, 80:90] = 255      # 100 px far outside it
    mask.write_bytes(_png(m))
    s = extract(_row(img, mask_path=str(mask), boxes=[[10, 10, 20, 20, "a"]])).scalars
    assert s["mask_area"] == 200
    assert s["mask_bbox"] == [10, 10, 90, 90]
    assert s["mask_in_boxes"] == pytest.approx(0.5)


def test_unknown_check_fails_listing_valid_ones():
    from medsift.audit import run_audit
    from medsift.manifest import new_manifest

    df = new_manifest([{"image_id": "a", "patient_id": "p", "image_path": "/nowhere/a.png", "format": "png"}])
    with pytest.raises(ConfigError, match="duplicate"):
        run_audit(df, checks=["nope"])


def test_missing_file_is_an_integrity_error():
    from medsift.audit import run_audit
    from medsift.manifest import new_manifest

    df = new_manifest([{"image_id": "a", "patient_id": "p", "image_path": "/nowhere/a.png", "format": "png"}])
    res = run_audit(df, checks=["integrity"], n_jobs=1)
    assert res.findings[["image_id", "severity"]].values.tolist() == [["a", "error"]]
    assert res.findings["detail"].iloc[0].startswith("missing")


def test_dask_local_cluster_gives_the_same_features_as_local_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    from medsift.audit.runner import compute_features
    from medsift.manifest import new_manifest

    rng = np.random.default_rng(2)
    rows = []
    for k in range(6):
        p = tmp_path / f"i{k}.png"
        p.write_bytes(_png(rng.integers(0, 256, (32, 32), dtype=np.uint8)))
        rows.append({"image_id": f"i{k}", "patient_id": "p", "image_path": str(p), "format": "png"})
    df = new_manifest(rows)
    local, t1, _, h1 = compute_features(df, n_jobs=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote, t2, _, h2 = compute_features(df, scheduler=client)
    assert remote["pixel_hash"].tolist() == local["pixel_hash"].tolist()
    assert np.array_equal(t1, t2) and np.array_equal(h1, h2)


def test_eda_class_means_and_contrast_gate():
    from medsift.audit.base import AuditContext
    from medsift.audit.stats import compute_eda
    from medsift.manifest import new_manifest

    m = new_manifest([{"image_id": f"i{k}", "patient_id": "p", "image_path": f"/x/i{k}.png", "format": "png",
                       "label_hemorrhage": k % 2} for k in range(4)])
    thumbs = np.zeros((4, 64, 64), np.uint8)
    thumbs[1], thumbs[3] = 100, 200            # class 1: mean 150, std 50
    hists = np.zeros((4, 64), np.float32)
    hists[:, 0] = 0.5
    hists[0, 10], hists[1, 10], hists[2, 10] = 0.5, 0.5, 0.5   # narrow range: contrast 0
    hists[3, 5], hists[3, 60] = 0.25, 0.25                     # wide range
    feats = pd.DataFrame({"read_ok": [True] * 4})
    ctx = AuditContext(m, feats, thumbs, hists, np.zeros((4, 4), np.uint64))
    eda = compute_eda(ctx)
    assert eda.classes == {"hemorrhage": 2, "no hemorrhage": 2}
    assert float(eda.mean_images["hemorrhage"][0, 0]) == 150.0
    assert float(eda.std_images["hemorrhage"][0, 0]) == 50.0
    assert eda.contrast.tolist()[:3] == [0.0, 0.0, 0.0] and eda.contrast[3] > 200
    assert eda.groups["all"] == {"low": 3, "high": 1}


def test_extract_mask_interior_separates_regions_from_lines(tmp_path):
    img = tmp_path / "a.png"
    img.write_bytes(_png(np.full((40, 40), 50, np.uint8)))
    square, outline = np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8)
    square[10:20, 10:20] = 255           # 100 px, 8x8 = 64 survive one erosion
    outline[10:20, 10:20] = 255
    outline[11:19, 11:19] = 0            # its 1-px outline: 36 px, none inside
    (tmp_path / "s.png").write_bytes(_png(square))
    (tmp_path / "o.png").write_bytes(_png(outline))
    assert extract(_row(img, mask_path=str(tmp_path / "s.png"))).scalars["mask_interior"] == pytest.approx(0.64)
    assert extract(_row(img, mask_path=str(tmp_path / "o.png"))).scalars["mask_interior"] == 0.0


def _masked_manifest(tmp_path, masks: list[np.ndarray], patients: list[str] | None = None):
    from medsift.manifest import new_manifest

    rows = []
    for k, m in enumerate(masks):
        pid = patients[k] if patients else "p"
        img, mp = tmp_path / f"i{k}.png", tmp_path / f"m{k}.png"
        img.write_bytes(_png(np.full(m.shape, 50 + k, np.uint8)))
        mp.write_bytes(_png(m))
        rows.append({"image_id": f"{pid}_{k:02d}", "patient_id": pid, "image_path": str(img), "format": "png",
                     "mask_path": str(mp), "source": "s", "slice_index": k})
    return new_manifest(rows)


def _disc(r: int, ring: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[:64, :64]
    d = np.hypot(yy - 32, xx - 32)
    return (((d <= r) & ~((d < r - 1) if ring else False)) * 255).astype(np.uint8)


def _line_masks(tmp_path, masks, patients=None) -> list[str]:
    from medsift.audit import run_audit

    tmp_path.mkdir()
    res = run_audit(_masked_manifest(tmp_path, masks, patients), checks=["label_consistency"], n_jobs=1)
    lines = res.findings[res.findings["detail"].str.startswith("line_mask")]
    assert set(lines["severity"]) <= {"warning"}
    return sorted(lines["image_id"])


def test_line_mask_flags_a_traced_slice_inside_a_region_drawn_lesion(tmp_path):
    # a ring between two discs is flagged; the thin last slice of the lesion (no mask after it) is not
    masks = [_disc(8), _disc(9), _disc(10, ring=True), _disc(9), _disc(6, ring=True)]
    assert _line_masks(tmp_path / "a", masks) == ["p_02"]


def test_line_mask_flags_a_patient_traced_throughout(tmp_path):
    masks = [_disc(8 + k) for k in range(4)] + [_disc(8 + k, ring=True) for k in range(3)]
    assert _line_masks(tmp_path / "a", masks, ["p"] * 4 + ["q"] * 3) == ["q_04", "q_05", "q_06"]


def test_line_mask_silent_where_the_source_draws_lines(tmp_path):
    # at small sizes every rim is 1-2 px wide: lines are the norm there, not a finding
    assert _line_masks(tmp_path / "a", [_disc(8 + k, ring=True) for k in range(5)]) == []

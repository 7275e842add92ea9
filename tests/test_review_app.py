"""The review web app through Flask's test client: queue, images, decisions, refusals."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from review_fixtures import build_workspace, slice_pixels

flask = pytest.importorskip("flask")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("review"))


@pytest.fixture()
def client(ws):
    from medsift.review.app import create_app

    (ws / "review" / "decisions.csv").unlink(missing_ok=True)
    return create_app(ws, reviewer="ana", prerender=0).test_client()


def _png(data: bytes) -> np.ndarray:
    """Decode a served PNG as RGB (gray PNGs are sent when nothing coloured is drawn)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_items_most_severe_first_with_neighbours(client):
    items = client.get("/api/items").get_json()["items"]
    # P1_01 has an error; the two duplicates (0.91) come before the info finding; orphan P9_99 is left out.
    assert [i["image_id"] for i in items] == ["P1_01", "P1_02", "P2_02", "P2_03"]
    assert (items[0]["prev"], items[0]["next"]) == ("P1_00", "P1_02")
    assert items[3]["next"] is None
    assert sorted(f["check"] for f in items[0]["findings"]) == ["orientation", "pairing"]
    assert (items[0]["related"], items[1]["related"]) == ([], ["P2_02"])


def test_image_is_the_source_pixels_without_overlays(client):
    resp = client.get("/api/image/P1_00.png?overlay=&size=512")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    rgb = _png(resp.data)
    assert rgb.shape == (64, 64, 3)
    np.testing.assert_array_equal(rgb[..., 0], slice_pixels(1, 0))  # 8-bit data shown as stored


def test_plain_image_is_sent_as_gray_png(client):
    from PIL import Image

    assert Image.open(io.BytesIO(client.get("/api/image/P1_00.png?overlay=mask,boxes").data)).mode == "L"
    assert Image.open(io.BytesIO(client.get("/api/image/P1_01.png?overlay=mask").data)).mode == "RGB"


def test_mask_overlay_tints_only_mask_pixels(client):
    plain = _png(client.get("/api/image/P1_01.png?overlay=").data).astype(int)
    tinted = _png(client.get("/api/image/P1_01.png?overlay=mask").data).astype(int)
    changed = np.any(plain != tinted, axis=2)
    expected = np.zeros((64, 64), bool)
    expected[20:28, 20:28] = True  # slice 1: mask rows 16+4..24+4, cols 20..28
    np.testing.assert_array_equal(changed, expected)


def test_box_overlay_draws_yellow_outline(client):
    rgb = _png(client.get("/api/image/P1_01.png?overlay=boxes").data)
    assert tuple(rgb[20, 24]) == (255, 215, 0)   # top edge of box [20, 20, 28, 28]
    assert tuple(rgb[24, 24]) != (255, 215, 0)   # inside stays gray


def test_unknown_and_traversal_ids_are_404(client, ws):
    (ws / "evil.png").symlink_to("/etc/passwd")
    try:
        for url in ("/api/image/NOPE.png", "/api/image/../manifest.parquet", "/api/image/..%2Fmanifest.png",
                    "/api/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd.png", "/api/image//etc/passwd.png",
                    "/api/image/evil.png", "/api/image/P1_00", "/api/image/P1_00.png%00.txt"):
            assert client.get(url).status_code == 404, url
    finally:
        (ws / "evil.png").unlink()


def test_bad_image_parameters_are_400(client):
    assert client.get("/api/image/P1_00.png?window=../../x").status_code == 400
    assert client.get("/api/image/P1_00.png?overlay=mask,evil").status_code == 400
    assert client.get("/api/image/P1_00.png?size=99999").status_code == 400


def test_decision_is_appended_and_returned(client, ws):
    resp = client.post("/api/decision", json={"image_id": "P1_02", "decision": "exclude", "comment": "dup, drop"})
    assert resp.status_code == 201
    lines = (ws / "review" / "decisions.csv").read_text().splitlines()
    assert lines[0] == "timestamp,reviewer,image_id,decision,new_label,comment"
    assert lines[1].endswith(',ana,P1_02,exclude,,"dup, drop"')
    assert client.get("/api/items").get_json()["items"][1]["decision"]["decision"] == "exclude"


@pytest.mark.parametrize("body,code", [
    ({"image_id": "P1_02", "decision": "delete"}, 422),
    ({"image_id": "NOPE", "decision": "accept"}, 422),
    ({"image_id": "P1_02", "decision": "relabel"}, 422),                                  # no new_label
    ({"image_id": "P1_02", "decision": "relabel", "new_label": "label_zzz=1"}, 422),      # unknown column
    ({"image_id": "P1_02", "decision": "accept", "new_label": "label_hemorrhage=1"}, 422),
    ({"image_id": "P1_02", "decision": "accept", "comment": "x" * 2001}, 422),
    ({"image_id": ["P1_02"], "decision": "accept"}, 422),
    ({"image_id": "P1_02", "decision": "accept", "path": "/etc/passwd"}, 422),
    ([1, 2], 400),
])
def test_malformed_decisions_are_refused_and_not_written(client, ws, body, code):
    assert client.post("/api/decision", json=body).status_code == code
    assert not (ws / "review" / "decisions.csv").exists()


def test_non_json_decision_is_415(client):
    assert client.post("/api/decision", data="image_id=P1_02", content_type="text/plain").status_code == 415


def test_foreign_host_and_cross_origin_post_refused(client):
    assert client.get("/api/items", headers={"Host": "evil.example"}).status_code == 400
    resp = client.post("/api/decision", json={"image_id": "P1_02", "decision": "accept"},
                       headers={"Origin": "http://evil.example"})
    assert resp.status_code == 403


def test_decisions_survive_a_new_app(client, ws):
    from medsift.review.app import create_app

    client.post("/api/decision", json={"image_id": "P1_01", "decision": "accept"})
    client.post("/api/decision", json={"image_id": "P1_01", "decision": "relabel", "new_label": "label_hemorrhage=0"})
    again = create_app(ws, reviewer="bo", prerender=0).test_client()
    assert again.get("/api/decisions").get_json()["P1_01"]["new_label"] == "label_hemorrhage=0"


def test_next_image_under_100ms_after_prefetch(client):
    client.get("/api/image/P1_01.png?window=brain&overlay=mask,boxes")   # prefetches the next 3 items
    state = client.application.extensions["medsift_review"]
    state.pool.submit(lambda: None).result(timeout=10)                  # wait for the prefetch queue
    t0 = time.perf_counter()
    resp = client.get("/api/image/P1_02.png?window=brain&overlay=mask,boxes")
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 200 and elapsed < 0.1
    assert state.cache.hits >= 1

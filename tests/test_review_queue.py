"""Review queues: model disagreements from predictions, binding, queue choice."""

from __future__ import annotations

import pandas as pd
import pytest

from review_fixtures import build_workspace


def test_binary_disagreements_scored_by_confidence():
    from medsift.review.disagreements import disagreements

    pred = pd.DataFrame({"image_id": ["a", "b", "c"], "label": [1, 0, 1], "score": [0.1, 0.7, 0.9],
                         "pred": [0, 1, 1]})
    f = disagreements(pred, source="r1 ws-test")
    assert f["image_id"].tolist() == ["a", "b"]
    assert f["score"].tolist() == [0.9, 0.7]
    assert f["severity"].tolist() == ["warning", "info"]
    assert f["detail"].iloc[0] == "label 1, model score 0.10 (r1 ws-test)"


def test_multilabel_disagreements_name_the_label():
    from medsift.review.disagreements import disagreements

    pred = pd.DataFrame({"image_id": ["a"], "label_ivh": [0], "score_ivh": [0.95], "pred_ivh": [1],
                         "label_sah": [1], "score_sah": [0.8], "pred_sah": [1]})
    f = disagreements(pred, source="x")
    assert f["detail"].tolist() == ["ivh label 0, model score 0.95 (x)"]


def test_app_disagreement_queue_reads_ws_runs(tmp_path):
    from medsift.review.app import create_app

    ws = build_workspace(tmp_path)
    ev = ws / "runs" / "r1" / "eval" / f"{ws.name}-test"
    ev.mkdir(parents=True)
    pd.DataFrame({"image_id": ["P2_01", "P2_02", "P2_03"], "label": [1, 1, 0], "score": [0.2, 0.9, 0.95],
                  "pred": [0, 1, 1]}).to_csv(ev / "predictions.csv", index=False)
    data = create_app(ws, queue="disagreements", prerender=0).test_client().get("/api/items").get_json()
    assert data["queue"] == "disagreements"
    assert [i["image_id"] for i in data["items"]] == ["P2_03", "P2_01"]  # 0.95 then 0.8


def test_unknown_queue_is_refused(tmp_path):
    from medsift.errors import ConfigError
    from medsift.review.app import create_app

    with pytest.raises(ConfigError, match="disagreements"):
        create_app(build_workspace(tmp_path), queue="everything")


def test_server_binds_loopback_by_default(tmp_path):
    from medsift.review.app import make_review_server

    server = make_review_server(build_workspace(tmp_path), port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_cli_review_defaults_to_loopback():
    from typer.testing import CliRunner

    from medsift.cli import app

    out = CliRunner().invoke(app, ["review", "--help"], terminal_width=200).output
    assert "127.0.0.1" in out and "8765" in out


def test_findings_file_option_replaces_the_audit_queue(tmp_path):
    from medsift.review.app import create_app

    ws = build_workspace(tmp_path)
    q = tmp_path / "queue-uncertainty.findings.csv"
    q.write_text("image_id,check,severity,score,detail,related_id\nP2_00,active_uncertainty,info,0.5,p=0.50,\n")
    items = create_app(ws, findings=q, prerender=0).test_client().get("/api/items").get_json()["items"]
    assert [(i["image_id"], i["findings"][0]["check"]) for i in items] == [("P2_00", "active_uncertainty")]


def test_missing_findings_file_is_refused(tmp_path):
    from medsift.errors import ConfigError
    from medsift.review.app import create_app

    with pytest.raises(ConfigError, match="nope.csv"):
        create_app(build_workspace(tmp_path), findings=tmp_path / "nope.csv")

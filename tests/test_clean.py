"""Cleaning: findings and review decisions become exclusions in a new manifest version; nothing is deleted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from medsift.clean import clean, exclusions, read_decisions_table
from medsift.errors import ConfigError
from medsift.manifest import active, new_manifest


def _df():
    return new_manifest([{"image_id": i, "patient_id": "p", "image_path": f"/x/{i}.png", "format": "png",
                          "label_hemorrhage": 0} for i in ("a", "b", "c", "d")])


def _findings():
    return pd.DataFrame([
        {"image_id": "a", "check": "integrity", "severity": "error", "score": 1.0, "detail": "truncated: x", "related_id": ""},
        {"image_id": "b", "check": "duplicate", "severity": "warning", "score": 0.8, "detail": "near_duplicate: of c", "related_id": "c"},
        {"image_id": "c", "check": "sequence", "severity": "warning", "score": 0.6, "detail": "out_of_sequence: y", "related_id": ""},
        {"image_id": "zz", "check": "pairing", "severity": "error", "score": 1.0, "detail": "orphan_annotation: z", "related_id": ""},
    ])


def test_default_excludes_only_errors_and_keeps_every_row():
    out = clean(_df(), _findings())
    assert len(out) == 4
    assert out["excluded"].tolist() == [True, False, False, False]
    assert out["exclude_reason"].iloc[0] == "audit: integrity/truncated (error)"


def test_warning_severity_and_check_filter():
    out = clean(_df(), _findings(), checks=["duplicate"], min_severity="warning")
    assert out["excluded"].tolist() == [False, True, False, False]


def test_unknown_check_is_rejected():
    with pytest.raises(ConfigError, match="integrity"):
        clean(_df(), _findings(), checks=["bogus"])


def test_latest_decision_wins_and_accept_overrides_a_finding(tmp_path):
    d = pd.DataFrame([
        {"timestamp": "2026-01-01T10:00:00", "reviewer": "ana", "image_id": "d", "decision": "exclude", "new_label": "", "comment": "motion"},
        {"timestamp": "2026-01-02T10:00:00", "reviewer": "bo", "image_id": "d", "decision": "accept", "new_label": "", "comment": ""},
        {"timestamp": "2026-01-01T09:00:00", "reviewer": "ana", "image_id": "a", "decision": "accept", "new_label": "", "comment": ""},
        {"timestamp": "2026-01-01T09:00:00", "reviewer": "ana", "image_id": "c", "decision": "exclude", "new_label": "", "comment": "foreign slice"},
        {"timestamp": "2026-01-01T09:00:00", "reviewer": "ana", "image_id": "b", "decision": "relabel", "new_label": "label_hemorrhage=1", "comment": ""},
    ])
    path = tmp_path / "decisions.csv"
    d.to_csv(path, index=False)
    assert read_decisions_table(path).set_index("image_id").loc["d", "decision"] == "accept"
    out = clean(_df(), _findings(), decisions=path)
    assert out["excluded"].tolist() == [False, False, True, False]
    assert out["exclude_reason"].iloc[2] == "review: foreign slice (ana, 2026-01-01T09:00:00)"
    assert out["label_hemorrhage"].tolist() == [0, 1, 0, 0]


def test_exclusions_table_names_origin_and_checks():
    before = _df()
    after = clean(before, _findings())
    t = exclusions(before, after)
    assert t[["image_id", "origin", "check", "severity"]].values.tolist() == [["a", "audit", "integrity", "error"]]


def test_cli_clean_round_trip_keeps_files_and_rows(tmp_path):
    from typer.testing import CliRunner

    from medsift.cli import app
    from medsift.workspace import Workspace
    from PIL import Image
    import numpy as np

    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i in ("a", "b", "c", "d"):
        Image.fromarray(np.full((8, 8), 10, np.uint8)).save(src / f"{i}.png")
        rows.append({"image_id": i, "patient_id": i, "image_path": str(src / f"{i}.png"), "format": "png"})
    ws = Workspace.at(tmp_path / "ws")
    ws.write(new_manifest(rows), reason="test")
    (ws.root / "audit").mkdir()
    _findings().to_csv(ws.root / "audit" / "findings.csv", index=False)
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    result = CliRunner().invoke(app, ["clean", str(ws.root), "--severity", "warning", "--check", "integrity",
                                      "--check", "sequence"])
    assert result.exit_code == 0, result.output
    df = ws.read()
    assert len(df) == 4
    assert sorted(df.loc[df["excluded"].astype(bool), "image_id"]) == ["a", "c"]
    assert sorted(active(df)["image_id"]) == ["b", "d"]
    assert ws.versions()[-1]["reason"].startswith("clean ")
    assert len(ws.read_version(1)) == 4 and not ws.read_version(1)["excluded"].any()
    t = pd.read_csv(ws.root / "clean" / "exclusions.csv")
    assert sorted(t["image_id"]) == ["a", "c"]
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}


def test_excluded_rows_leave_the_splits():
    from medsift.split import assign_splits

    df = new_manifest([{"image_id": f"{p}_{s}", "patient_id": p, "image_path": f"/x/{p}_{s}.png", "format": "png",
                        "label_hemorrhage": s % 2} for p in ("p1", "p2", "p3", "p4", "p5") for s in range(2)])
    f = pd.DataFrame([{"image_id": "p1_0", "check": "integrity", "severity": "error", "score": 1.0,
                       "detail": "constant: 0", "related_id": ""}])
    out = assign_splits(clean(df, f), test=0.2, val=0.2, folds=0)
    assert out.set_index("image_id").loc["p1_0", "split"] is pd.NA or pd.isna(out.set_index("image_id").loc["p1_0", "split"])
    assert out.set_index("image_id").drop("p1_0")["split"].notna().all()

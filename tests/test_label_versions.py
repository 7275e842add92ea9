"""Version diffs are exact: added/removed/relabelled/excluded ids and balance drift on hand-made manifests."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medsift.label.versions import diff_versions
from medsift.manifest import new_manifest
from medsift.workspace import Workspace


def _m(rows):
    return new_manifest([{"patient_id": r[0][:1], "image_path": f"/x/{r[0]}.png", "format": "png",
                          "image_id": r[0], "label_hemorrhage": r[1], "excluded": r[2], "split": r[3]}
                         for r in rows])


A = _m([("a1", 1, False, "train"), ("a2", 0, False, "train"), ("b1", 0, False, "test"), ("b2", 1, False, "test")])
B = _m([("a1", 0, False, "train"), ("a2", 0, True, "train"), ("b1", 0, False, "val"), ("c1", 1, False, None)])


def test_diff_lists_exact_changes():
    d = diff_versions(A, B)
    assert d.added == ["c1"]
    assert d.removed == ["b2"]
    assert d.relabelled[["image_id", "before", "after"]].values.tolist() == [["a1", 1, 0]]
    assert d.excluded == ["a2"] and d.included == []
    assert d.moved_split.values.tolist() == [["b1", "test", "val"]]


def test_balance_drift_in_percentage_points():
    d = diff_versions(A, B)
    row = d.balance.set_index("label").loc["label_hemorrhage"]
    # before: 2 of 4 positive (50 %); after, excluding a2: a1=0, b1=0, c1=1 -> 1 of 3
    assert row["rate_before"] == pytest.approx(0.5)
    assert row["rate_after"] == pytest.approx(1 / 3)
    assert row["drift_pp"] == pytest.approx(100 * (1 / 3 - 0.5))


def test_identical_versions_have_empty_diff():
    assert diff_versions(A, A).summary() == {"added": 0, "removed": 0, "relabelled": 0, "excluded": 0,
                                             "included": 0, "moved_split": 0}


def test_cli_versions_and_diff(tmp_path):
    from medsift.cli import app

    ws = Workspace.at(tmp_path / "ws")
    ws.write(A, reason="ingest")
    ws.write(B, reason="clean")
    runner = CliRunner()
    out = runner.invoke(app, ["versions", str(ws.root)])
    assert out.exit_code == 0 and "ingest" in out.output and "clean" in out.output
    out = runner.invoke(app, ["diff", str(ws.root), "1", "2"])
    assert out.exit_code == 0, out.output
    assert "added 1" in out.output and "removed 1" in out.output and "relabelled 1" in out.output

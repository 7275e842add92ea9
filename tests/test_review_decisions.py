"""The append-only decisions file."""

from __future__ import annotations

import pytest

from medsift.errors import ConfigError
from medsift.review.decisions import (COLUMNS, Decision, Verdict, append_decision, latest_decisions,
                                      parse_new_label, read_decisions)


def test_latest_decision_wins_and_nothing_is_rewritten(tmp_path):
    p = tmp_path / "d.csv"
    append_decision(p, Decision("a", Verdict.EXCLUDE, reviewer="ana", timestamp="t1"))
    first = p.read_text()
    append_decision(p, Decision("a", Verdict.ACCEPT, reviewer="bo", timestamp="t2"))
    append_decision(p, Decision("b", Verdict.RELABEL, new_label="label_ivh=1", timestamp="t3"))
    assert p.read_text().startswith(first)
    latest = latest_decisions(p)
    assert (latest["a"]["decision"], latest["a"]["reviewer"]) == ("accept", "bo")
    assert latest["b"]["new_label"] == "label_ivh=1"
    assert len(read_decisions(p)) == 3


def test_comment_with_newline_and_quotes_round_trips(tmp_path):
    p = tmp_path / "d.csv"
    comment = 'line one\nsays "bleed, maybe"'
    append_decision(p, Decision("a", Verdict.ACCEPT, comment=comment))
    assert latest_decisions(p)["a"]["comment"] == comment


def test_torn_last_line_is_skipped(tmp_path):
    p = tmp_path / "d.csv"
    append_decision(p, Decision("a", Verdict.ACCEPT, timestamp="t1"))
    with open(p, "a") as fh:
        fh.write("t2,ana,b,exc")  # crash mid-write
    assert list(latest_decisions(p)) == ["a"]


def test_wrong_header_is_refused(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("when,who\n")
    with pytest.raises(ConfigError, match="header"):
        read_decisions(p)


def test_columns_are_the_contract():
    assert COLUMNS == ("timestamp", "reviewer", "image_id", "decision", "new_label", "comment")


def test_parse_new_label():
    assert parse_new_label("label_hemorrhage=1; label_ivh=0") == {"label_hemorrhage": 1, "label_ivh": 0}
    with pytest.raises(ConfigError):
        parse_new_label("label_hemorrhage=2")

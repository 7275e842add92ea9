"""The audit on tiny phantoms with injected defects: precision/recall per defect kind, output files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from medsift.audit import CHECK_NAMES, evaluate_against_truth, read_findings
from audit_fixtures import audited_synth  # noqa: F401  (session fixture)


def test_every_defect_kind_found_with_precision_and_recall_at_least_095(audited_synth):
    table = evaluate_against_truth(audited_synth.result.findings, audited_synth.truth_defects)
    assert set(table["defect"]) == set(pd.read_csv(audited_synth.truth_defects)["defect"])
    low = table[(table["precision"] < 0.95) | (table["recall"] < 0.95)]
    assert low.empty, f"below 0.95:\n{low.to_string()}"


def test_scores_table_has_a_score_and_flag_per_check_for_every_image(audited_synth):
    scores = audited_synth.result.scores
    n = len(audited_synth.result.context.manifest)
    assert len(scores) == n
    for name in CHECK_NAMES:
        assert scores[f"{name}_score"].between(0, 1).all()
        assert scores[f"is_{name}_issue"].dtype == bool


def test_flagged_images_match_warning_or_error_findings(audited_synth):
    res = audited_synth.result
    f = res.findings[res.findings["severity"].isin(["warning", "error"])]
    for name in CHECK_NAMES:
        flagged = set(res.scores.loc[res.scores[f"is_{name}_issue"], "image_id"])
        in_manifest = set(f.loc[f["check"] == name, "image_id"]) & set(res.scores["image_id"])
        assert flagged == in_manifest


def test_findings_csv_round_trips_and_summary_counts_match(audited_synth):
    on_disk = read_findings(audited_synth.workspace)
    assert len(on_disk) == len(audited_synth.result.findings)
    summary = json.loads((audited_synth.workspace / "audit" / "summary.json").read_text())
    for name, s in summary["checks"].items():
        assert s["n_findings"] == int((on_disk["check"] == name).sum())


def test_exact_duplicate_pair_points_both_ways(audited_synth):
    truth = pd.read_csv(audited_synth.truth_defects, dtype=str, keep_default_na=False)
    copy, original = truth.loc[truth["defect"] == "exact_duplicate", ["image_id", "related_id"]].iloc[0]
    f = audited_synth.result.findings
    dup = f[(f["check"] == "duplicate") & f["detail"].str.startswith("exact_duplicate")]
    pairs = set(zip(dup["image_id"], dup["related_id"]))
    assert (copy, original) in pairs and (original, copy) in pairs


def test_report_is_self_contained_with_a_section_per_check(audited_synth):
    html = (audited_synth.workspace / "audit" / "report.html").read_text()
    for name in CHECK_NAMES:
        assert f'id="check-{name}"' in html
    assert "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html


def test_evaluate_counts_a_missed_defect_as_lost_recall(audited_synth):
    f = audited_synth.result.findings
    without = f[f["check"] != "intensity"]
    table = evaluate_against_truth(without, audited_synth.truth_defects).set_index("defect")
    assert table.loc["inverted", "recall"] == 0.0
    assert table.loc["inverted", "n"] == 1

"""The workspace report: content, provenance, self-containment, CLI."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from report_fixtures import build_run
from review_fixtures import build_workspace


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.ids, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])
        if "id" in a:
            self.ids.append(a["id"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from medsift.report.html import build_report

    root = tmp_path_factory.mktemp("report")
    ws = build_workspace(root)
    build_run(ws / "runs" / "r1")
    extra = build_run(root / "elsewhere" / "r2", warnings=("40 of 40 input slices carry HU <DICOM>",))
    path = build_report(ws, runs=[extra])
    html = path.read_text()
    parser = _Collect()
    parser.feed(html)
    return ws, path, html, parser


def test_default_path_is_in_workspace(built):
    ws, path, _, _ = built
    assert path == ws / "report.html"


def test_self_contained_no_network(built):
    _, _, html, p = built
    assert p.srcs and all(s.startswith("data:image/png;base64,") for s in p.srcs)
    assert not any(h.startswith(("http:", "https:", "//")) for h in p.hrefs)
    assert "script" not in p.tags and "<link" not in html


def test_embedded_images_decode(built):
    from PIL import Image

    _, _, _, p = built
    for src in p.srcs:
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert img.size[0] > 0


def test_class_balance_per_split(built):
    _, _, html, _ = built
    # train: P1 slices 1,2 positive of 4 -> 2 / 2 / 0 (50.0%)
    row = re.search(r"<tr><td>train</td><td>1</td><td>4</td><td>0</td><td>([^<]*)</td></tr>", html)
    assert row and row.group(1) == "2 / 2 / 0 (50.0%)"


def test_findings_table_counts_by_severity(built):
    _, _, html, _ = built
    # pairing: P1_01 (error) and orphan P9_99 (error) -> 2 images, 2 errors
    assert "<tr><td>pairing</td><td>2</td><td>2</td><td>0</td><td>0</td></tr>" in html


def test_gallery_leaves_out_ids_not_in_manifest(built):
    _, _, html, _ = built
    assert 'alt="P9_99"' not in html and 'alt="P1_01"' in html


def test_both_runs_with_metrics_and_ci(built):
    _, _, html, p = built
    assert "Run r1" in html and "Run r2" in html
    assert "<tr><td>auc</td><td>0.875</td><td>0.800 – 0.930</td></tr>" in html
    assert "<tr><td>n</td><td>40</td><td></td></tr>" in html
    assert "auc_ci_low" not in html


def test_input_check_warnings_head_their_evaluation(built):
    _, _, html, _ = built
    assert html.count("Input check:") == 1  # r2's evaluation only; r1's inputs matched its training
    assert "Input check: 40 of 40 input slices carry HU &lt;DICOM&gt;" in html


def test_every_figure_names_command_and_config(built):
    ws, _, html, _ = built
    figures = re.findall(r"<figure id=.*?</figure>", html, flags=re.S)
    assert len(figures) == 4 + 2 * 3  # 4 EDA plots; per run: curves, confusion, roc (gradcam/ is a gallery)
    for fig in figures:
        assert "produced by <code>medsift " in fig
    roc = next(f for f in figures if "ROC curve" in f)
    assert f"medsift evaluate {ws / 'runs' / 'r1'} --workspace {ws} --split test" in roc
    assert 'href="runs/r1/config.yaml"' in roc


def test_subfolder_images_form_a_gallery(built):
    _, _, html, _ = built
    assert html.count('alt="P1_01"') >= 2 + 1  # one per run's gradcam gallery, one in the audit gallery
    assert "<h4>Grad-CAM</h4>" in html


def test_links_are_relative_and_exist(built):
    ws, path, _, p = built
    local = [h for h in p.hrefs if not h.startswith("#")]
    assert local
    for h in local:
        assert not h.startswith("/") and (path.parent / h).exists(), h


def test_toc_targets_exist(built):
    _, _, _, p = built
    targets = [h[1:] for h in p.hrefs if h.startswith("#")]
    assert targets and set(targets) <= set(p.ids)


def test_text_is_escaped(tmp_path):
    from medsift.report.html import build_report

    ws = build_workspace(tmp_path)
    (ws / "audit" / "findings.csv").write_text(
        "image_id,check,severity,score,detail,related_id\nP1_01,pairing,error,1,<script>alert(1)</script>,\n")
    html = build_report(ws, out=tmp_path / "r.html").read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_missing_run_folder_is_refused(tmp_path):
    from medsift.errors import ConfigError
    from medsift.report.html import build_report

    ws = build_workspace(tmp_path)
    with pytest.raises(ConfigError, match="nope"):
        build_report(ws, runs=[tmp_path / "nope"])


def test_metrics_table_pairs_ci_keys():
    from medsift.report.figure import Provenance
    from medsift.report.sections import metrics_table

    t = metrics_table({"dice": 0.5, "dice_ci_high": 0.6, "dice_ci_low": 0.4, "hd95": 3.25},
                      title="m", provenance=Provenance("x"))
    assert t.rows == [["dice", "0.500", "0.400 – 0.600"], ["hd95", "3.250", ""]]


def test_cli_writes_report(tmp_path):
    from typer.testing import CliRunner

    from medsift.cli import app

    ws = build_workspace(tmp_path)
    out = tmp_path / "out" / "rep.html"
    result = CliRunner().invoke(app, ["report", str(ws), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Dataset overview" in out.read_text()


def test_patient_level_metrics_get_their_own_table():
    from medsift.report.sections import group_metrics

    groups = group_metrics({"auc": 0.8, "auc_ci_low": 0.7, "patient_max_auc": 0.9, "patient_mean_auc": 0.85,
                            "tp": 17.0})
    assert groups == [("Metrics (slice level)", {"auc": 0.8, "auc_ci_low": 0.7, "tp": 17.0}),
                      ("Metrics (patient level, max over slices)", {"auc": 0.9}),
                      ("Metrics (patient level, mean over slices)", {"auc": 0.85})]


def test_counts_stored_as_float_show_as_integers():
    from medsift.report.sections import fmt

    assert (fmt(17.0), fmt(1.0), fmt(0.8754), fmt(float("nan"))) == ("17", "1.000", "0.875", "–")


def test_clinical_sheet_summarised_per_patient(tmp_path):
    from medsift.report.sections import clinical_section
    from medsift.workspace import Workspace

    ws = Workspace.at(build_workspace(tmp_path))
    df = ws.read()
    df["clinical_age"] = [70.0] * 4 + [50.0] * 4          # per patient: 70, 50
    df["clinical_sex"] = ["F"] * 4 + [None] * 4
    sec = clinical_section(ws, df)
    numeric, categorical = sec.tables
    # n, missing, mean, sd (n-1: sqrt(200)), min, median, max; whole numbers print without decimals
    assert numeric.rows == [["age", "2", "0", "60", "14.142", "50", "60", "70"]]
    assert categorical.rows == [["sex", "1", "1", "1", "F (1)"]]

"""The bad-input corpus (tests/bad_inputs/corpus.py) through `medsift ingest` (phe-sich, folder and dicom
layouts) then `medsift audit`, in one subprocess with a timeout, then export: every hostile file gets its
recorded status, every run finishes, the sources stay byte-identical and nothing is written outside the
workspace and export folders."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bad_inputs.corpus import ABSENT, PASSWD, SECRET, build, permission_denied_works

CLI_TIMEOUT_S = 120
"""A run that hangs (e.g. reading a FIFO, expanding entities) fails the test instead of blocking CI."""


def run_cli(*args: str, cwd: Path, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    code = "import sys; from medsift.cli import main; sys.argv = ['medsift'] + sys.argv[1:]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


DRIVER = """
import json, sys, traceback
from medsift.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["medsift"] + argv
    try:
        main()
        codes.append(0)
    except SystemExit as exc:
        codes.append(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    except BaseException:
        traceback.print_exc()
        codes.append("crash")
print("CODES " + json.dumps(codes))
"""


def run_verbs(commands: list[list[str]], *, cwd: Path, timeout: float) -> tuple[list, subprocess.CompletedProcess]:
    """Several CLI verbs in one interpreter (one start-up); exit code of each (``"crash"`` for a traceback)."""
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("CODES ")]
    return (json.loads(line[-1][6:]) if line else []), proc


def snapshot(folder: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Every entry under ``folder`` (symlinks not followed; FIFOs never opened): type, target or sha256, mtime."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder), followlinks=False):
        here = Path(os.fsdecode(dirpath))
        if any(here == s or s in here.parents for s in skip):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            key = os.fsdecode(path)
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                if st.st_mode & 0o444 == 0 and not os.access(path, os.R_OK):
                    out[key] = ("file-unreadable", st.st_size, st.st_mtime_ns)
                else:
                    with open(path, "rb") as f:
                        out[key] = ("file", hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[key] = ("dir", st.st_mode)
            else:
                out[key] = ("special", st.st_mode, st.st_mtime_ns)
    return out


EXPORT_TARGETS = ("coco", "voc")


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory):
    """Build the corpus, snapshot it, ingest + audit each layout through the CLI, export, snapshot again."""
    from medsift.export import export_workspace

    root = tmp_path_factory.mktemp("badcorpus")
    corpus = build(root / "c")
    cwd = root / "cwd"
    cwd.mkdir()
    ws_root, out_root = root / "ws", root / "out"
    ws_root.mkdir()
    out_root.mkdir()
    before = snapshot(root, skip=(ws_root, out_root))
    layouts = list(corpus.sources)
    commands = [["ingest", str(corpus.sources[lay]), "--layout", lay, "--workspace", str(ws_root / lay),
                 "--jobs", "1"] for lay in layouts]
    commands += [["audit", str(ws_root / lay), "--no-learned", "--jobs", "1"] for lay in layouts]
    codes, proc = run_verbs(commands, cwd=cwd, timeout=3 * CLI_TIMEOUT_S)
    results = {}
    for lay in layouts:
        path = ws_root / lay / "manifest.parquet"
        results[lay] = (ws_root / lay, pd.read_parquet(path) if path.is_file() else None)
    exports = {}
    for lay in layouts:
        for target in EXPORT_TARGETS:
            try:
                exports[lay, target] = export_workspace(ws_root / lay, out_root / f"{lay}_{target}", target=target)
            except Exception as exc:  # recorded, asserted below
                exports[lay, target] = exc
    after = snapshot(root, skip=(ws_root, out_root))
    return corpus, {"codes": dict(zip([" ".join(c[:2]) for c in commands], codes)), "proc": proc,
                    "results": results, "exports": exports}, before, after


def test_every_ingest_and_audit_run_finishes_with_exit_0(corpus_run):
    _, run, _, _ = corpus_run
    assert "Traceback" not in run["proc"].stderr, run["proc"].stderr[-3000:]
    assert len(run["codes"]) == 6 and set(run["codes"].values()) == {0}, (run["codes"], run["proc"].stderr[-3000:])
    assert all(manifest is not None for _, manifest in run["results"].values())


def _cases():
    # Built once at collection to name one test per bad input; the session fixture builds its own copy.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [pytest.param(e, id=f"{e.layout}:{e.image_id[:24]}") for e in build(Path(tmp)).entries]


@pytest.mark.parametrize("entry", _cases())
def test_each_bad_input_gets_its_recorded_status(corpus_run, entry):
    _, run, _, _ = corpus_run
    manifest = run["results"][entry.layout][1].set_index("image_id")
    if entry.expected == ABSENT:
        assert entry.image_id not in manifest.index
        return
    assert manifest.loc[entry.image_id, "status"] == entry.expected, manifest.loc[entry.image_id, "status_detail"]
    if entry.expected != "ok":
        assert manifest.loc[entry.image_id, "status_detail"], "a problem row must say what was wrong"


def test_rows_are_exactly_the_corpus_entries(corpus_run):
    corpus, run, _, _ = corpus_run
    for layout, (_, manifest) in run["results"].items():
        expected = sorted(e.image_id for e in corpus.of(layout) if e.expected != ABSENT)
        assert sorted(manifest["image_id"]) == expected
        assert manifest["image_id"].is_unique


def test_sources_and_everything_outside_the_outputs_are_unchanged(corpus_run):
    _, _, before, after = corpus_run
    assert after == before


def test_no_stray_files_in_the_working_directory(corpus_run):
    corpus, _, _, _ = corpus_run
    assert list((corpus.root.parent / "cwd").iterdir()) == []


def test_external_entities_never_reach_any_output(corpus_run):
    corpus, run, _, _ = corpus_run
    passwd_line = Path(PASSWD).read_text().splitlines()[0] if Path(PASSWD).is_file() else "root:x:0:0"
    assert SECRET not in run["proc"].stdout and passwd_line not in run["proc"].stdout
    written = [p for p in (corpus.root.parent / "ws").rglob("*") if p.is_file()]
    written += [p for p in (corpus.root.parent / "out").rglob("*") if p.is_file()]
    assert len(written) > 20
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert passwd_line.encode() not in data, path


def test_summary_accounts_for_every_row(corpus_run):
    _, run, _, _ = corpus_run
    for layout, (ws, manifest) in run["results"].items():
        summary = json.loads((ws / "ingest" / "default" / "summary.json").read_text())
        assert sum(summary["status_counts"].values()) == len(manifest)
        assert len(summary["problems"]) == int((manifest["status"] != "ok").sum())


def test_audit_flags_every_bad_row_as_an_integrity_error(corpus_run):
    _, run, _, _ = corpus_run
    for layout, (ws, manifest) in run["results"].items():
        findings = pd.read_csv(ws / "audit" / "findings.csv")
        errors = set(findings.loc[(findings["check"] == "integrity") & (findings["severity"] == "error"), "image_id"])
        bad = set(manifest.loc[~manifest["status"].isin(["ok", "bad_name"]), "image_id"])
        assert bad and bad <= errors, (layout, sorted(bad - errors))
        assert (ws / "audit" / "report.html").stat().st_size > 1000


def test_export_takes_only_ok_rows_of_a_workspace_with_bad_rows(corpus_run):
    _, run, _, _ = corpus_run
    for (layout, target), summary in run["exports"].items():
        assert not isinstance(summary, Exception), (layout, target, summary)
        manifest = run["results"][layout][1]
        assert summary.n_images == int((manifest["status"] == "ok").sum()), (layout, target)
        assert summary.skipped["excluded_or_not_ok"] == int((manifest["status"] != "ok").sum())


def test_permission_denied_is_recorded_or_skipped_honestly(tmp_path):
    if not permission_denied_works():
        pytest.skip("running as root: chmod 000 does not deny reading, so an unreadable file cannot be made here")
    corpus = build(tmp_path / "c")
    ws = tmp_path / "ws"
    proc = run_cli("ingest", str(corpus.sources["phe-sich"]), "-l", "phe-sich", "-w", str(ws), "-j", "1",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_parquet(ws / "manifest.parquet").set_index("image_id")
    assert df.loc["0001_37", "status"] == "unreadable"
    assert "Permission denied" in df.loc["0001_37", "status_detail"]

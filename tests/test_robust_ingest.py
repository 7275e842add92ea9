"""The bad-input corpus (tests/bad_inputs/corpus.py) through `medsift ingest` for the phe-sich, folder and dicom
layouts, run as a subprocess with a timeout: every hostile file gets its recorded status, the run finishes,
the sources stay byte-identical and nothing is written outside the workspace."""

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


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory):
    """Build the corpus, snapshot it, ingest each layout through the CLI, snapshot again."""
    root = tmp_path_factory.mktemp("badcorpus")
    corpus = build(root / "c")
    cwd = root / "cwd"
    cwd.mkdir()
    ws_root = root / "ws"
    ws_root.mkdir()
    before = snapshot(root, skip=(ws_root,))
    results = {}
    for layout, src in corpus.sources.items():
        ws = ws_root / layout
        proc = run_cli("ingest", str(src), "--layout", layout, "--workspace", str(ws), "--jobs", "1", cwd=cwd)
        manifest = pd.read_parquet(ws / "manifest.parquet") if (ws / "manifest.parquet").is_file() else None
        results[layout] = (proc, ws, manifest)
    after = snapshot(root, skip=(ws_root,))
    return corpus, results, before, after


def test_every_layout_run_finishes_with_exit_0(corpus_run):
    _, results, _, _ = corpus_run
    for layout, (proc, _, manifest) in results.items():
        assert proc.returncode == 0, f"{layout}: {proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr
        assert manifest is not None


def _cases():
    # Built once at collection to name one test per bad input; the session fixture builds its own copy.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [pytest.param(e, id=f"{e.layout}:{e.image_id[:24]}") for e in build(Path(tmp)).entries]


@pytest.mark.parametrize("entry", _cases())
def test_each_bad_input_gets_its_recorded_status(corpus_run, entry):
    _, results, _, _ = corpus_run
    manifest = results[entry.layout][2].set_index("image_id")
    if entry.expected == ABSENT:
        assert entry.image_id not in manifest.index
        return
    assert manifest.loc[entry.image_id, "status"] == entry.expected, manifest.loc[entry.image_id, "status_detail"]
    if entry.expected != "ok":
        assert manifest.loc[entry.image_id, "status_detail"], "a problem row must say what was wrong"


def test_rows_are_exactly_the_corpus_entries(corpus_run):
    corpus, results, _, _ = corpus_run
    for layout, (_, _, manifest) in results.items():
        expected = sorted(e.image_id for e in corpus.of(layout) if e.expected != ABSENT)
        assert sorted(manifest["image_id"]) == expected
        assert manifest["image_id"].is_unique


def test_sources_and_everything_outside_the_workspace_are_unchanged(corpus_run):
    _, _, before, after = corpus_run
    assert after == before


def test_no_stray_files_in_the_working_directory(corpus_run):
    corpus, _, _, _ = corpus_run
    assert list((corpus.root.parent / "cwd").iterdir()) == []


def test_external_entities_never_reach_any_output(corpus_run):
    _, results, _, _ = corpus_run
    passwd_line = Path(PASSWD).read_text().splitlines()[0] if Path(PASSWD).is_file() else "root:x:0:0"
    for layout, (proc, ws, _) in results.items():
        assert SECRET not in proc.stdout and passwd_line not in proc.stdout
        for path in ws.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data, path
                assert passwd_line.encode() not in data, path


def test_summary_accounts_for_every_row(corpus_run):
    _, results, _, _ = corpus_run
    for layout, (_, ws, manifest) in results.items():
        summary = json.loads((ws / "ingest" / "default" / "summary.json").read_text())
        assert sum(summary["status_counts"].values()) == len(manifest)
        assert len(summary["problems"]) == int((manifest["status"] != "ok").sum())


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


@pytest.mark.parametrize("args, message", [
    (["ingest", "{src}", "-l", "folder", "-w", "{src}/ws"], "inside the source folder"),
])
def test_wrong_use_is_one_clear_line_exit_2(tmp_path, args, message):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "f.png").write_bytes(b"x")
    fill = {"missing": str(tmp_path / "missing"), "ws": str(tmp_path / "ws"), "src": str(src),
            "file": str(tmp_path / "f.png")}
    proc = run_cli(*[a.format(**fill) for a in args], cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert not (src / "ws").exists()

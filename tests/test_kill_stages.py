"""SIGKILL ingest, the slice-cache build and the audit at random points, rerun, and get exactly the result of an
uninterrupted run: same rows, nothing lost or duplicated, no half-written file trusted.

Each stage is killed twice in the same output folder before the rerun:

1. at a seeded-random write boundary: the child SIGKILLs itself just before its k-th ``os.replace`` /
   ``os.rename`` (the temp file is complete, the rename not done: the worst moment for an atomic write);
2. by this test, after a seeded-random delay within the stage's measured run time.

(Training kill/resume is covered by tests/test_engine_resume.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SEED = 20261123
TIMEOUT_S = 180

CHILD = r"""
import json, os, signal, sys
args = json.loads(sys.argv[1])
calls = [0]
def hooked(real):
    def call(*a, **k):
        calls[0] += 1
        if calls[0] == args["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **k)
    return call
os.replace, os.rename = hooked(os.replace), hooked(os.rename)
stage = args["stage"]
if stage == "ingest":
    from medsift.ingest import ingest
elif stage == "cache":
    import pandas as pd
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig
    df = pd.read_parquet(args["manifest"])
elif stage == "audit":
    from medsift.audit import run_audit, write_audit
    from medsift.workspace import Workspace
print("READY", flush=True)
if stage == "ingest":
    ingest(args["src"], layout="phe-sich", workspace=args["out"], n_jobs=1)
elif stage == "cache":
    build_cache(df, args["out"], PreprocessConfig(size=32, windows=("brain", "subdural")), n_jobs=1,
                progress=False, force=args["force"])
elif stage == "audit":
    ws = Workspace.at(args["out"])
    write_audit(run_audit(ws.read(), workspace=ws.root, learned=False, n_jobs=1), ws.root, report=False)
print("CALLS", calls[0], flush=True)
"""


def _child(args: dict, *, kill_after: float | None = None) -> int:
    """Run one stage in a subprocess; SIGKILL it ``kill_after`` seconds after it is ready. Returns the exit code."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()[-2000:]
        if kill_after is not None:
            time.sleep(kill_after)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode


def _count_writes(monkeypatch, fn) -> tuple[int, float]:
    """Run ``fn`` in-process counting its os.replace/os.rename calls; returns ``(calls, seconds)``."""
    calls = [0]
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def counted(*a, _real=real, **k):
            calls[0] += 1
            return _real(*a, **k)

        monkeypatch.setattr(os, name, counted)
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    monkeypatch.undo()
    return calls[0], seconds


def _kill_twice(stage: str, args: dict, n_writes: int, seconds: float, rng: np.random.Generator) -> list[int]:
    k = int(rng.integers(1, n_writes + 1))
    codes = [_child({**args, "stage": stage, "kill_at": k})]
    codes.append(_child({**args, "stage": stage, "kill_at": None},
                        kill_after=float(rng.uniform(0.05, 1.0)) * max(seconds, 0.2)))
    return codes


def _visible(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from medsift.synth.testing import tiny_dataset

    return tiny_dataset(tmp_path_factory.mktemp("kill_synth"))


@pytest.fixture(scope="module")
def reference(synth, tmp_path_factory):
    """Uninterrupted ingest (then cache and audit of it), in-process, with write counts and durations."""
    from medsift.audit import run_audit, write_audit
    from medsift.ingest import ingest
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig

    root = tmp_path_factory.mktemp("kill_ref")
    mp = pytest.MonkeyPatch()
    ws = root / "ws"
    n_ingest, t_ingest = _count_writes(mp, lambda: ingest(synth.phe_sich, layout="phe-sich", workspace=ws, n_jobs=1))
    df = pd.read_parquet(ws / "manifest.parquet")
    df = df[df["status"] == "ok"].reset_index(drop=True)
    df.to_parquet(root / "ok_rows.parquet")
    cfg = PreprocessConfig(size=32, windows=("brain", "subdural"))
    n_cache, t_cache = _count_writes(mp, lambda: build_cache(df, root / "cache", cfg, n_jobs=1, progress=False))
    audit_ws = root / "audit_ws"
    shutil.copytree(ws, audit_ws)

    def audit():
        from medsift.workspace import Workspace

        w = Workspace.at(audit_ws)
        write_audit(run_audit(w.read(), workspace=w.root, learned=False, n_jobs=1), w.root, report=False)

    n_audit, t_audit = _count_writes(mp, audit)
    return {"root": root, "ws": ws, "ok_rows": root / "ok_rows.parquet", "cache": root / "cache",
            "audit_ws": audit_ws, "writes": {"ingest": n_ingest, "cache": n_cache, "audit": n_audit},
            "seconds": {"ingest": t_ingest, "cache": t_cache, "audit": t_audit}}


def test_killed_ingest_reruns_to_the_same_manifest(synth, reference, tmp_path):
    from medsift.ingest import ingest
    from medsift.workspace import Workspace

    ws = tmp_path / "ws"
    rng = np.random.default_rng(SEED)
    codes = _kill_twice("ingest", {"src": str(synth.phe_sich), "out": str(ws)}, reference["writes"]["ingest"],
                        reference["seconds"]["ingest"], rng)
    assert codes[0] == -signal.SIGKILL
    ingest(synth.phe_sich, layout="phe-sich", workspace=ws, n_jobs=1)
    got = pd.read_parquet(ws / "manifest.parquet").sort_values("image_id").reset_index(drop=True)
    want = pd.read_parquet(reference["ws"] / "manifest.parquet").sort_values("image_id").reset_index(drop=True)
    assert got["image_id"].is_unique
    pd.testing.assert_frame_equal(got, want)
    w = Workspace.at(ws)
    last = w.versions()[-1]["version"]
    pd.testing.assert_frame_equal(w.read_version(last).sort_values("image_id").reset_index(drop=True),
                                  w.read().sort_values("image_id").reset_index(drop=True))
    assert _visible(ws) - {p for p in _visible(ws) if p.startswith("versions/v")} == \
        _visible(reference["ws"]) - {p for p in _visible(reference["ws"]) if p.startswith("versions/v")}
    for name in ("unpaired_annotations.csv",):
        assert (ws / "ingest/default" / name).read_bytes() == (reference["ws"] / "ingest/default" / name).read_bytes()


def _cache_arrays(path: Path) -> dict:
    from medsift.preprocess.cache import SliceCache

    c = SliceCache(path)
    return {"images": np.asarray(c.images), "masks": np.asarray(c.masks), "index": c.index,
            "fingerprint": c.fingerprint, "ids": list(c.image_ids)}


@pytest.mark.parametrize("force", [False, True], ids=["first-build", "rebuild"])
def test_killed_cache_build_reruns_to_the_same_cache(reference, tmp_path, force):
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig

    out = tmp_path / "cache"
    if force:  # a complete older cache is there: the kill may land while it is being swapped out
        shutil.copytree(reference["cache"], out)
    rng = np.random.default_rng(SEED + int(force))
    codes = _kill_twice("cache", {"manifest": str(reference["ok_rows"]), "out": str(out), "force": force},
                        reference["writes"]["cache"] + int(force), reference["seconds"]["cache"], rng)
    assert codes[0] == -signal.SIGKILL
    df = pd.read_parquet(reference["ok_rows"])
    build_cache(df, out, PreprocessConfig(size=32, windows=("brain", "subdural")), n_jobs=1, progress=False)
    got, want = _cache_arrays(out), _cache_arrays(reference["cache"])
    assert got["ids"] == want["ids"] and len(set(got["ids"])) == len(got["ids"])
    assert got["fingerprint"] == want["fingerprint"]
    np.testing.assert_array_equal(got["images"], want["images"])
    np.testing.assert_array_equal(got["masks"], want["masks"])
    pd.testing.assert_frame_equal(got["index"], want["index"])
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cache."))
    assert leftovers == [], "temp folders of killed builds must be cleaned up by the next build"


def test_killed_audit_reruns_to_the_same_findings(reference, tmp_path):
    from medsift.audit import run_audit, write_audit
    from medsift.workspace import Workspace

    ws = tmp_path / "ws"
    shutil.copytree(reference["ws"], ws)
    rng = np.random.default_rng(SEED + 7)
    codes = _kill_twice("audit", {"out": str(ws)}, reference["writes"]["audit"], reference["seconds"]["audit"], rng)
    assert codes[0] == -signal.SIGKILL
    w = Workspace.at(ws)
    write_audit(run_audit(w.read(), workspace=w.root, learned=False, n_jobs=1), w.root, report=False)
    want_root = reference["audit_ws"] / "audit"
    got = pd.read_csv(ws / "audit" / "findings.csv")
    want = pd.read_csv(want_root / "findings.csv")
    assert not got.duplicated().any()
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(pd.read_parquet(ws / "audit" / "scores.parquet"),
                                  pd.read_parquet(want_root / "scores.parquet"))
    assert json.loads((ws / "audit" / "summary.json").read_text()) == json.loads((want_root / "summary.json").read_text())
    assert _visible(ws / "audit") == _visible(want_root)

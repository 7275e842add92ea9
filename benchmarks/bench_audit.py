"""Audit benchmarks: full audit of the real PHE-SICH subset without the learned detectors (target < 60 s on
2 cores), near-duplicate hash search over 100,000 hashes (target < 10 s), learned orientation/inversion detectors
trained and applied to the real set (target < 10 min on CPU), and precision/recall on phantoms.

Run: ``python benchmarks/bench_audit.py`` (or through ``benchmarks/run.py --only audit``).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "phe-sich-ct-ids"


def _hash_search(n: int = 100_000, *, max_dist: int = 8, seed: int = 0) -> tuple[float, int, int]:
    """Seconds to find all pairs within ``max_dist`` bits among ``n`` hashes with 1,000 planted near copies."""
    from medsift.audit.hamming import pairs_within

    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + \
        rng.integers(0, 2, n).astype(np.uint64)
    src, dst = rng.choice(n, 1000, replace=False), rng.choice(n, 1000, replace=False)
    for s, d in zip(src, dst):
        flip = np.uint64(0)
        for b in rng.choice(64, int(rng.integers(0, max_dist + 1)), replace=False):
            flip |= np.uint64(1) << np.uint64(int(b))
        h[d] = h[s] ^ flip
    t0 = time.perf_counter()
    i, _, _ = pairs_within(h, max_dist)
    return time.perf_counter() - t0, len(i), 1000


def _ingest_real(root: Path):
    from medsift.ingest import ingest
    from medsift.workspace import Workspace

    ws = Workspace.at(root / "ws_real")
    ingest(REAL, layout="phe-sich", workspace=ws.root, source="phe-sich", n_jobs=2)
    return ws


def _synthetic_pr(root: Path) -> list[dict]:
    from medsift.audit import evaluate_against_truth, run_audit
    from medsift.ingest import ingest
    from medsift.synth import generate
    from medsift.workspace import Workspace

    ds = generate(root / "synth", n_patients=12, seed=1, size=128, layouts=["phe-sich"])
    ws = Workspace.at(root / "ws_synth")
    ingest(ds.phe_sich, layout="phe-sich", workspace=ws.root, source="synth", n_jobs=2)
    res = run_audit(ws.read(), workspace=ws.root, n_jobs=2)
    return evaluate_against_truth(res.findings, ds.truth_defects).to_dict("records")


def run(*, repeats: int = 1) -> dict:
    from medsift.audit import run_audit, write_audit

    rows = []
    times = [_hash_search()[0] for _ in range(max(repeats, 1))]
    _, n_pairs, planted = _hash_search()
    rows.append({"metric": "near-duplicate hash search, 100,000 x 64-bit hashes, <= 8 bits", "value": statistics.median(times),
                 "unit": "s", "target": "< 10 s", "runs": times})
    rows.append({"metric": "pairs found (1,000 planted near copies)", "value": n_pairs, "unit": "pairs", "target": ">= 1000"})
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if REAL.is_dir():
            ws = _ingest_real(tmp)
            df = ws.read()
            fast = []
            for _ in range(max(repeats, 1)):
                t0 = time.perf_counter()
                res = run_audit(df, workspace=ws.root, learned=False, n_jobs=2)
                fast.append(time.perf_counter() - t0)
            rows.append({"metric": f"full audit without learned detectors, {len(df)} real slices, 2 jobs",
                         "value": statistics.median(fast), "unit": "s", "target": "< 60 s", "runs": fast})
            from medsift.audit.orientation import detector

            t0 = time.perf_counter()
            out = detector(res.context)
            learned = time.perf_counter() - t0
            rows.append({"metric": f"learned orientation/inversion detectors: train (2 folds) + apply, {len(df)} slices",
                         "value": learned, "unit": "s", "target": "< 600 s"})
            t0 = time.perf_counter()
            full = run_audit(df, workspace=ws.root, learned=True, n_jobs=2)
            write_audit(full, ws.root)
            rows.append({"metric": "full audit with learned detectors + report", "value": time.perf_counter() - t0,
                         "unit": "s", "target": "-"})
            for name, s in full.summary["checks"].items():
                rows.append({"metric": f"real set: images flagged by {name}", "value": s["n_issues"], "unit": "images",
                             "target": "-"})
            del out
        else:
            notes.append(f"real data absent at {REAL}: real-set rows skipped")
        pr = _synthetic_pr(tmp)
        for r in pr:
            rows.append({"metric": f"phantoms (12 patients): {r['defect']} precision / recall (n={r['n']})",
                         "value": f"{r['precision']:.2f} / {r['recall']:.2f}", "unit": "", "target": ">= 0.95 / 0.95"})
    return {"title": "Audit", "command": "python benchmarks/bench_audit.py", "data": "PHE-SICH-CT-IDS 83-patient subset; phantoms",
            "rows": rows, "notes": "; ".join(notes)}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    print(json.dumps(run(repeats=1), indent=1, default=str))

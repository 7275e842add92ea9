"""Peak memory (RSS) of ingest, audit and a training run, and of an audit of 100,000 synthetic slices.

Each stage runs in a fresh subprocess; a sampler sums the RSS of that process and all its children (joblib
workers) every 50 ms with psutil, and the peak of that sum is reported (a tree total, so it is an upper
bound of what the machine needed at once). The child's own ``ru_maxrss`` is reported too.

Stages:

* ``ingest``: the real PHE-SICH folder (2,395 slices) when present in ../shared/data, else a phantom set.
* ``audit``: ``run_audit(..., learned=False)`` + ``write_audit`` on that workspace (all fast checks + report).
* ``train``: a phantom classification run (tiny phantom set, 64 px, 2 epochs) through ``train_run``.
* ``audit_100k``: 100,000 synthetic 64x64 PNG slices (1,000 patients x 100 slices, unique pixels) written to
  a temp folder with a manifest, then the same audit. Target: peak below 4 GiB.

Run: ``python benchmarks/bench_memory.py [--slices N]`` or ``python benchmarks/run.py --only memory``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "phe-sich-ct-ids"
GIB = 2**30
TARGET_100K_BYTES = 4 * GIB

CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])
stage = args["stage"]
t0 = time.perf_counter()
if stage == "ingest":
    from medsift.ingest import ingest
    ingest(args["src"], layout=args["layout"], workspace=args["ws"], n_jobs=2)
elif stage == "audit":
    from medsift.audit import run_audit, write_audit
    from medsift.workspace import Workspace
    ws = Workspace.at(args["ws"])
    result = run_audit(ws.read(), workspace=ws.root, learned=False, n_jobs=2)
    write_audit(result, ws.root, report=True)
elif stage == "train":
    from medsift.engine.config import TrainConfig, apply_overrides
    from medsift.engine.runner import train_run
    config = apply_overrides(TrainConfig(task="classify"), args["overrides"])
    train_run(args["ws"], args["out"], config, show_progress=False)
elif stage == "make_100k":
    sys.path.insert(0, args["bench_dir"])
    from bench_memory import write_synthetic_slices
    write_synthetic_slices(args["root"], args["ws"], n=args["n"])
seconds = time.perf_counter() - t0
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print("RESULT " + json.dumps({"seconds": seconds, "self_maxrss": own, "children_maxrss": kids}), flush=True)
"""

TRAIN_OVERRIDES = ["model.arch=resnet_small", "model.width=8", "preprocess.size=64", "batch_size=16", "epochs=2",
                   "threads=2", "num_workers=0", "augment=light", "patience=0", "bootstrap=0"]


def measure(args: dict, *, timeout: float = 3600) -> dict:
    """Run one stage in a subprocess; return its seconds, peak tree RSS (bytes) and the child's ru_maxrss.

    Without psutil (it comes with the ``dask`` extra) the tree peak falls back to the child's own ru_maxrss plus
    that of its finished children (``peak_source`` says which)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    ps = psutil.Process(proc.pid) if psutil is not None else None
    peak, t0 = 0, time.perf_counter()
    while ps is not None and proc.poll() is None:
        total = 0
        try:
            for p in [ps] + ps.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except psutil.NoSuchProcess:
            break
        peak = max(peak, total)
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"stage {args['stage']} failed (exit {proc.returncode}): {err[-2000:]}")
    res = json.loads(line[-1][7:])
    res["peak_tree_rss"] = peak if ps is not None else res["self_maxrss"] + res["children_maxrss"]
    res["peak_source"] = "psutil tree sampling" if ps is not None else "ru_maxrss self + children"
    return res


def write_synthetic_slices(root: str | Path, ws: str | Path, *, n: int = 100_000, size: int = 64,
                           per_patient: int = 100, seed: int = 0) -> None:
    """Write ``n`` unique 8-bit ``size x size`` PNG slices (a head-like disc, a slice-dependent lesion and noise)
    under ``root`` and a workspace manifest at ``ws`` listing them (status ok, labels 0/1)."""
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    from medsift.manifest import new_manifest
    from medsift.workspace import Workspace

    root = Path(root)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    rows = []
    for k in range(n):
        patient, index = divmod(k, per_patient)
        folder = root / f"p{patient:04d}"
        if index == 0:
            folder.mkdir(parents=True, exist_ok=True)
        # every slice its own head outline and 3-6 structures, so perceptual hashes differ as in real scans
        cy, cx = size / 2 + rng.uniform(-6, 6, 2)
        ay, ax = size * rng.uniform(0.3, 0.46), size * rng.uniform(0.26, 0.42)
        img = np.where(((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1, 80.0, 0.0)
        for _ in range(int(rng.integers(3, 7))):
            by, bx, r = rng.uniform(8, size - 8, 2).tolist() + [rng.uniform(2, 10)]
            img[(yy - by) ** 2 + (xx - bx) ** 2 <= r * r] = rng.uniform(20, 250)
        img += rng.normal(0, 6, (size, size))
        lesion = (k * 7919) % 5 == 0
        if lesion:
            ly, lx = 16 + index % 32, 20 + patient % 24
            img[ly:ly + 6, lx:lx + 6] = 230
        buf = io.BytesIO()
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
        path = folder / f"{patient:04d}_{index:03d}.png"
        path.write_bytes(data)
        rows.append({"image_id": f"{patient:04d}_{index:03d}", "patient_id": f"{patient:04d}",
                     "study_id": f"{patient:04d}", "series_id": f"{patient:04d}", "slice_index": index,
                     "image_path": str(path), "format": "png", "width": size, "height": size, "has_hu": False,
                     "label_hemorrhage": int(lesion), "label_source": "synthetic",
                     "content_hash": hashlib.sha256(data).hexdigest(), "status": "ok"})
    Workspace.at(ws).write(new_manifest(rows), reason=f"bench_memory: {n} synthetic slices")


def _phantom_workspace(root: Path) -> tuple[Path, str, str]:
    from medsift.synth.testing import tiny_dataset

    ds = tiny_dataset(root / "synth")
    return ds.phe_sich, "phe-sich", "phantom tiny set (3 patients, 128 px)"


def _split(ws: Path) -> None:
    from medsift.split import assign_splits
    from medsift.workspace import Workspace

    w = Workspace.at(ws)
    w.write(assign_splits(w.read(), test=0.25, val=0.25, folds=0, seed=0), reason="bench_memory split")


def _row(metric: str, res: dict, *, target: str = "") -> dict:
    return {"metric": metric, "value": round(res["peak_tree_rss"] / 2**20, 1), "unit": "MiB", "target": target,
            "runs": [round(res["peak_tree_rss"] / 2**20, 1)],
            "detail": {"seconds": round(res["seconds"], 1), "self_maxrss_mib": round(res["self_maxrss"] / 2**20, 1),
                       "children_maxrss_mib": round(res["children_maxrss"] / 2**20, 1)}}


def run(*, repeats: int = 1, slices: int = 100_000) -> dict:
    """Peak RSS of each stage (one run each; ``repeats`` is accepted for the runner and ignored: memory peaks
    of deterministic runs do not vary like timings)."""
    root = Path(tempfile.mkdtemp(prefix="medsift-bench-memory-"))
    rows, notes = [], []
    try:
        if REAL.is_dir():
            src, layout, data = REAL, "phe-sich", f"real PHE-SICH ({REAL})"
        else:
            src, layout, data = _phantom_workspace(root)
        ws = root / "ws"
        res = measure({"stage": "ingest", "src": str(src), "layout": layout, "ws": str(ws)})
        rows.append(_row(f"ingest peak RSS ({data.split(' (')[0]})", res))
        res = measure({"stage": "audit", "ws": str(ws)})
        rows.append(_row("audit peak RSS (no learned detectors, with report)", res))

        psrc, players, _ = _phantom_workspace(root / "train")
        tws = root / "train_ws"
        from medsift.ingest import ingest

        ingest(psrc, layout=players, workspace=tws, n_jobs=1)
        _split(tws)
        res = measure({"stage": "train", "ws": str(tws), "out": str(root / "run"), "overrides": TRAIN_OVERRIDES})
        rows.append(_row("training peak RSS (phantoms, 64 px, resnet_small w8, 2 epochs)", res))

        if slices:
            big = root / "ws_100k"
            made = measure({"stage": "make_100k", "root": str(root / "slices"), "ws": str(big), "n": slices,
                            "bench_dir": str(Path(__file__).resolve().parent)})
            notes.append(f"{slices} synthetic slices written in {made['seconds']:.0f} s")
            res = measure({"stage": "audit", "ws": str(big)})
            rows.append(_row(f"audit of {slices:,} synthetic 64 px slices: peak RSS", res,
                             target=f"< {TARGET_100K_BYTES / 2**20:.0f} MiB (4 GiB)"))
            notes.append(f"audit of {slices} slices took {res['seconds']:.0f} s; peak "
                         f"{res['peak_tree_rss'] / GIB:.2f} GiB "
                         f"({'within' if res['peak_tree_rss'] < TARGET_100K_BYTES else 'OVER'} the 4 GiB target)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"title": "Peak memory (RSS)", "command": "python benchmarks/bench_memory.py",
            "data": "real PHE-SICH when present; phantoms; synthetic slices",
            "rows": rows,
            "notes": "Peak of the summed RSS of the stage's process tree (psutil, 50 ms sampling). " + "; ".join(notes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=100_000, help="synthetic slices for the big audit (0 = skip)")
    args = parser.parse_args()
    print(json.dumps(run(slices=args.slices), indent=1))


if __name__ == "__main__":
    main()

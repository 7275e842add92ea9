"""Hemorrhage box detection on the real PHE-SICH subset, trained on CPU: designs compared on the same split.

Usage::

    nice python benchmarks/bench_detect.py --workspace WS --designs centernet seg2box fcos --minutes 10
    python benchmarks/bench_detect.py --runs RUN [RUN ...]     # only read finished runs (train + evaluate done)
    python benchmarks/run.py --only detect

Steps: ingest PHE-SICH into a temporary workspace (or ``--workspace``), patient-level split (test 20% of
patients, val 10%, seed 0), cache at ``--size`` px (brain window), then for each design train the ``detect`` task
through the engine for at most ``--minutes`` (1 torch thread: on a shared 2-core machine two threads ran 3-10x
slower), calibrate the image threshold on val (image recall >= 0.95), evaluate on the held-out test patients.
Reported per design: mAP@0.5, mAP@0.5:0.95, FROC at 1 FP/image, image-level recall / specificity at the val
threshold, training minutes, epochs, training images/s, evaluation images/s.

Targets (issue): mAP@0.5 >= 0.80 and image-level hemorrhage recall >= 0.95 on held-out patients after <= 90 min of
CPU training.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "phe-sich-ct-ids"
MINUTES = 10.0
SIZE = 128


def design_config(design: str, *, size: int = SIZE, minutes: float = MINUTES, epochs: int = 6,
                  steps_per_epoch: int | None = None):
    """The TrainConfig of one design (``centernet``, ``seg2box``, ``fcos``, ``retinanet``, ``fasterrcnn``): the
    recipe ``ct-detect`` (what `medsift train WS --config ct-detect` runs) with this benchmark's design, size,
    epochs and budget, on 1 CPU thread."""
    from medsift.engine.config import apply_overrides, load_config

    return apply_overrides(load_config("ct-detect"), [
        f"model.arch={design}", f"preprocess.size={size}", f"epochs={epochs}", f"max_minutes={minutes}",
        f"max_steps_per_epoch={'null' if steps_per_epoch is None else steps_per_epoch}", "device=cpu", "threads=1"])


def prepare_workspace(path: Path | None) -> Path:
    """A split PHE-SICH workspace (the given one, or a new one in a temporary folder)."""
    if path is not None:
        return path
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.workspace import Workspace

    ws_path = Path(tempfile.mkdtemp(prefix="bench-detect-")) / "ws"
    ingest(DATA, layout="phe-sich", workspace=ws_path)
    ws = Workspace.at(ws_path)
    ws.write(assign_splits(ws.read(), test=0.2, val=0.1, seed=0), reason="bench split")
    return ws_path


def read_run(run: Path) -> dict:
    """Figures of a finished run folder (``model.json``, ``history.csv``, ``eval/*-test/metrics.json``)."""
    import pandas as pd

    meta = json.loads((run / "model.json").read_text())
    hist = pd.read_csv(run / "history.csv")
    evals = sorted((run / "eval").glob("*-test/metrics.json"))
    metrics = json.loads(evals[-1].read_text()) if evals else {}
    timing = json.loads((run / "bench_timing.json").read_text()) if (run / "bench_timing.json").is_file() else {}
    return {"design": meta["state"]["detect"]["model"], "run": str(run), "train_minutes": meta["train_seconds"] / 60,
            "epochs": int(meta["epochs_run"]), "best_epoch": int(meta["best_epoch"]),
            "train_images_per_s": float(hist["train_images_per_s"].mean()),
            "eval_images_per_s": timing.get("eval_images_per_s"), "threshold": meta["calibration"]["threshold"],
            "val_map50": meta["val"].get("map50"), **{k: metrics.get(k) for k in (
                "map50", "map50_95", "froc_1fp", "image_recall", "image_specificity", "image_precision",
                "n_images", "n_patients")}}


def train_and_evaluate(ws: Path, out: Path, design: str, *, minutes: float, size: int = SIZE, epochs: int = 6,
                       steps_per_epoch: int | None = None) -> dict:
    """Train one design into ``out``, evaluate it on the test split, return :func:`read_run`."""
    from medsift.engine.runner import evaluate_run, train_run

    cfg = design_config(design, size=size, minutes=minutes, epochs=epochs, steps_per_epoch=steps_per_epoch)
    train_run(ws, out, cfg, show_progress=False, log=print)
    t0 = time.perf_counter()
    metrics, _ = evaluate_run(out, ws, split="test", device="cpu")
    rate = metrics["n_images"] / (time.perf_counter() - t0)
    (out / "bench_timing.json").write_text(json.dumps({"eval_images_per_s": rate}))
    return read_run(out)


def _rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        d = r["design"]
        for key, unit, target in (("map50", "", ">= 0.80"), ("map50_95", "", ""), ("froc_1fp", "", ""),
                                  ("image_recall", "", ">= 0.95"), ("image_specificity", "", ""),
                                  ("train_minutes", "min", "<= 90"), ("epochs", "", ""),
                                  ("train_images_per_s", "img/s", ""), ("eval_images_per_s", "img/s", "")):
            v = r.get(key)
            rows.append({"metric": f"{d}: {key}", "value": float(v) if v is not None else "n/a", "unit": unit,
                         "target": target, "runs": [float(v)] if v is not None else []})
    return rows


def run(*, repeats: int = 1, workspace: Path | None = None, designs=("centernet", "seg2box", "fcos"),
        minutes: float = MINUTES, out_root: Path | None = None) -> dict:
    """Benchmark entry point of ``benchmarks/run.py`` (``repeats`` is ignored: one training run per design)."""
    ws = prepare_workspace(workspace)
    root = out_root or Path(tempfile.mkdtemp(prefix="bench-detect-runs-"))
    results = [train_and_evaluate(ws, root / f"run-{d}", d, minutes=minutes) for d in designs]
    return {"title": "Detection (PHE-SICH hemorrhage boxes, CPU)",
            "command": f"python benchmarks/bench_detect.py --designs {' '.join(designs)} --minutes {minutes}",
            "data": f"{DATA.name}: held-out test patients (20%), {SIZE} px", "rows": _rows(results),
            "notes": "1 torch thread, batch 16, AdamW 2e-3 one-cycle, light box-aware augmentation, balanced "
                     "sampler; image threshold chosen on val for image recall >= 0.95."}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path, default=None)
    p.add_argument("--designs", nargs="+", default=["centernet", "seg2box", "fcos"])
    p.add_argument("--minutes", type=float, default=MINUTES)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--size", type=int, default=SIZE)
    p.add_argument("--out", type=Path, default=None, help="folder for the run folders (default: a temp folder)")
    p.add_argument("--runs", nargs="+", type=Path, default=None, help="only summarise finished runs")
    p.add_argument("--results", type=Path, default=None,
                   help="also write the figures as benchmarks/run.py JSON (e.g. benchmarks/results/detect.json)")
    p.add_argument("--notes", default="", help="text added to the notes of --results (machine load...)")
    a = p.parse_args()
    if a.runs:
        results = [read_run(r) for r in a.runs]
    else:
        ws = prepare_workspace(a.workspace)
        root = a.out or Path(tempfile.mkdtemp(prefix="bench-detect-runs-"))
        results = [train_and_evaluate(ws, root / f"run-{d}", d, minutes=a.minutes, size=a.size, epochs=a.epochs,
                                      steps_per_epoch=a.steps_per_epoch) for d in a.designs]
    for r in results:
        print(json.dumps(r))
    if a.results:
        doc = {"title": "Detection (PHE-SICH hemorrhage boxes, CPU)",
               "command": "nice python benchmarks/bench_detect.py " + " ".join(
                   f"--runs {' '.join(map(str, a.runs))}".split() if a.runs else
                   ["--designs", *a.designs, "--minutes", str(a.minutes), "--epochs", str(a.epochs)]),
               "data": f"{DATA.name}: 2395 slices / 83 patients; held-out test patients (20%), {a.size} px",
               "rows": _rows(results),
               "notes": "1 torch thread, batch 16, AdamW 2e-3 one-cycle annealed within the time budget, light "
                        "box-exact augmentation, balanced sampler; image threshold chosen on val for image "
                        "recall >= 0.95. " + a.notes}
        a.results.parent.mkdir(parents=True, exist_ok=True)
        a.results.write_text(json.dumps(doc, indent=1, default=float))


if __name__ == "__main__":
    main()

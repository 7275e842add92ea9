"""The demo pipeline: phantoms -> every stage, each step run through the real CLI verb and announced with
the command a person would type, so the demo doubles as a tutorial.

Steps run in order; a step that fails stops the demo with its error (the demo is also a smoke test).
"""

from __future__ import annotations

import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.console import Console

console = Console()


@dataclass(frozen=True)
class Step:
    """One demo step: a title and either CLI arguments for `medsift` or a Python callable."""

    title: str
    argv: tuple[str, ...] = ()
    call: Callable[[], None] | None = None


def _run_cli(argv: tuple[str, ...]) -> None:
    from medsift.cli import app

    app(list(argv), standalone_mode=False)


# Small, fast settings so every model trains in well under a minute on 2 CPU cores.
_SMALL = ("--set", "model.arch=resnet_small", "--set", "model.width=16", "--set", "preprocess.size=128",
          "--set", "preprocess.context=1", "--set", "num_workers=0", "--set", "bootstrap=200")


# The labelled-folder PNGs were exported with mixed windows (as RSNA's): map them back to one brain window. About
# 36 optimisation steps on 8 patients: augmentation only slows learning this short (3 training seeds, macro AUC
# 0.55 with default augmentation, 0.68 without; 0.63 default + rewindow).
_SUBTYPES = ("--set", "preprocess.rewindow_8bit=true", "--set", "augment=none")


def _audit_vs_truth(ws: Path, truth: Path) -> None:
    """Print the audit's precision/recall per injected defect kind (the phantoms know the truth)."""
    import pandas as pd
    from rich.table import Table

    from medsift.audit import evaluate_against_truth

    table = evaluate_against_truth(pd.read_csv(ws / "audit" / "findings.csv", dtype={"image_id": str}), truth)
    out = Table(*[str(c) for c in table.columns], title="audit vs injected defects (ground truth)")
    for rec in table.itertuples(index=False):
        out.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in rec])
    console.print(out)


def _predict_dicom(run: Path, dicom: Path, n: int = 4) -> None:
    """``medsift predict RUN`` on the middle ``n`` slices of the first DICOM series of the phantoms."""
    series = sorted({p.parent for p in dicom.rglob("*.dcm")})[0]
    files = sorted(series.glob("*.dcm"))
    middle = files[max(len(files) // 2 - n // 2, 0):][:n]
    argv = ("predict", str(run), *map(str, middle))
    console.print(f"[dim]$ medsift {shlex.join(argv)}[/]")
    _run_cli(argv)


def _predict_nifti(run: Path, nifti: Path, out: Path) -> None:
    """``medsift predict RUN SCAN --out OUT`` on the first phantom NIfTI scan that reads (the phantoms carry
    defects, unreadable files among them)."""
    from medsift.errors import MedsiftError
    from medsift.io.nifti import load_volume

    def readable(path: Path) -> bool:
        try:
            load_volume(str(path))
        except (MedsiftError, OSError):
            return False
        return True

    scan = next(p for p in sorted(nifti.rglob("*.nii.gz")) if not p.name.endswith("_label.nii.gz") and readable(p))
    argv = ("predict", str(run), str(scan), "--out", str(out))
    console.print(f"[dim]$ medsift {shlex.join(argv)}[/]")
    _run_cli(argv)


def _steps(root: Path, *, patients: int, seed: int) -> list[Step]:
    data, ws, sub, dcm = root / "phantoms", root / "ws", root / "ws-subtypes", root / "ws-dicom"
    runs = ws / "runs"
    return [
        Step("Generate synthetic head-CT phantoms (PHE-SICH, DICOM, NIfTI and labelled-folder layouts, with defects)",
             ("synth", "--patients", str(patients), "--seed", str(seed), "--size", "256", "--out", str(data))),
        Step("Ingest the PHE-SICH-like layout (PNG + VOC boxes + edema masks)",
             ("ingest", str(data / "phe-sich"), "--layout", "phe-sich", "--workspace", str(ws))),
        Step("Ingest a DICOM series tree, its layout guessed from the files' content (HU from "
             "RescaleSlope/Intercept, sorted by position)",
             ("ingest", str(data / "dicom"), "--workspace", str(dcm))),
        Step("Ingest a folder of PNGs with a subtype labels CSV (RSNA-like) for the multi-label task",
             ("ingest", str(data / "folder" / "images"), "--layout", "folder", "--labels",
              str(data / "folder" / "labels.csv"), "--workspace", str(sub))),
        Step("Audit: integrity, pairing, labels, duplicates, sequence, orientation/inversion (self-supervised CNN)",
             ("audit", str(ws))),
        Step("Score the audit against the defects the phantom generator injected",
             call=lambda: _audit_vs_truth(ws, data / "truth" / "defects.csv")),
        Step("Clean: exclude error-level findings in a new manifest version (sources untouched)",
             ("clean", str(ws), "--severity", "error")),
        Step("Split by patient, stratified, with folds and a leakage check (audit duplicates kept together)",
             ("split", str(ws), "--test", "0.25", "--val", "0.2", "--folds", "3", "--seed", str(seed))),
        Step("Split the subtype workspace by patient",
             ("split", str(sub), "--test", "0.25", "--val", "0.2", "--folds", "0", "--seed", str(seed))),
        Step("Preview what the detector will see: image, mask and boxes augmented together",
             ("augment-preview", str(ws), "--n", "12", "--task", "detect", "--out", str(root / "augment-preview.png"))),
        Step("Export to COCO (boxes + RLE masks)", ("export", str(ws), "--to", "coco", "--out", str(root / "export" / "coco"))),
        Step("Export to nnU-Net v2 raw (with patient-level splits_final.json)",
             ("export", str(ws), "--to", "nnunet", "--out", str(root / "export" / "nnunet"))),
        Step("Train task 1: hemorrhage vs none per slice",
             ("train", str(ws), "--task", "classify", "--out", str(runs / "classify"), "--epochs", "12", *_SMALL)),
        Step("Evaluate on held-out patients (bootstrap CIs by patient, ROC/PR, confusion matrix, Grad-CAM)",
             ("evaluate", str(runs / "classify"), "--workspace", str(ws), "--split", "test")),
        Step("Predict on four DICOM slices with the task-1 model: it learnt on 8-bit PNG exports, so the input check "
             "warns that slices in HU reach it in another contrast",
             call=lambda: _predict_dicom(runs / "classify", data / "dicom")),
        Step("Self-supervised pretraining (SimCLR) on the training patients' slices: no labels used",
             ("pretrain", str(ws), "--out", str(runs / "simclr"), "--epochs", "3", *_SMALL)),
        Step("Train a second task-1 model, started from the self-supervised encoder (another seed), to vote with "
             "the first",
             ("train", str(ws), "--task", "classify", "--out", str(runs / "classify-seed1"), "--epochs", "12",
              "--set", "seed=1", "--set", f"model.pretrained={runs / 'simclr' / 'best.pt'}", *_SMALL)),
        Step("Ensemble: two more seeds trained side by side (a process per core), soft-voted with the two models; "
             "threshold re-chosen on validation patients, CIs by patient",
             ("ensemble", str(ws), "--run", str(runs / "classify"), "--run", str(runs / "classify-seed1"),
              "--seeds", "2", "--jobs", "2", "--epochs", "12", "--set", "seed=2", *_SMALL,
              "--out", str(runs / "ensemble"), "--bootstrap", "200")),
        Step("Train task 4: multi-label subtypes (IVH/IPH/SAH/EDH/SDH, sigmoid + BCE), each slice cropped to the "
             "square around its head as in the ct-multilabel recipe",
             ("train", str(sub), "--task", "multilabel", "--out", str(sub / "runs" / "multilabel"), "--epochs", "12",
              *_SMALL, *_SUBTYPES, "--set", "preprocess.crop_head=true")),
        Step("Evaluate the subtype model on held-out patients",
             ("evaluate", str(sub / "runs" / "multilabel"), "--workspace", str(sub), "--split", "test")),
        Step("Train the subtypes again with gradient-boosted trees on hand-made features (HU by depth below the "
             "skull, blood-like blobs): seconds, no GPU",
             ("train", str(sub), "--config", "ct-multilabel-gbm", "--out", str(sub / "runs" / "multilabel-gbm"),
              "--set", "preprocess.size=128", "--set", "bootstrap=200")),
        Step("Vote the subtype CNN with the trees (probabilities averaged, thresholds re-chosen on validation)",
             ("ensemble", str(sub), "--run", str(sub / "runs" / "multilabel"), "--run",
              str(sub / "runs" / "multilabel-gbm"), "--out", str(sub / "runs" / "multilabel-vote"),
              "--bootstrap", "200")),
        Step("Train task 3: segmentation of the edema rim (recipe ct-segment: 2.5D, lesion-aware crops, Dice+BCE), "
             "scaled down to 256-px phantoms",
             ("train", str(ws), "--config", "ct-segment", "--out", str(runs / "segment"), "--epochs", "8",
              "--set", "preprocess.size=256", "--set", "segment.crop=96", "--set", "samples_per_epoch=null",
              "--set", "ema_decay=0", "--set", "bootstrap=200")),
        Step("Evaluate segmentation: Dice/IoU/HD95/NSD global, per image and per patient; volumes; overlays",
             ("evaluate", str(runs / "segment"), "--workspace", str(ws), "--split", "test")),
        Step("Predict edema masks on a NIfTI scan with the segmentation run: PNG masks per slice and a label volume "
             "on the scan's own grid (affine and header kept)",
             call=lambda: _predict_nifti(runs / "segment", data / "nifti", root / "predict-segment")),
        Step("Cascade: keep the segmentation only on slices the task-1 model calls positive (gate threshold keeps "
             "98% of the validation lesion slices); gated and ungated Dice side by side",
             ("ensemble", str(ws), "--run", str(runs / "segment"), "--slice-gate", str(runs / "classify"),
              "--out", str(runs / "cascade"), "--bootstrap", "200")),
        Step("Train task 2: box detection (CenterNet-style heatmap head, the fastest design on CPU) on each slice's "
             "head square; boxes are mapped back to file pixels",
             ("train", str(ws), "--task", "detect", "--out", str(runs / "detect"), "--epochs", "25",
              "--set", "model.arch=centernet", "--set", "model.width=8", "--set", "preprocess.size=128",
              "--set", "preprocess.crop_head=true",
              "--set", "sampler=balanced", "--set", "augment=light", "--set", "batch_size=8", "--set", "lr=0.003",
              "--set", "patience=0",
              "--set", "num_workers=0", "--set", "bootstrap=200")),
        Step("Evaluate detection: mAP@0.5 and @0.5:0.95, FROC, image-level TP/FP/FN/TN with empty slices, drawings",
             ("evaluate", str(runs / "detect"), "--workspace", str(ws), "--split", "test")),
        Step("Dataset distance (optimal transport) between the phantom set and the subtype set",
             ("distance", str(ws), str(sub), "--max-samples", "150")),
        Step("Write the HTML report (dataset, audit galleries, runs)", ("report", str(ws))),
        Step("Show the manifest's version history", ("versions", str(ws))),
    ]


def run_demo(*, out: Path | None, patients: int, seed: int) -> Path:
    """Run the demo into ``out`` (or a temp folder); returns the demo folder."""
    root = Path(out).expanduser().resolve() if out is not None else Path(tempfile.mkdtemp(prefix="medsift-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    console.rule(f"medsift demo in {root}")
    steps = _steps(root, patients=patients, seed=seed)
    for i, step in enumerate(steps, 1):
        console.rule(f"[bold]{i}/{len(steps)}[/] {step.title}", align="left")
        t = time.perf_counter()
        if step.argv:
            console.print(f"[dim]$ medsift {shlex.join(step.argv)}[/]")
            _run_cli(step.argv)
        if step.call is not None:
            step.call()
        console.print(f"[dim]({time.perf_counter() - t:.1f} s)[/]")
    console.rule()
    console.print(f"[green]demo finished[/] in {time.perf_counter() - t0:.0f} s. Outputs under {root}:")
    for name in ("phantoms", "ws", "ws-dicom", "ws-subtypes", "export", "augment-preview.png", "ws/audit/report.html",
                 "ws/runs", "ws/report.html"):
        console.print(f"  {root / name}")
    console.print(f"Review the findings in a browser: [bold]medsift review {root / 'ws'}[/]")
    return root

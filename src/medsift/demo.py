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


def _steps(root: Path, *, patients: int, seed: int) -> list[Step]:
    data, ws, sub, dcm = root / "phantoms", root / "ws", root / "ws-subtypes", root / "ws-dicom"
    return [
        Step("Generate synthetic head-CT phantoms (PHE-SICH, DICOM, NIfTI and labelled-folder layouts, with defects)",
             ("synth", "--patients", str(patients), "--seed", str(seed), "--size", "256", "--out", str(data))),
        Step("Ingest the PHE-SICH-like layout (PNG + VOC boxes + edema masks)",
             ("ingest", str(data / "phe-sich"), "--layout", "phe-sich", "--workspace", str(ws))),
        Step("Ingest a DICOM series tree (HU from RescaleSlope/Intercept, sorted by position)",
             ("ingest", str(data / "dicom"), "--layout", "dicom", "--workspace", str(dcm))),
        Step("Ingest a folder of PNGs with a subtype labels CSV (RSNA-like) for the multi-label task",
             ("ingest", str(data / "folder" / "images"), "--layout", "folder", "--labels",
              str(data / "folder" / "labels.csv"), "--workspace", str(sub))),
        Step("Split by patient, stratified, 5 folds, with a leakage check",
             ("split", str(ws), "--test", "0.25", "--val", "0.15", "--folds", "3", "--seed", str(seed))),
        Step("Split the subtype workspace by patient",
             ("split", str(sub), "--test", "0.25", "--val", "0.15", "--folds", "0", "--stratify", "label_hemorrhage",
              "--seed", str(seed))),
        Step("Export to COCO (boxes + RLE masks) and nnU-Net v2 raw",
             ("export", str(ws), "--to", "coco", "--out", str(root / "export" / "coco"))),
        Step("Export to nnU-Net v2 raw", ("export", str(ws), "--to", "nnunet", "--out", str(root / "export" / "nnunet"))),
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
    for name in ("phantoms", "ws", "ws-dicom", "ws-subtypes", "export"):
        console.print(f"  {root / name}")
    return root

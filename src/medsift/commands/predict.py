"""`medsift predict RUN IMAGE...`: probability and label for images or folders (PNG/JPG/DICOM/NIfTI)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: Path = typer.Argument(..., help="Run folder written by `medsift train` (model.json + best.pt)."),
        images: List[Path] = typer.Argument(..., help="Image files or folders."),
        gradcam: Optional[Path] = typer.Option(None, help="classify/multilabel: write Grad-CAM overlays (PNG) here."),
        out: Optional[Path] = typer.Option(None, help="segment/detect: folder for predicted masks or drawings."),
        overlay: bool = typer.Option(False, help="segment: also write the mask over the slice (needs --out)."),
        draw: bool = typer.Option(False, help="detect: draw the boxes on the slice (needs --out)."),
        slice_gate: Optional[Path] = typer.Option(None, help="segment: a classify run; slices it calls negative get "
                                                             "an empty mask (classify -> segment cascade)."),
        gate_threshold: Optional[float] = typer.Option(None, help="With --slice-gate: the classifier probability "
                                                                  "that keeps a slice (default: its own threshold)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    ) -> None:
        """Print, per image (per slice for volumes), the model's answer: probability and label (classify,
        multilabel), lesion size with mask files (segment) or boxes with drawings (detect)."""
        import json

        from rich.console import Console

        from medsift.errors import ConfigError

        task = json.loads((model / "model.json").read_text()).get("task") if (model / "model.json").is_file() else None
        if (overlay or draw) and out is None:
            raise ConfigError("--overlay/--draw write files: give the folder with --out DIR")
        if slice_gate is not None and task != "segment":
            raise ConfigError("--slice-gate gates a segment run's masks; this run is a " f"{task} run")
        if task == "segment":
            from medsift.tasks.seg_predict import predict_segment_files

            results = predict_segment_files(model, images, out_dir=out, overlay=overlay, device=device,
                                            gate_run=slice_gate, gate_threshold=gate_threshold)
        elif task == "detect":
            from medsift.tasks.det_predict import predict_detect_files

            results = predict_detect_files(model, images, draw_dir=out if draw or out else None, device=device)
        else:
            from medsift.engine.inference import predict_files

            results = predict_files(model, images, gradcam_dir=gradcam, device=device)
        if not results:
            raise ConfigError(f"no readable image among {[str(i) for i in images]}")
        from medsift.engine.inference import file_domain_warnings

        for line in file_domain_warnings(model, images):  # on stderr: --json output stays machine-readable
            Console(stderr=True).print(f"[yellow]warning:[/yellow] {line}")
        if json_out:
            for r in results:
                typer.echo(json.dumps(r))
            return
        Console().print(_table(results, ("path", "slice", "scan"), title=None, first=("file", "slice")))
        if task not in ("segment", "detect") and any(r["slice"] > 0 for r in results):
            from medsift.engine.inference import scan_summary

            meta = json.loads((model / "model.json").read_text())
            thresholds = dict(zip(meta["labels"], meta["calibration"].get("thresholds", [0.5] * len(meta["labels"]))))
            Console().print(_table(scan_summary(results, thresholds), ("scan",), first=("scan",),
                                   title="per scan (max over its slices, slice threshold)"))


def _table(rows: list[dict], skip: tuple[str, ...], *, first: tuple[str, ...], title: str | None):
    """A rich table: the ``first`` columns (file name for ``path``), then every scalar key not in ``skip``."""
    from rich.table import Table

    keys = [k for k in rows[0] if k not in skip and not isinstance(rows[0][k], list)]
    table = Table(*first, *keys, title=title)
    for r in rows:
        lead = [Path(r["path"]).name if c == "file" else str(r[c]) for c in first]
        table.add_row(*lead, *[f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys])
    return table

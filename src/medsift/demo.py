"""The demo pipeline: phantoms -> every stage that exists, each step announced with its outputs."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console

console = Console()


def run_demo(*, out: Path | None, patients: int, seed: int) -> Path:
    """Run the demo into ``out`` (or a temp folder); returns the demo folder."""
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="medsift-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    console.rule(f"medsift demo in {root}")
    console.print(f"[green]done[/] in {time.perf_counter() - t0:.1f} s; outputs under {root}")
    return root

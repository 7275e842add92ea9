"""Run medsift's benchmarks and rewrite BENCHMARKS.md.

Usage::

    python benchmarks/run.py                 # every benchmark, real data from ../shared/data when present
    python benchmarks/run.py --only ingest audit
    python benchmarks/run.py --list
    python benchmarks/run.py --render-only   # rewrite BENCHMARKS.md from results/*.json

Each ``benchmarks/bench_<name>.py`` exposes ``run(*, repeats: int) -> dict`` returning::

    {"title": str, "command": str, "data": str,
     "rows": [{"metric": str, "value": float | str, "unit": str, "target": str, "runs": [floats]}],
     "notes": str}

Timings with several ``runs`` are reported as min / median / max; a row whose label says "mean" shows the mean
of its runs instead. Results are also kept as JSON in
``benchmarks/results/<name>.json`` so one benchmark can be rerun without losing the others.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"


def discover() -> dict[str, Path]:
    """Benchmark name -> module path, in a stable order."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def save_result(name: str, result: dict, *, started: float | None = None, measured: str | None = None) -> Path:
    """Stamp ``result`` with when (``measured``, or now and the wall seconds since ``started``) and on what machine
    it was measured, and write it as ``results/<name>.json``; used by this runner and by the bench scripts run on
    their own."""
    if measured is None:
        measured = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        if started is not None:
            measured += f", {time.perf_counter() - started:.0f} s wall"
    result["measured"] = measured
    result["machine"] = machine()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1, default=float))
    return path


def machine() -> str:
    """One line describing the machine the figures come from."""
    import torch

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def _value(row: dict) -> str:
    runs = row.get("runs") or []
    if len(runs) > 1:
        if "mean" in re.findall(r"[a-z]+", row["metric"].lower()):  # a row that says "mean" shows their mean
            return f"{statistics.fmean(runs):.3g} (min {min(runs):.3g}, max {max(runs):.3g}, n={len(runs)})"
        return (f"{statistics.median(runs):.3g} (min {min(runs):.3g}, max {max(runs):.3g}, "
                f"n={len(runs)})")
    value = row["value"]
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render(results: dict[str, dict], header: str) -> str:
    lines = ["# medsift benchmarks", "", "Written by `python benchmarks/run.py`; do not edit by hand.", "",
             f"Machine: {header}", ""]
    for name, res in results.items():
        lines += [f"## {res.get('title', name)}", "",
                  f"Command: `{res.get('command', f'python benchmarks/run.py --only {name}')}`  ",
                  f"Data: {res.get('data', '-')}  ", f"Measured: {res.get('measured', '-')}", "",
                  "| metric | value | unit | target |", "| --- | --- | --- | --- |"]
        for row in res.get("rows", []):
            lines.append(f"| {row['metric']} | {_value(row)} | {row.get('unit', '')} | {row.get('target', '')} |")
        if res.get("notes"):
            lines += ["", res["notes"]]
        for fig in res.get("figures", []):
            lines += ["", f"![{fig}]({fig})"]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="benchmark names to run (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats for timings")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite BENCHMARKS.md from results/*.json without running anything (after a bench_*.py "
                             "script wrote its own result, e.g. with --threads 1)")
    args = parser.parse_args(argv)
    found = discover()
    if args.list:
        print("\n".join(found))
        return 0
    names = [] if args.render_only else (args.only or list(found))
    unknown = sorted(set(names) - set(found))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; valid: {sorted(found)}")
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        save_result(name, load(found[name]).run(repeats=args.repeats), started=t0)
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem in found}
    header = machine()
    (REPO / "BENCHMARKS.md").write_text(render(results, header))
    print(f"wrote {REPO / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

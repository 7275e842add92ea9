"""Ingest wall time on the real data in ../shared/data (PHE-SICH, RSNA folder + labels, RSNA DICOM).

Usage::

    python benchmarks/bench_ingest.py              # prints seconds per dataset
    python benchmarks/run.py --only ingest         # same, into BENCHMARKS.md

Target (issue): PHE-SICH (2395 images, 83 patients, 2428 annotation files) in under 60 s with 2 workers.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JOBS = 2


def time_ingest(src: Path, *, layout: str, labels: Path | None = None, n_jobs: int = JOBS) -> tuple[float, dict]:
    """Seconds of one ingest into a fresh temporary workspace, and its summary."""
    from medsift.ingest import ingest, read_summary

    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        t0 = time.perf_counter()
        ingest(src, layout=layout, workspace=Path(tmp) / "ws", labels=labels, n_jobs=n_jobs)
        seconds = time.perf_counter() - t0
        return seconds, read_summary(Path(tmp) / "ws")


def run(*, repeats: int = 3) -> dict:
    """Benchmark entry for ``benchmarks/run.py``."""
    cases = [
        ("PHE-SICH (phe-sich layout)", DATA / "phe-sich-ct-ids", "phe-sich", None, "< 60 s"),
        ("RSNA subtypes (folder + labels.csv)", DATA / "rsna-ich-subtypes", "folder",
         DATA / "rsna-ich-subtypes" / "labels.csv", ""),
        ("RSNA DICOM (dicom layout)", DATA / "rsna-dicom", "dicom", None, ""),
    ]
    rows = []
    notes = []
    for title, src, layout, labels, target in cases:
        if not src.is_dir():
            notes.append(f"{title}: skipped, {src} absent")
            continue
        runs, summary = [], {}
        for _ in range(repeats):
            seconds, summary = time_ingest(src, layout=layout, labels=labels)
            runs.append(round(seconds, 2))
            print(f"{title}: {seconds:.1f} s", flush=True)
        rows.append({"metric": f"{title} wall time, {JOBS} jobs", "value": min(runs), "unit": "s",
                     "target": target, "runs": runs})
        rows.append({"metric": f"{title} rows / patients", "value": f"{summary['rows']} / {summary['patients']}",
                     "unit": "", "target": ""})
        if summary.get("annotations_total"):
            rows.append({"metric": f"{title} annotation files paired + unpaired = total",
                         "value": f"{summary['annotations_paired']} + {summary['annotations_unpaired']} = "
                                  f"{summary['annotations_total']}", "unit": "", "target": "all accounted"})
        rows.append({"metric": f"{title} rows per second", "value": round(summary["rows"] / min(runs), 1),
                     "unit": "rows/s", "target": ""})
    return {"title": "Ingest", "command": "python benchmarks/bench_ingest.py",
            "data": "../shared/data: phe-sich-ct-ids, rsna-ich-subtypes, rsna-dicom",
            "rows": rows, "notes": "; ".join(notes) + ("\n" if notes else "") +
            "Each file is read once in joblib workers: sha256, format by magic bytes, PNG chunk CRCs "
            "(other formats fully decoded), DICOM header + pixels, VOC boxes."}


def main() -> float:
    """Time the PHE-SICH ingest once and print (and return) the seconds."""
    seconds, summary = time_ingest(DATA / "phe-sich-ct-ids", layout="phe-sich")
    print(f"phe-sich: {seconds:.1f} s for {summary['rows']} rows, {summary['patients']} patients, "
          f"{summary['annotations_paired']} + {summary['annotations_unpaired']} of "
          f"{summary['annotations_total']} annotation files")
    return seconds


if __name__ == "__main__":
    main()

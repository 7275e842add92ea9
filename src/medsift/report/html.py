"""The workspace report: one self-contained HTML file (images as data URIs, CSS inline, no network).

Sections: dataset overview (patients, slices, class balance per split, clinical sheet), audit findings
with galleries, exploratory plots, and one block per trained run (model, config, history, curves,
metrics with confidence intervals, and every evaluation figure). Each table and figure names the command
and the config file that produced it.

Example:
    >>> build_report("ws/", runs=["ws/runs/resnet18"])  # doctest: +SKIP
    PosixPath('.../ws/report.html')
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterable

from medsift.errors import ConfigError
from medsift.manifest import atomic_write_bytes
from medsift.workspace import Workspace


def code_spans(text: str):
    """Escape ``text`` and turn `backtick` spans into ``<code>`` elements."""
    import re

    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def render_html(*, title: str, sections: list, generated: str, workspace: Path, command: str,
                report_dir: Path) -> str:
    """Render sections (see :mod:`medsift.report.sections`) with the packaged template (autoescaped).

    Config paths become links relative to ``report_dir`` (the folder the HTML file is written to).
    """
    import jinja2

    from medsift.report.sections import relpath

    text = resources.files("medsift.report").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["rel"] = lambda p: relpath(Path(p), report_dir)
    env.filters["code"] = code_spans
    return env.from_string(text).render(title=title, sections=sections, generated=generated,
                                        workspace=str(workspace), command=command)


def build_report(workspace: str | Path, *, runs: Iterable[str | Path] = (), out: str | Path | None = None) -> Path:
    """Write the workspace report and return its path.

    Args:
        workspace: the workspace folder.
        runs: run folders to include besides those found under ``WS/runs``.
        out: the HTML file (default ``WS/report.html``). Links to workspace files are relative to it.

    Raises:
        ConfigError: a ``runs`` entry is not a folder.
    """
    from medsift import __version__
    from medsift.report.sections import all_sections, find_runs

    ws = Workspace.at(workspace)
    df = ws.read()
    out_path = Path(out).expanduser().resolve() if out is not None else ws.root / "report.html"
    extra = [Path(r).expanduser().resolve() for r in runs]
    for r in extra:
        if not r.is_dir():
            raise ConfigError(f"--run {r} is not a folder; expected a training run folder (with config.yaml)")
    all_runs = list(dict.fromkeys(find_runs(ws) + extra))
    sections = all_sections(ws, df, all_runs, report_dir=out_path.parent)
    cmd = f"medsift report {ws.root}" + "".join(f" --run {r}" for r in extra) + (f" --out {out_path}" if out else "")
    html = render_html(title=f"medsift report: {ws.root.name}", sections=sections,
                       generated=f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}, medsift {__version__}",
                       workspace=ws.root, command=cmd, report_dir=out_path.parent)
    atomic_write_bytes(out_path, html.encode("utf-8"))
    return out_path

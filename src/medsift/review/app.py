"""The review web app (Flask): step through flagged images, decide accept / exclude / relabel.

Local only: :func:`serve` binds 127.0.0.1 by default and every request must carry a local ``Host``
(a DNS-rebinding guard). The app never takes a filesystem path from a request: images are addressed by
``image_id`` and read through the manifest row, so only files the manifest lists can be served.

Endpoints:
    ``GET /``                        the page
    ``GET /api/items``               the queue (JSON) with each item's latest decision
    ``GET /api/image/<id>.png``      ``?window=brain&overlay=mask,boxes&size=512``; 404 unless in the manifest
    ``POST /api/decision``           ``{"image_id", "decision", "new_label"?, "comment"?}``; 400/422 when malformed
    ``GET /api/decisions``           latest decision per image
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from medsift.errors import ConfigError
from medsift.workspace import Workspace

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
IMAGE_SIZES = (128, 256, 512, 768, 1024)
PREFETCH_AHEAD = 3
_ASSETS = {"review.js": "text/javascript", "review.css": "text/css"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class QueueSource(str, Enum):
    """What the expert steps through."""

    FINDINGS = "findings"              # WS/audit/findings.csv
    DISAGREEMENTS = "disagreements"    # predictions.csv of runs evaluated on WS where prediction != label


def decisions_path(workspace: str | Path) -> Path:
    """``WS/review/decisions.csv``."""
    return Workspace.at(workspace).root / "review" / "decisions.csv"


class ReviewState:
    """What one server holds: manifest rows by id, the queue, the PNG cache and a prefetch worker."""

    def __init__(self, workspace: str | Path, *, reviewer: str, queue: "QueueSource", runs: tuple[Path, ...],
                 findings: Path | None = None) -> None:
        from medsift.manifest import label_columns
        from medsift.review.cache import PngCache
        from medsift.review.decisions import latest_decisions
        from medsift.review.queue import build_queue, read_findings

        self.ws = Workspace.at(workspace)
        manifest = self.ws.read()
        self.rows: dict[str, dict[str, Any]] = {r["image_id"]: r for r in manifest.to_dict("records")}
        if queue is QueueSource.DISAGREEMENTS:
            from medsift.review.disagreements import disagreement_findings

            table = disagreement_findings(self.ws.root, runs)
        else:
            table = read_findings(findings if findings is not None else self.ws.root / "audit" / "findings.csv")
        self.queue = queue
        self.items = build_queue(manifest, table)
        self.order = {it["image_id"]: i for i, it in enumerate(self.items)}
        self.labels = label_columns(manifest)
        self.reviewer = reviewer
        self.decisions_file = decisions_path(self.ws.root)
        self.latest = latest_decisions(self.decisions_file)
        self.cache = PngCache()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medsift-prefetch")

    def png(self, image_id: str, window: str, overlays: tuple, size: int) -> bytes:
        from medsift.review.render import render_png

        row = self.rows[image_id]
        return self.cache.get_or_render((image_id, window, overlays, size),
                                        lambda: render_png(row, window=window, overlays=overlays, size=size))

    def prefetch(self, image_id: str, window: str, overlays: tuple, size: int) -> None:
        """Render the next queue items (and this item's neighbour slices and related image) in the background."""
        i = self.order.get(image_id)
        ids: list[str] = []
        if i is not None:
            ids += [it["image_id"] for it in self.items[i + 1:i + 1 + PREFETCH_AHEAD]]
            ids += [n for n in (self.items[i]["prev"], self.items[i]["next"], *self.items[i]["related"][:1]) if n]
        for iid in ids:
            if (iid, window, overlays, size) not in self.cache:
                self.pool.submit(self._quiet_render, iid, window, overlays, size)

    def _quiet_render(self, image_id: str, window: str, overlays: tuple, size: int) -> None:
        try:
            self.png(image_id, window, overlays, size)
        except Exception:  # a broken file shows as an error when it is really asked for
            pass


def create_app(workspace: str | Path, *, reviewer: str = "anonymous", queue: QueueSource | str = QueueSource.FINDINGS,
               runs: tuple[str | Path, ...] = (), findings: str | Path | None = None,
               allowed_hosts: frozenset[str] = LOCAL_HOSTS, prerender: int = 8):
    """Build the Flask app for one workspace.

    Args:
        workspace: the workspace folder (needs ``manifest.parquet``; findings from ``audit/findings.csv``).
        reviewer: name written with every decision.
        queue: ``findings`` (the audit's) or ``disagreements`` (model vs label, from evaluated runs).
        runs: run folders to read predictions from besides ``WS/runs/*`` (``disagreements`` only).
        findings: a findings CSV to review instead of ``WS/audit/findings.csv`` (``findings`` queue only), e.g.
            the ``RUN/queue-<strategy>.findings.csv`` of ``medsift queue``.
        allowed_hosts: host names accepted in the ``Host`` header (port ignored).
        prerender: how many queue items to render in the background at start (default view).
    """
    from flask import Flask, Response, abort, jsonify, request

    from medsift.review.decisions import (COLUMNS, MAX_REVIEWER, Decision, Verdict, append_decision,
                                          parse_new_label)
    from medsift.review.render import parse_overlays, window_names

    if not 0 < len(reviewer) <= MAX_REVIEWER or not reviewer.isprintable():
        raise ConfigError(f"reviewer must be 1..{MAX_REVIEWER} printable characters; got {reviewer!r}")
    try:
        queue = QueueSource(queue)
    except ValueError:
        raise ConfigError(f"queue must be one of {[q.value for q in QueueSource]}; got {queue!r}") from None
    if findings is not None and not Path(findings).is_file():
        raise ConfigError(f"--findings {findings} is not a file; expected a CSV with columns "
                          "image_id, check, severity, score, detail, related_id")
    state = ReviewState(workspace, reviewer=reviewer, queue=queue, runs=tuple(Path(r) for r in runs),
                        findings=Path(findings) if findings is not None else None)
    app = Flask("medsift.review", static_folder=None)
    app.url_map.merge_slashes = False  # "//etc/passwd" must not be redirected into something else
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["medsift_review"] = state
    windows = window_names()
    default_window = "brain"
    default_overlays = "mask,boxes"

    @app.before_request
    def _local_only():
        host = (request.host or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in allowed_hosts:
            abort(400, description=f"host {host!r} not allowed; the review server is local only")
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin is not None and origin.split("://", 1)[-1].lower() != host:
            abort(403, description=f"cross-origin request from {origin!r} refused")

    @app.after_request
    def _headers(resp):
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                   "frame-ancestors 'none'")
        return resp

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    @app.errorhandler(415)
    @app.errorhandler(422)
    def _json_error(err):
        return jsonify(error=getattr(err, "description", str(err))), err.code

    @app.get("/")
    def page():
        html = resources.files("medsift.report").joinpath("templates/review.html").read_text(encoding="utf-8")
        return Response(html, mimetype="text/html")

    @app.get("/assets/<name>")
    def asset(name: str):
        if name not in _ASSETS:
            abort(404, description=f"no asset {name!r}")
        data = resources.files("medsift.report").joinpath(f"templates/{name}").read_bytes()
        return Response(data, mimetype=_ASSETS[name])

    @app.get("/api/items")
    def items():
        with state.lock:
            latest = dict(state.latest)
        out = [dict(it, decision=latest.get(it["image_id"])) for it in state.items]
        return jsonify(reviewer=state.reviewer, workspace=state.ws.root.name, queue=state.queue.value,
                       labels=state.labels,
                       windows=windows, default_window=default_window, default_overlays=default_overlays,
                       items=out)

    @app.get("/api/decisions")
    def decisions():
        with state.lock:
            return jsonify(dict(state.latest))

    @app.get("/api/image/<path:name>")
    def image(name: str):
        image_id = name[:-4] if name.endswith(".png") else None
        if image_id is None or not _ID.match(image_id) or image_id not in state.rows:
            abort(404, description="no such image in the manifest")
        window = request.args.get("window", default_window)
        if window not in windows:
            abort(400, description=f"unknown window {window!r}; valid: {windows}")
        try:
            overlays = parse_overlays(request.args.get("overlay", ""))
        except ConfigError as exc:
            abort(400, description=str(exc))
        size_text = request.args.get("size", "512")
        if not size_text.isdigit() or int(size_text) not in IMAGE_SIZES:
            abort(400, description=f"size must be one of {IMAGE_SIZES}; got {size_text!r}")
        size = int(size_text)
        try:
            data = state.png(image_id, window, overlays, size)
        except Exception as exc:  # unreadable source file: say so, do not crash the server
            abort(422, description=f"cannot render {image_id}: {type(exc).__name__}: {exc}")
        state.prefetch(image_id, window, overlays, size)
        resp = Response(data, mimetype="image/png")
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp

    @app.post("/api/decision")
    def decide():
        if not request.is_json:
            abort(415, description="send JSON with Content-Type: application/json")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, description="body must be a JSON object")
        unknown = set(body) - {"image_id", "decision", "new_label", "comment"}
        if unknown:
            abort(422, description=f"unknown fields {sorted(unknown)}")
        image_id, verdict = body.get("image_id"), body.get("decision")
        new_label, comment = body.get("new_label") or "", body.get("comment") or ""
        if not all(isinstance(v, str) for v in (image_id, verdict, new_label, comment)):
            abort(422, description="image_id, decision, new_label and comment must be strings")
        if image_id not in state.rows:
            abort(422, description=f"image_id {image_id!r} is not in the manifest")
        try:
            if new_label:
                bad = set(parse_new_label(new_label)) - set(state.labels)
                if bad:
                    raise ConfigError(f"new_label names unknown label columns {sorted(bad)}; valid: {state.labels}")
            decision = Decision(image_id, Verdict(verdict) if verdict in {v.value for v in Verdict} else verdict,
                                reviewer=state.reviewer, new_label=new_label, comment=comment)
        except ConfigError as exc:
            abort(422, description=str(exc))
        with state.lock:
            append_decision(state.decisions_file, decision)
            state.latest[image_id] = dict(zip(COLUMNS, decision.row()))
            saved = state.latest[image_id]
        return jsonify(saved), 201

    if prerender > 0:
        overlays = parse_overlays(default_overlays)
        for it in state.items[:prerender]:
            state.pool.submit(state._quiet_render, it["image_id"], default_window, overlays, 512)
    return app


def make_review_server(workspace: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                       reviewer: str = "anonymous", queue: QueueSource | str = QueueSource.FINDINGS,
                       runs: tuple[str | Path, ...] = (), findings: str | Path | None = None):
    """A threaded werkzeug server for the app, bound but not yet serving (``port=0``: any free port)."""
    from werkzeug.serving import make_server

    hosts = LOCAL_HOSTS | {host.lower()}
    app = create_app(workspace, reviewer=reviewer, queue=queue, runs=runs, findings=findings,
                     allowed_hosts=frozenset(hosts))
    return make_server(host, port, app, threaded=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(workspace: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          reviewer: str = "anonymous", queue: QueueSource | str = QueueSource.FINDINGS,
          runs: tuple[str | Path, ...] = (), findings: str | Path | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Run the review app until interrupted (Ctrl-C). Decisions are on disk as soon as they are made.

    ``on_ready`` is called with the page URL once the socket is bound.
    """
    import logging
    import signal

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per image request on the console
    if threading.current_thread() is threading.main_thread():  # `kill PID` stops as cleanly as Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)
    server = make_review_server(workspace, host=host, port=port, reviewer=reviewer, queue=queue, runs=runs,
                                findings=findings)
    if on_ready is not None:
        on_ready(f"http://{host}:{server.server_port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

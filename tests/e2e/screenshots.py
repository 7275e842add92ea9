"""Regenerate docs/screenshots/*.png: the report and the review page in headless Chromium.

Usage (after `medsift demo --out /tmp/demo` and an audit, so WS has findings)::

    python tests/e2e/screenshots.py /tmp/demo/ws docs/screenshots

Not a test (pytest collects only test_*.py). Screenshots are quantised to stay well under 200 KB.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


def _save_small(png: bytes, path: Path) -> None:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    path.write_bytes(buf.getvalue())


def main(ws: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from medsift.report.html import build_report
    from medsift.review.app import create_app

    out.mkdir(parents=True, exist_ok=True)
    report = build_report(ws, out=ws / "report.html")
    server = make_server("127.0.0.1", 0, create_app(ws, reviewer="demo"), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            page.goto(report.as_uri())
            _save_small(page.screenshot(), out / "report.png")
            page.goto(report.as_uri())
            page.evaluate("() => document.querySelector('.galleries').scrollIntoView()")
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(200)
            _save_small(page.screenshot(), out / "report-audit.png")
            if page.query_selector("#run-1"):
                page.evaluate("() => document.querySelector('[id^=run-1-]').scrollIntoView()")
                _save_small(page.screenshot(), out / "report-run.png")
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.wait_for_function("() => document.querySelector('#image').dataset.shown")
            items = page.evaluate("() => fetch('/api/items').then(r => r.json())")["items"]
            boxed = next((i for i in items if i["n_boxes"] and i["has_mask"]), items[0])
            page.goto(f"http://127.0.0.1:{server.server_port}/#{boxed['image_id']}")
            page.wait_for_function("id => document.querySelector('#image').dataset.shown === id",
                                   arg=boxed["image_id"])
            _save_small(page.screenshot(), out / "review.png")
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))

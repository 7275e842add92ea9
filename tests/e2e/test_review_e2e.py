"""The review page in headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Open, step through three findings with the keyboard, decide, reload, restart the server, and check the
decisions file and the restored page state. Skipped when Chromium or Playwright is absent.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest

from review_fixtures import build_workspace

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} absent (apt-get install chromium)")


class Server:
    """The review app on a free 127.0.0.1 port, served from a thread."""

    def __init__(self, ws: Path, port: int = 0) -> None:
        from werkzeug.serving import make_server

        from medsift.review.app import create_app

        self.app = create_app(ws, reviewer="e2e")
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _shown(page, image_id: str) -> None:
    page.wait_for_function("id => document.querySelector('#image').dataset.shown === id", arg=image_id,
                           timeout=20000)


def _machine_busy() -> bool:
    """More than two runnable processes per core: wall-clock bounds say nothing about our code then."""
    import os

    return os.getloadavg()[0] > 2 * (os.cpu_count() or 1)


def test_keyboard_review_survives_reload_and_restart(browser, tmp_path):
    ws = build_workspace(tmp_path)
    server = Server(ws)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # ERR_ABORTED = a thumbnail superseded before it arrived (fast key presses), not an error
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and errors.append(f"{r.url}: {r.failure}"))
    try:
        page.goto(server.url)
        _shown(page, "P1_01")
        assert page.inner_text("#position") == "1 / 4"
        assert "pairing" in page.inner_text("#findings")

        # 1: exclude with a comment
        page.keyboard.press("c")
        page.keyboard.type("motion, drop it")
        page.keyboard.press("Escape")
        page.keyboard.press("x")
        timings = []
        t0 = time.perf_counter()
        _shown(page, "P1_02")
        timings.append(time.perf_counter() - t0)
        # 2: look at the next slice, toggle the mask overlay, then accept
        page.keyboard.press("]")
        _shown(page, "P1_03")
        page.keyboard.press("\\")
        _shown(page, "P1_02")
        page.keyboard.press("o")            # the near-duplicate named in the finding
        _shown(page, "P2_02")
        page.keyboard.press("o")
        _shown(page, "P1_02")
        page.keyboard.press("m")
        assert "mask" not in page.get_attribute("#image", "src").split("overlay=")[1].split("&")[0]
        page.keyboard.press("m")
        page.keyboard.press("a")
        t0 = time.perf_counter()
        _shown(page, "P2_02")
        timings.append(time.perf_counter() - t0)
        # 3: relabel; the form proposes flipping label_hemorrhage (1 -> 0); Enter saves
        page.keyboard.press("r")
        assert page.is_visible("#relabel")
        page.keyboard.press("Enter")
        t0 = time.perf_counter()
        _shown(page, "P2_03")
        timings.append(time.perf_counter() - t0)
        in_page_ms = float(page.get_attribute("#image", "data-ms"))
        page.wait_for_function("() => document.body.dataset.saved === '3'", timeout=20000)
        assert page.inner_text("#status").startswith("saved: P2_02 relabel")

        with open(ws / "review" / "decisions.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [(r["image_id"], r["decision"], r["new_label"], r["comment"], r["reviewer"]) for r in rows] == [
            ("P1_01", "exclude", "", "motion, drop it", "e2e"),
            ("P1_02", "accept", "", "", "e2e"),
            ("P2_02", "relabel", "label_hemorrhage=0", "", "e2e"),
        ]

        # reload: same image, progress and per-item decisions restored
        page.reload()
        _shown(page, "P2_03")
        assert page.inner_text("#progress") == "3 of 4 decided"
        page.keyboard.press("ArrowLeft")
        _shown(page, "P2_02")
        assert page.inner_text("#current-decision") == "relabel (label_hemorrhage=0)"

        # restart the server on the same port: nothing lost
        port = server.port
        server.stop()
        server = Server(ws, port=port)
        page.goto(server.url)           # no hash: starts at the first undecided item
        _shown(page, "P2_03")
        classes = page.eval_on_selector_all("#queue li", "els => els.map(e => e.className.split(' ')[0])")
        assert classes == ["dec-exclude", "dec-accept", "dec-relabel", "dec-none"]
        page.keyboard.press("k")
        page.keyboard.press("k")
        page.keyboard.press("k")
        _shown(page, "P1_01")
        assert page.input_value("#comment") == "motion, drop it"
        assert errors == []
        print(f"time to next image after a decision (s): {[round(t, 3) for t in timings]}; "
              f"in-page load {in_page_ms} ms")
        # Measured here: 12-90 ms key-to-image, 15-60 ms in-page load on a loaded 2-core machine (the goal is
        # < 100 ms); the bounds leave room for a busy CI runner without letting a regression through.
        if not _machine_busy():
            assert max(timings) < 0.5
            assert in_page_ms < 250
    finally:
        page.close()
        server.stop()


def test_report_renders_offline_with_every_image(browser, tmp_path):
    from medsift.report.html import build_report

    from report_fixtures import build_run

    ws = build_workspace(tmp_path)
    build_run(ws / "runs" / "r1")
    report = build_report(ws)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    outside: list[str] = []
    page.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
               if not route.request.url.startswith(("file:", "data:")) else route.continue_())
    try:
        page.goto(report.as_uri())
        broken = page.eval_on_selector_all("img", "els => els.filter(e => !e.complete || e.naturalWidth === 0)"
                                                  ".map(e => e.alt)")
        n_images = page.eval_on_selector_all("img", "els => els.length")
        assert outside == [] and broken == [] and n_images >= 10
        # the table of contents jumps to the run's evaluation
        page.click("nav >> text=Evaluation ws-test")
        assert page.evaluate("() => location.hash") == "#run-1-ws-test"
    finally:
        page.close()


def test_slow_save_does_not_close_the_next_relabel_form(browser, tmp_path, monkeypatch):
    import medsift.review.decisions as decisions

    real = decisions.append_decision

    def slow(path, decision):
        time.sleep(0.8)
        return real(path, decision)

    monkeypatch.setattr(decisions, "append_decision", slow)
    ws = build_workspace(tmp_path)
    server = Server(ws)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    try:
        page.goto(server.url)
        _shown(page, "P1_01")
        page.keyboard.press("a")          # saved in the background, 0.8 s
        _shown(page, "P1_02")
        page.keyboard.press("r")          # the form opens before that save returns
        page.wait_for_function("() => document.body.dataset.saved === '1'", timeout=20000)
        assert page.is_visible("#relabel")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.body.dataset.saved === '2'", timeout=20000)
        assert decisions.latest_decisions(ws / "review" / "decisions.csv")["P1_02"]["decision"] == "relabel"
    finally:
        page.close()
        server.stop()

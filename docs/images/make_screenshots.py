"""Screenshot of the quickstart report for the README: ``docs/images/report-quickstart.png``.

    python docs/images/make_screenshots.py            # runs quickstart, writes its report, takes the screenshot
    python docs/images/make_screenshots.py RUN_DIR    # uses an existing run directory instead

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright`` Python package. The image is
the top of the page (headline cards and the first charts) in a 1400 px wide window.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent


def screenshot(page_path: Path, png: Path, *, width: int = 1400, height: int = 1500, full_page: bool = False) -> Path:
    """Open ``page_path`` in headless Chromium and save a PNG of its top ``height`` pixels (or the full page)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length > 0")
        page.wait_for_timeout(500)
        page.screenshot(path=str(png), full_page=full_page)
        browser.close()
    return png


def main(argv: list[str]) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.report import write_report
    from perpstress.outputs.run import run_scenario

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(argv[0]) if argv else run_scenario(Scenario.load("quickstart"), Path(tmp) / "qs").path
        assert run_dir is not None
        report = write_report(run_dir, Path(tmp) / "report.html")
        out = screenshot(report, HERE / "report-quickstart.png")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1:])

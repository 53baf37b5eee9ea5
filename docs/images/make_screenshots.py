"""Screenshots of the reports for the README and the docs, in ``docs/images/``:

- ``report-quickstart.png``: the quickstart report (headline cards and the first charts);
- ``report-oct-2025.png``: the oct-2025 report at 5 % of the accounts, after ``validate`` (its verdict on the card);
- ``sweep-quickstart.png``: ``sweep.html`` of a small sweep (the quickstart cut to 40 s, two fund sizes x 2 seeds).

    python docs/images/make_screenshots.py                 # all three (runs them; about a minute on 2 cores)
    python docs/images/make_screenshots.py quickstart      # only these: quickstart, oct-2025, sweep

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright`` Python package. Each image is
the top of the page in a 1400 px wide window.
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


PAGES = ("quickstart", "oct-2025", "sweep")


def main(argv: list[str]) -> None:
    from perpstress.config.scenario import Scenario
    from perpstress.outputs.report import write_report
    from perpstress.outputs.run import run_scenario
    from perpstress.sweep import parse_grid, plan_sweep, run_sweep
    from perpstress.validation.targets import validate_run

    unknown = set(argv) - set(PAGES)
    if unknown:
        raise SystemExit(f"unknown page(s) {', '.join(sorted(unknown))}; choose from {', '.join(PAGES)}")
    with tempfile.TemporaryDirectory() as tmp:
        written = []
        for name in argv or PAGES:
            if name == "sweep":
                base = Scenario.load("quickstart").with_(name="quickstart-40s", duration_s=40, shock__at_s=5,
                                                         shock__drift_s=20)  # fmt: skip
                grid = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 8e6]}}, "grid.toml")
                result = run_sweep(plan_sweep(base, grid, 2, scale=0.1), Path(tmp) / "sweep", executor="serial",
                                   summaries_only=True)  # fmt: skip
                assert result.report is not None, result.report_problem
                written.append(screenshot(result.report, HERE / "sweep-quickstart.png"))
                continue
            scale = 0.05 if name == "oct-2025" else 1.0
            run_dir = run_scenario(Scenario.load(name), Path(tmp) / name, scale=scale).path
            assert run_dir is not None
            if name == "oct-2025":
                validate_run(run_dir)
            report = write_report(run_dir, Path(tmp) / f"{name}.html")
            written.append(screenshot(report, HERE / f"report-{name}.png"))
    for out in written:
        print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1:])

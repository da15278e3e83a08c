"""Take the README's picture of the report (docs/report.png): the top of a report, as the
system's Chromium draws it, with every request outside the file blocked.

    .venv/bin/rentalctl report
    .venv/bin/python scripts/screenshot_report.py .rentalctl/report.html --out docs/report.png

Uses Playwright with the Chromium the system has (``--chromium``, default /usr/bin/chromium):
no browser is downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def screenshot(report: Path, out: Path, chromium: str, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})

            def local_only(route: Any) -> None:
                if route.request.url == report.as_uri():
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", local_only)
            page.goto(report.as_uri(), wait_until="load")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, nargs="?", default=Path(".rentalctl/report.html"))
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args(argv)
    screenshot(args.report.resolve(), args.out, args.chromium, args.width, args.height)
    print(f"written: {args.out} ({args.out.stat().st_size / 1024:,.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The report in a real headless browser (the system's Chromium, driven by Playwright), with
every request outside the file blocked: it loads with no console error and no request, every
chart has drawn, for every week one can choose, and a screenshot is not blank.

Skips where no Chromium is installed, except in CI (`CI` set), where it fails: `.ci/run`
installs it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import invoke

CHROMIUM_ENV = "RENTALCTL_TEST_CHROMIUM"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = os.environ.get(CHROMIUM_ENV, "/usr/bin/chromium")
    if not Path(executable).is_file():
        reason = f"no Chromium at {executable} (set {CHROMIUM_ENV})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set: the browser test must run, not skip")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_offline(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """The page at ``path``, every other request aborted and recorded; (page, console errors,
    requests outside the file)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url == path.as_uri():
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, outside


# Charts shown now: how many, and how many of them have a drawn size and drawn marks.
DRAWN = """() => {
  const shown = [...document.querySelectorAll('svg.chart, svg.state-machine')]
    .filter(svg => svg.checkVisibility());
  const drawn = shown.filter(svg => {
    const box = svg.getBoundingClientRect();
    const marks = svg.querySelectorAll('rect, polyline, circle, path').length;
    return box.width > 100 && box.height > 50 && marks > 0;
  });
  return [shown.length, drawn.length];
}"""

# The number of distinct colours in a PNG (given as base64), counted on a canvas.
COLOURS = """async (png) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + png;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4) seen.add((data[i] << 16) | (data[i+1] << 8) | data[i+2]);
  return seen.size;
}"""


def distinct_colours(browser: Any, png: bytes) -> int:
    scratch = browser.new_page()
    try:
        return int(scratch.evaluate(COLOURS, base64.b64encode(png).decode()))
    finally:
        scratch.close()


@pytest.mark.slow
def test_report_draws_offline_in_a_browser(
    browser: Any, pipeline_home: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RENTALCTL_HOME", str(pipeline_home["home"]))
    path = tmp_path / "report.html"
    assert invoke("report", "--output-file", str(path)).exit_code == 0
    page, errors, outside = open_offline(browser, path)
    try:
        shown, drawn = page.evaluate(DRAWN)
        # 7 KPI charts, the state machine, 2 run-history charts, rejected rows
        assert (shown, drawn) == (11, 11)
        weeks = page.eval_on_selector_all("#week option", "options => options.map(o => o.value)")
        assert len(weeks) >= 2
        for week in weeks:
            page.select_option("#week", week)
            assert page.evaluate(DRAWN) == [11, 11], week
            visible = page.eval_on_selector_all(
                ".week-view", "views => views.filter(v => !v.hidden).map(v => v.dataset.week)"
            )
            assert visible == [week] * 3, week
        assert distinct_colours(browser, page.screenshot(full_page=True)) > 50
        assert errors == [] and outside == []
    finally:
        page.close()


def test_empty_report_loads_offline(
    browser: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("report").exit_code == 0
    page, errors, outside = open_offline(browser, home / "report.html")
    try:
        assert page.evaluate(DRAWN) == [1, 1]  # the state machine alone
        assert "No runs yet" in page.inner_text("#kpis")
        assert distinct_colours(browser, page.screenshot()) > 10
        assert errors == [] and outside == []
    finally:
        page.close()

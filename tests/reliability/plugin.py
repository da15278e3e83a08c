"""The reliability suite records what it tried, and docs/reliability.md is made from that record.

Each test calls ``reliability(area, case, outcome, lost)`` once per fault or input it tried,
after checking it (so only checked outcomes are recorded). At the end of a session in which
every reliability test ran and passed, the report is rendered:

- ``pytest tests/reliability --reliability-report docs/reliability.md`` writes it;
- otherwise it is compared with docs/reliability.md, and a stale document fails the session
  when CI is set (and is reported as a warning elsewhere).

Outcomes must be deterministic text (no timings, run ids or paths), so the document changes only
when behaviour does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"

# Areas in the order the document shows them.
AREAS = {
    "kill": "Process killed (SIGKILL of the whole process tree), then run again",
    "transient": "Transient faults in the adapters",
    "bad-input": "Bad input in the source",
    "schema-drift": "Schema drift in the source",
    "concurrency": "Concurrency",
    "reprocessing": "Reprocessing by hand (bookmarks rewound, then run again)",
    "security": "Security",
}


@dataclass(frozen=True)
class Outcome:
    area: str
    case: str
    outcome: str
    lost: str
    test: str


_outcomes: list[Outcome] = []
_reliability_items: set[str] = set()
_passed: set[str] = set()

Record = Callable[..., None]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-report",
        metavar="PATH",
        help="write the reliability report (docs/reliability.md) from this session's outcomes",
    )


_HERE = Path(__file__).parent
_files_seen: set[str] = set()
_deselected: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent == _HERE:
            _reliability_items.add(item.nodeid)
            _files_seen.add(item.path.name)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _deselected.update(i.nodeid for i in items if i.path.parent == _HERE)


def _whole_suite_passed() -> bool:
    """Every test of every reliability file ran and passed: only then is the record whole."""
    files = {p.name for p in _HERE.glob("test_*.py")}
    return (
        files <= _files_seen
        and not (_deselected & _reliability_items)
        and bool(_reliability_items)
        and _reliability_items <= _passed
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid in _reliability_items and report.when == "call" and report.passed:
        _passed.add(report.nodeid)


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Record:
    """``reliability(area, case, outcome, lost="nothing")``: record one checked outcome."""

    def record(area: str, case: str, outcome: str, lost: str = "nothing") -> None:
        assert area in AREAS, f"unknown reliability area {area!r}"
        _outcomes.append(Outcome(area, case, outcome, lost, request.node.nodeid))

    return record


def render(outcomes: list[Outcome]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Reliability",
        "",
        "What the reliability suite (`tests/reliability/`) does to rentalctl on purpose, and what",
        "came of it. This page is generated from the suite's own record of each checked outcome:",
        "`make reliability` reruns the suite and rewrites it, and CI fails when it is out of date.",
        "",
        '"Lost" is what a check found missing or doubled afterwards, compared with a clean run',
        "(every warehouse table, the bookmarks and the lake): it must be nothing, or the test",
        "fails.",
    ]
    for area, title in AREAS.items():
        rows = [o for o in outcomes if o.area == area]
        if not rows:
            continue
        lines += ["", f"## {title}", "", "| tried | outcome | lost |", "|---|---|---|"]
        lines += [f"| {cell(o.case)} | {cell(o.outcome)} | {cell(o.lost)} |" for o in rows]
    total = len(outcomes)
    lost = sum(o.lost != "nothing" for o in outcomes)
    lines += ["", f"{total} faults and inputs tried; {lost} lost anything.", ""]
    return "\n".join(lines)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    complete = _whole_suite_passed()
    target = session.config.getoption("--reliability-report")
    if not complete:
        if target:
            missing = sorted(_reliability_items - _passed)
            print(
                f"\nreliability report not written: {len(missing)} test(s) did not pass, or not "
                "every reliability test was selected"
            )
            session.exitstatus = 1
        return
    ordered = sorted(_outcomes, key=lambda o: list(AREAS).index(o.area))
    text = render(ordered)
    if target:
        Path(target).write_text(text, encoding="utf-8")
        print(f"\nreliability report written to {target} ({len(ordered)} outcomes)")
        return
    current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    if current != text:
        message = (
            "docs/reliability.md does not match what the reliability suite just did: "
            "run `make reliability` and commit the result"
        )
        print(f"\n{message}")
        if os.environ.get("CI"):
            session.exitstatus = 1

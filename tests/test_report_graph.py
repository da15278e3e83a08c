"""The state machine picture is drawn from the definition alone: any states, nested ones inside
their Map or Parallel box, Next and Catch edges, a layer per step, each state coloured by the
latest run's outcome."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from rentalctl import config
from rentalctl.orchestration.statemachine import render
from rentalctl.report.graph import state_machine_svg

MACHINE: dict[str, Any] = {
    "StartAt": "Start",
    "States": {
        "Start": {"Type": "Pass", "Next": "Pick"},
        "Pick": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.each", "BooleanEquals": True, "Next": "Each"}],
            "Default": "Both",
        },
        "Each": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "Work",
                "States": {"Work": {"Type": "Task", "Resource": "arn:x", "End": True}},
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}],
            "Next": "Done",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {
                    "StartAt": "Right",
                    "States": {
                        "Right": {"Type": "Wait", "Seconds": 1, "Next": "Again"},
                        "Again": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.r", "IsPresent": True, "Next": "Right"}],
                            "Default": "Over",
                        },
                        "Over": {"Type": "Succeed"},
                    },
                },
            ],
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Oops": {"Type": "Fail"},
    },
}
RUN = [
    {"name": "Start", "status": "SUCCEEDED", "seconds": 0.0, "attempts": 0},
    {"name": "Pick", "status": "SUCCEEDED", "seconds": 0.0, "attempts": 0},
    {"name": "Each", "status": "FAILED", "seconds": 3.5, "attempts": 0},
    {"name": "Work[a]", "status": "SUCCEEDED", "seconds": 1.25, "attempts": 1},
    {"name": "Work[b]", "status": "FAILED", "seconds": 2.0, "attempts": 2, "error": "Boom"},
    {"name": "Oops", "status": "FAILED", "seconds": 0.0, "attempts": 0},
]


def groups(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("data-state", ""): g for g in root.iter("g") if g.get("class") == "state"}


def box(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find("rect")
    assert rect is not None
    return tuple(float(rect.get(k, "0")) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def test_every_state_is_drawn_nested_ones_inside_their_box() -> None:
    svg = state_machine_svg(MACHINE, [])
    found = groups(svg)
    assert sorted(found) == sorted(
        ["Start", "Pick", "Each", "Work", "Both", "Left", "Right", "Again", "Over", "Done", "Oops"]
    )
    assert {g.get("data-state") for g in found["Each"].iter("g")} == {"Each", "Work"}
    assert {g.get("data-state") for g in found["Both"].iter("g")} == {
        "Both", "Left", "Right", "Again", "Over"
    }  # fmt: skip
    x, y, w, h = box(found["Each"])
    wx, wy, ww, wh = box(found["Work"])
    assert x < wx and wx + ww < x + w and y < wy and wy + wh < y + h
    # Edges: Start→Pick, Pick→Each, Pick→Both, Each→Done, Both→Done, Right→Again,
    # Again→Right (a loop back), Again→Over; one Catch: Each→Oops.
    assert len(re.findall(r'class="edge next"', svg)) == 8
    assert len(re.findall(r'class="edge catch"', svg)) == 1
    assert all(g.get("data-status") == "" for g in found.values())  # nothing has run


def test_layers_follow_the_steps_and_the_failure_path_sits_beside() -> None:
    found = groups(state_machine_svg(MACHINE, []))
    top = {name: box(g)[1] for name, g in found.items()}
    assert top["Start"] < top["Pick"] < top["Each"] < top["Done"]
    assert top["Each"] == top["Both"]  # both follow the Choice
    left = {name: box(g)[0] for name, g in found.items()}
    assert left["Oops"] > left["Done"]  # beside the main path, below the Map
    assert top["Oops"] == top["Done"]


def test_states_are_coloured_by_the_latest_run() -> None:
    found = groups(state_machine_svg(MACHINE, RUN))
    status = {name: g.get("data-status") for name, g in found.items()}
    assert status == {
        "Start": "SUCCEEDED",
        "Pick": "SUCCEEDED",
        "Each": "FAILED",
        "Work": "FAILED",  # one item failed
        "Both": "",
        "Left": "",
        "Right": "",
        "Again": "",
        "Over": "",
        "Done": "",
        "Oops": "FAILED",
    }
    fills = {name: g.find("rect").get("fill") for name, g in found.items()}  # type: ignore[union-attr]
    assert (fills["Start"], fills["Each"], fills["Done"]) == ("#e3f4e4", "#fdecea", "#f3f3f3")
    details = {name: [t.text for t in g.findall("text")] for name, g in found.items()}
    assert details["Work"] == ["Work", "failed · 3.2 s · 3 attempts · 2 items"]
    assert details["Done"] == ["Done", "not run"]
    title = found["Work"].find("title")
    assert title is not None and title.text == (
        "Work (Task): failed · 3.2 s · 3 attempts · 2 items; error Boom"
    )


def _names(states: dict[str, Any]) -> set[str]:
    out = set(states)
    for state in states.values():
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            out |= _names(inner["States"])
        for branch in state.get("Branches", []):
            out |= _names(branch["States"])
    return out


def test_the_pipelines_own_definition_is_drawn_whole() -> None:
    definition = render(config.load(env={}))
    assert set(groups(state_machine_svg(definition, []))) == _names(definition["States"])

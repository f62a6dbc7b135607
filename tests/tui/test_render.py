"""Card text builders: heights computed without rendering match what is rendered."""

from __future__ import annotations

import pytest

from reflex_tui.widgets.render import bar, card_body, card_height, list_body, list_height, sparkline

from .fixed_fleet import build_fleet


@pytest.mark.parametrize("width", [12, 20, 34, 60, 120])
def test_card_height_matches_rendered_lines(width: int) -> None:
    fleet = build_fleet()
    for device in fleet.members():
        for cursor in (None, *device.selectable_tests()):
            body, _ = card_body(device, fleet, width, cursor, selected=cursor is not None)
            assert body.plain.count("\n") + 1 == card_height(device, width), device.id
            rows, _ = list_body(device, fleet, width, 20, cursor, selected=True)
            assert rows.plain.count("\n") + 1 == list_height(device, width, selected=True)
            assert all(len(line) <= max(width, 10) + 4 for line in rows.plain.splitlines())


def test_sparkline_and_bar() -> None:
    assert sparkline([0.0, 50.0, 100.0, None], 4) == "▁▄█ "
    assert sparkline([5.0, 5.0], 4) == "  ▄▄"
    assert sparkline([], 3) == "   "
    assert bar(0, 4) == "░░░░" and bar(100, 4) == "████" and bar(50, 4) == "██░░"
    assert bar(12.5, 4) == "▌░░░"

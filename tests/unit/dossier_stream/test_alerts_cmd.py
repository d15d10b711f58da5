"""`dossier-stream alerts`: what a line and a row say, the filters, and the usage errors.

Expected strings are written out by hand from the rule the docs state (Vietnam time is
UTC+7, labels Vietnamese with English beside, figure against the line it crossed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from common.errors import EXIT_USAGE
from dossier_stream.alerts_cmd import (
    action_text,
    evidence_text,
    line,
    matches,
    once,
    open_order,
    parse_event,
    row,
    select,
    table,
    when_text,
    who_text,
)
from schemas.alerts import AlertEvent
from tests.cli import ROOT, run_cli
from tests.unit.dossier_stream.fakes import text_of

# 04:00 UTC is 11:00 in Hải Phòng (UTC+7, no daylight saving).
AT = datetime(2026, 4, 8, 4, 0, tzinfo=UTC)


def event(**changes: Any) -> AlertEvent:
    doc: dict[str, Any] = {
        "id": "013a67ed-da4e-5755-95d2-d41a259cb2be",
        "incident_id": "f86da63d-a4d9-5d85-8d82-d6b827eb09af",
        "kind": "overdue_spike",
        "scope": "agency:SO-YTE",
        "agency": "SO-YTE",
        "agency_name": "Sở Y tế",
        "severity": "critical",
        "action": "opened",
        "at": AT,
        "opened_at": AT,
        "figures": {"became_overdue": 14, "window_buckets": 11},
        "baseline": {"open_level": 5, "close_line": 3, "blocks": 20},
    }
    return AlertEvent.model_validate(doc | changes)


def test_a_line_says_when_what_who_how_bad_and_which_figure_crossed_which_line() -> None:
    assert line(event()) == (
        "08/04/2026 11:00 (giờ Việt Nam) · Tăng đột biến hồ sơ quá hạn (Overdue spike) · "
        "mở/opened · Sở Y tế · nghiêm trọng/critical · became_overdue 14 ≥ 5"
    )


def test_a_row_has_the_same_cells_without_the_time_zone_note() -> None:
    cleared = event(
        action="cleared",
        kind="near_due_backlog",
        severity="warning",
        at=datetime(2026, 4, 9, 2, 15, tzinfo=UTC),
        figures={"near_due_now": 10},
        baseline={"open_at": 20, "close_at": 12},
    )
    assert row(cleared) == (
        "09/04/2026 09:15",
        "Tồn đọng hồ sơ sắp trễ (Near-due backlog)",
        "đã hết/cleared",
        "Sở Y tế",
        "cảnh báo/warning",
        "near_due_now 10 ≤ 12",
    )


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        (datetime(2026, 4, 8, 4, 0, tzinfo=UTC), "08/04/2026 11:00 (giờ Việt Nam)"),
        # 17:30 UTC is already the next day in Vietnam.
        (datetime(2026, 4, 7, 17, 30, tzinfo=UTC), "08/04/2026 00:30 (giờ Việt Nam)"),
        (datetime(2025, 12, 31, 16, 59, tzinfo=UTC), "31/12/2025 23:59 (giờ Việt Nam)"),
        (datetime(2025, 12, 31, 17, 0, tzinfo=UTC), "01/01/2026 00:00 (giờ Việt Nam)"),
    ],
)
def test_times_are_shown_in_vietnam_time(at: datetime, shown: str) -> None:
    assert when_text(event(at=at, opened_at=at)) == shown


@pytest.mark.parametrize(
    ("kind", "action", "figures", "baseline", "shown"),
    [
        # An opening is judged against the open line, a clearing against the clearing line.
        ("overdue_spike", "opened", {"became_overdue": 14}, {"open_level": 5, "close_line": 3},
         "became_overdue 14 ≥ 5"),
        ("overdue_spike", "cleared", {"became_overdue": 2}, {"open_level": 5, "close_line": 3},
         "became_overdue 2 ≤ 3"),
        ("near_due_backlog", "opened", {"near_due_now": 24}, {"open_at": 20, "close_at": 12},
         "near_due_now 24 ≥ 20"),
        ("near_due_backlog", "cleared", {"near_due_now": 12}, {"open_at": 20, "close_at": 12},
         "near_due_now 12 ≤ 12"),
        ("online_target", "opened",
         {"window": "qtd", "received": 250, "online": 160, "online_ratio": "0.640000"},
         {"target": "0.800000", "clear_at": "0.820000"},
         "online 64.0% < 80%"),
        ("online_target", "cleared",
         {"window": "qtd", "received": 200, "online": 165, "online_ratio": "0.825000"},
         {"target": "0.800000", "clear_at": "0.820000"},
         "online 82.5% ≥ 82%"),
        # Rounded half up to a tenth of a percent, as the ratios in Redis are.
        ("online_target", "opened", {"online_ratio": "0.644500"}, {"target": "0.755000"},
         "online 64.5% < 75.5%"),
        ("online_target", "cleared", {"online_ratio": None, "received": 0}, {"clear_at": "0.82"},
         "online – (received 0)"),
        # A baseline without the line: the figure alone.
        ("near_due_backlog", "opened", {"near_due_now": 24}, {}, "near_due_now 24"),
    ],
)  # fmt: skip
def test_the_key_figure_against_its_line(
    kind: str, action: str, figures: dict, baseline: dict, shown: str
) -> None:
    e = event(kind=kind, action=action, figures=figures, baseline=baseline)
    assert evidence_text(e) == shown


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({}, "Sở Y tế"),
        ({"scope": "city", "agency": None, "agency_name": None}, "Toàn thành phố (city-wide)"),
        (
            {"scope": "level:commune", "agency": None, "agency_name": None},
            "Xã, phường, đặc khu (communes)",
        ),
        ({"scope": "agency:11311", "agency": "11311", "agency_name": None}, "agency:11311"),
    ],
)
def test_who_is_the_agency_name_with_diacritics_else_the_scope(changes: dict, shown: str) -> None:
    assert who_text(event(**changes)) == shown


def test_actions_read_in_vietnamese_with_english_beside() -> None:
    assert action_text(event(action="opened")) == "mở/opened"
    assert action_text(event(action="cleared")) == "đã hết/cleared"


SPIKE_YTE = event()
TARGET_XD = event(
    id="2b1c3c1e-0000-5000-8000-000000000001",
    kind="online_target",
    scope="agency:SO-XD",
    agency="SO-XD",
    agency_name="Sở Xây dựng",
    severity="warning",
    figures={"online_ratio": "0.640000"},
    baseline={"target": "0.800000"},
)
NEAR_YTE = event(
    id="2b1c3c1e-0000-5000-8000-000000000002",
    kind="near_due_backlog",
    severity="warning",
    figures={"near_due_now": 24},
    baseline={"open_at": 20},
)
CITY = event(id="2b1c3c1e-0000-5000-8000-000000000003", scope="city", agency=None, agency_name=None)
ALL = [SPIKE_YTE, TARGET_XD, NEAR_YTE, CITY]


@pytest.mark.parametrize(
    ("agency", "kind", "expected"),
    [
        (None, None, ALL),
        ("SO-YTE", None, [SPIKE_YTE, NEAR_YTE]),
        ("so-yte", None, [SPIKE_YTE, NEAR_YTE]),  # codes in any case
        (None, "overdue_spike", [SPIKE_YTE, CITY]),
        ("SO-YTE", "near_due_backlog", [NEAR_YTE]),
        ("SO-XD", "overdue_spike", []),
        ("city", None, []),  # a scope is not an agency code
    ],
)
def test_filters_by_agency_code_and_kind(
    agency: str | None, kind: str | None, expected: list[AlertEvent]
) -> None:
    assert select(ALL, agency=agency, kind=kind) == expected
    assert [matches(e, agency=agency, kind=kind) for e in ALL] == [e in expected for e in ALL]


def test_each_event_once_by_id_and_open_ones_oldest_first() -> None:
    later = event(
        id="2b1c3c1e-0000-5000-8000-000000000009",
        at=datetime(2026, 4, 8, 5, 0, tzinfo=UTC),
        opened_at=datetime(2026, 4, 8, 5, 0, tzinfo=UTC),
    )
    assert once([later, SPIKE_YTE, later, SPIKE_YTE]) == [later, SPIKE_YTE]
    assert open_order([later, SPIKE_YTE]) == [SPIKE_YTE, later]


def test_only_alert_events_are_parsed() -> None:
    assert parse_event(SPIKE_YTE.model_dump_json()) == SPIKE_YTE
    assert parse_event(SPIKE_YTE.model_dump_json().encode()) == SPIKE_YTE
    assert parse_event("not json") is None
    assert parse_event('{"id": "x"}') is None
    assert parse_event(None) is None


def test_the_table_shows_every_cell_and_the_vietnam_time_note() -> None:
    shown = text_of(table("Đang mở (open now)", [SPIKE_YTE, TARGET_XD]), width=250)
    for text in (
        "Đang mở (open now)",
        "Lúc (giờ Việt Nam)",
        "08/04/2026 11:00",
        "Tỷ lệ trực tuyến dưới chỉ tiêu (Online ratio below target)",
        "Sở Xây dựng",
        "online 64.0% < 80%",
        "became_overdue 14 ≥ 5",
    ):
        assert text in shown


def test_help_shows_examples_and_both_actions() -> None:
    result = run_cli("alerts", "--help")
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout and "exit codes:" in result.stdout
    assert "list" in result.stdout and "follow" in result.stdout
    listing = run_cli("alerts", "list", "--help")
    assert listing.returncode == 0
    assert "--recent N" in listing.stdout and "dossier-stream alerts list" in listing.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("alerts",), "the following arguments are required: ACTION"),
        (("alerts", "list", "--kind", "spike"), "argument --kind: invalid choice: 'spike'"),
        (("alerts", "list", "--recent", "-1"), "argument --recent: must be 0 or more, got -1"),
        (("alerts", "follow", "--redis-url", "http://x"), "argument --redis-url: "),
    ],
)
def test_usage_errors_exit_2_on_one_line(args: tuple[str, ...], complaint: str) -> None:
    result = run_cli(*args)
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert complaint in result.stderr.splitlines()[-1]


def test_the_documented_follow_line_is_what_the_documented_event_prints() -> None:
    doc = (ROOT / "docs" / "alerts-operations.md").read_text(encoding="utf-8")

    def example(name: str) -> str:
        return doc.split(f"<!-- example: {name} -->", 1)[1].split("```", 2)[1].split("\n", 1)[1]

    event = AlertEvent.model_validate_json(example("alert-event"))
    assert line(event) == example("follow-line").strip()

"""The cron evaluator: five fields in UTC, Vixie cron's rules, strict parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from buildcoord.cron import CronSchedule
from buildcoord.errors import InvalidInput


def at(text: str) -> datetime:
    """A UTC time from 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * *", "2026-01-01 00:00", "2026-01-01 00:01"),
        ("0 */6 * * *", "2026-01-01 00:00", "2026-01-01 06:00"),
        ("30 2 * * *", "2026-01-01 02:30", "2026-01-02 02:30"),
        ("0 0 1 * *", "2026-01-15 12:00", "2026-02-01 00:00"),
        ("0 9 * * mon-fri", "2026-01-02 10:00", "2026-01-05 09:00"),  # Friday -> Monday
        ("0 0 * * 7", "2026-01-01 00:00", "2026-01-04 00:00"),  # 7 is Sunday too
        ("0 0 29 feb *", "2026-01-01 00:00", "2028-02-29 00:00"),
        ("15,45 1-3/2 * * *", "2026-01-01 01:15", "2026-01-01 01:45"),
        ("5/20 * * * *", "2026-01-01 00:46", "2026-01-01 01:05"),
        ("0 0 1 jan *", "2026-03-01 00:00", "2027-01-01 00:00"),
        ("@daily", "2026-01-01 00:00", "2026-01-02 00:00"),
        ("@hourly", "2026-01-01 00:59", "2026-01-01 01:00"),
        ("0 0 31 12 *", "2026-12-31 00:00", "2027-12-31 00:00"),
    ],
)
def test_the_next_time_is_the_first_matching_minute_strictly_after(
    expression: str, after: str, expected: str
) -> None:
    assert CronSchedule.parse(expression).next_after(at(after)) == at(expected)


def test_a_restricted_day_of_month_and_day_of_week_match_either_as_in_vixie_cron() -> None:
    schedule = CronSchedule.parse("0 0 13 * fri")
    assert schedule.matches(at("2026-01-13 00:00"))  # a Tuesday the 13th
    assert schedule.matches(at("2026-01-02 00:00"))  # a Friday the 2nd
    assert not schedule.matches(at("2026-01-03 00:00"))


def test_a_star_day_field_leaves_only_the_other_one_restricting() -> None:
    schedule = CronSchedule.parse("0 0 * * sun")
    assert schedule.matches(at("2026-01-04 00:00"))
    assert not schedule.matches(at("2026-01-05 00:00"))


def test_seconds_of_the_starting_time_are_ignored() -> None:
    schedule = CronSchedule.parse("* * * * *")
    start = datetime(2026, 1, 1, 0, 0, 59, 999, tzinfo=UTC)
    assert schedule.next_after(start) == at("2026-01-01 00:01")


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("60 * * * *", "outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("* * 0 * *", "outside 1-31"),
        ("* * * 13 *", "outside 1-12"),
        ("* * * * 8", "outside 0-7"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty value"),
        ("x * * * *", "not a number"),
        ("* * * foo *", "not a number or a name"),
        ("-1 * * * *", "not a number"),
        ("0 0 30 2 *", "never fires"),
        ("@reboot", "expected 5 fields"),
        ("\u0661 * * * *", "not a number"),  # an Arabic-Indic digit one
    ],
)
def test_an_invalid_expression_is_refused_with_the_field_and_the_reason(
    expression: str, why: str
) -> None:
    with pytest.raises(InvalidInput, match="invalid schedule") as caught:
        CronSchedule.parse(expression)
    assert why in str(caught.value)


def test_an_expression_is_kept_with_its_spacing_normalised() -> None:
    assert CronSchedule.parse("  0   3 * *  * ").expression == "0 3 * * *"

"""Five-field cron expressions (minute hour day-of-month month day-of-week), evaluated in UTC.

The syntax is Vixie cron's: ``*``, numbers, ranges ``a-b``, steps ``*/n``, ``a-b/n`` and
``a/n``, lists ``a,b``, month and weekday names (``jan``, ``mon``), day-of-week 0-7 with 0 and
7 both Sunday, and the aliases ``@hourly @daily @midnight @weekly @monthly @yearly
@annually``. As in Vixie cron, when both day fields are restricted a day matches if either
does. Anything else is refused with the reason, before it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from buildcoord.errors import InvalidInput

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names for lowest..): the five fields in order.
_FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
# A schedule that matches nothing in this long never fires (Feb 30, or Feb 29 on a weekday
# that needs up to 28 years to come round).
_SEARCH_YEARS = 30


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression: the set of values each field allows."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    any_day: bool  # day of month starts with '*' (Vixie cron's test)
    any_weekday: bool  # day of week starts with '*'

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse and check an expression; InvalidInput says which field is wrong and why."""
        text = " ".join(expression.split())
        fields = _ALIASES.get(text.lower(), text).split(" ")
        if len(fields) != 5:
            raise InvalidInput(
                f"invalid schedule {expression!r}: expected 5 fields (minute hour day-of-month"
                f" month day-of-week) or an alias such as @daily, got {len(fields)}"
            )
        values = [
            _parse_field(raw, *spec, expression=expression)
            for raw, spec in zip(fields, _FIELDS, strict=True)
        ]
        schedule = cls(
            expression=text,
            minutes=values[0],
            hours=values[1],
            days=values[2],
            months=values[3],
            weekdays=frozenset(day % 7 for day in values[4]),
            any_day=fields[2].startswith("*"),
            any_weekday=fields[4].startswith("*"),
        )
        if schedule._next(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise InvalidInput(f"invalid schedule {expression!r}: it never fires")
        return schedule

    def matches(self, at: datetime) -> bool:
        """Whether the minute containing ``at`` (UTC) is one the schedule fires in."""
        at = at.astimezone(UTC)
        return (
            at.minute in self.minutes
            and at.hour in self.hours
            and at.month in self.months
            and self._day_matches(at)
        )

    def next_after(self, after: datetime) -> datetime:
        """The first minute strictly after ``after`` at which the schedule fires (UTC)."""
        found = self._next(after)
        if found is None:  # parse() refused schedules that never fire
            raise InvalidInput(f"schedule {self.expression!r} never fires")
        return found

    def _day_matches(self, at: datetime) -> bool:
        in_month = at.day in self.days
        in_week = (at.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            # One '*' field matches every day, so only the other one restricts.
            return in_month and in_week
        return in_month or in_week

    def _next(self, after: datetime) -> datetime | None:
        at = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = at + timedelta(days=366 * _SEARCH_YEARS)
        while at < limit:
            if at.month not in self.months:
                year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
                at = at.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                return at
        return None


def _parse_field(
    raw: str, name: str, low: int, high: int, names: list[str], *, expression: str
) -> frozenset[int]:
    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"invalid schedule {expression!r}: {name} field {raw!r}: {why}")

    def number(text: str) -> int:
        lowered = text.lower()
        if lowered in names:
            return names.index(lowered) + low
        if not text.isdigit() or not text.isascii():
            raise bad(f"{text!r} is not a number" + (" or a name" if names else ""))
        value = int(text)
        if not low <= value <= high:
            raise bad(f"{value} is outside {low}-{high}")
        return value

    allowed: set[int] = set()
    for part in raw.split(","):
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or not step_text.isascii() or int(step_text) < 1:
                raise bad(f"step {step_text!r} is not a positive number")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = number(start), number(end)
            if first > last:
                raise bad(f"range {span!r} runs backwards")
        elif span:
            first = number(span)
            # 'a/n' means a, a+n, ... up to the field's end; a plain 'a' is just a.
            last = high if slash else first
        else:
            raise bad("empty value")
        allowed.update(range(first, last + 1, step))
    return frozenset(allowed)

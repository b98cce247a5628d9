"""A failure repeating every second is logged once with its traceback, then once a minute,
and its end once."""

from __future__ import annotations

import logging

import pytest

from buildcoord.services.streaks import FailureStreak


def test_a_streak_is_logged_at_its_start_once_a_minute_and_at_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    streak = FailureStreak(
        logging.getLogger("test.streak"), "maintenance pass", monotonic=lambda: now[0]
    )
    with caplog.at_level(logging.INFO, logger="test.streak"):
        for _ in range(120):  # two minutes of a database away, one failure a second
            try:
                raise ConnectionError("database unavailable")
            except ConnectionError as exc:
                streak.failed(exc)
            now[0] += 1.0
        streak.succeeded()
        streak.succeeded()

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "maintenance pass failed; retrying",
        "maintenance pass still failing (61 times): database unavailable",
        "maintenance pass works again after 120 failures",
    ]
    assert caplog.records[0].exc_info is not None

"""Which panels a change refreshes on open pages."""

from __future__ import annotations

from datetime import UTC, datetime

from buildcoord.models import Event
from buildcoord.web.pages.changes import STREAMED, panels_changed_by


def event(kind: str) -> Event:
    return Event(
        id=1,
        at=datetime(2026, 12, 6, tzinfo=UTC),
        actor="t",
        kind=kind,
        subject="s",
        before=None,
        after=None,
    )


def test_a_job_change_refreshes_the_overview_and_the_queue() -> None:
    assert panels_changed_by([event("job.claimed")]) == {"overview", "queue"}


def test_an_alert_repeat_refreshes_only_the_alerts_not_the_overview() -> None:
    assert panels_changed_by([event("alert.repeated")]) == {"alerts"}
    assert panels_changed_by([event("alert.opened")]) == {"overview", "alerts"}


def test_an_event_no_panel_shows_refreshes_nothing() -> None:
    assert panels_changed_by([event("lock.acquired"), event("token.created")]) == set()


def test_the_stream_names_each_panel_a_change_can_touch() -> None:
    assert set(STREAMED) == {"overview", "servers", "queue", "alerts", "messages", "branches"}

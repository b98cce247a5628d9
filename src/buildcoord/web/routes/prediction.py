"""/api/v1/predict: build durations, the best server for a branch, history statistics."""

from __future__ import annotations

from fastapi import APIRouter

from buildcoord.models import (
    BuildRecord,
    DurationEstimate,
    HistoryStats,
    JobForecast,
    Recommendation,
)
from buildcoord.services.prediction import STATS_WINDOW
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import limit_query

router = APIRouter(prefix="/predict", tags=["prediction"])


@router.get("/duration")
def duration(
    branch: str,
    services: Services,
    caller: Caller,
    server: str | None = None,
    trigger: str | None = None,
) -> DurationEstimate:
    """p50 and the p10-p90 band, in seconds, for the next build of a branch (on a server,
    started by a trigger)."""
    return services.prediction.duration(branch, server, trigger=trigger, by=caller)


@router.get("/recommend")
def recommend(
    branch: str, services: Services, caller: Caller, trigger: str | None = None
) -> Recommendation:
    """The server with the earliest predicted finish for a build of branch, and why."""
    return services.prediction.recommend(branch, trigger=trigger, by=caller)


@router.get("/stats")
def stats(services: Services, caller: Caller) -> HistoryStats:
    """Finished builds by branch, server, hour of day and day of week (UTC)."""
    return services.prediction.stats(by=caller)


@router.get("/history")
def history(
    services: Services, caller: Caller, limit: int = limit_query(10_000, STATS_WINDOW)
) -> list[BuildRecord]:
    """The most recently finished attempts (``limit``), oldest first: every build that ran
    and ended, with its queue, start and finish times, server, result and trigger (what
    ``buildcoord predict export`` writes as a history file)."""
    return services.prediction.history(limit, by=caller)


@router.get("/queue")
def queue(services: Services, caller: Caller) -> list[JobForecast]:
    """Forecasts of running jobs (remaining time) and queued ones (start and finish)."""
    return services.prediction.forecast_jobs(by=caller)

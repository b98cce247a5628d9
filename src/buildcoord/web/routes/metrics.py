"""/metrics: Prometheus' text format, every figure read from the database at each scrape, so
every worker and coordinator of one database reports the same (a process's own counters
would differ per process). A read token is enough; the route is outside /api/v1, as
Prometheus expects, and outside the API's OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from buildcoord.models import DURATION_BUCKETS, Server, StoreFigures
from buildcoord.web.auth import Caller, Services

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(services: Services, caller: Caller) -> Response:
    """The fleet's figures in Prometheus' text exposition format."""
    figures, servers = services.health.scrape(by=caller)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(figures, servers))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _Figures(Collector):
    """One scrape's figures as metric families."""

    def __init__(self, figures: StoreFigures, servers: list[Server]) -> None:
        self.figures = figures
        self.servers = servers

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        jobs = GaugeMetricFamily("buildcoord_jobs", "Jobs by status.", labels=["status"])
        for status in ("queued", "blocked", "running", "succeeded", "failed", "cancelled"):
            jobs.add_metric([status], figures.jobs_by_status.get(status, 0))
        yield jobs
        builds = CounterMetricFamily(
            "buildcoord_builds",
            "Finished builds by branch and result; result lost: an attempt whose lease ended"
            " and whose job was requeued.",
            labels=["branch", "result"],
        )
        for branch, result, count in figures.builds:
            builds.add_metric([branch, result], count)
        yield builds
        durations = HistogramMetricFamily(
            "buildcoord_build_duration_seconds",
            "Durations of passed builds by branch.",
            labels=["branch"],
        )
        for histogram in figures.durations:
            buckets = [
                (f"{bound:g}", count)
                for bound, count in zip(DURATION_BUCKETS, histogram.buckets, strict=True)
            ]
            durations.add_metric(
                [histogram.branch],
                [*buckets, ("+Inf", histogram.count)],
                histogram.total_seconds,
            )
        yield durations
        claims = CounterMetricFamily(
            "buildcoord_claims", "Jobs claimed, by server.", labels=["server"]
        )
        for name, count in figures.claims:
            claims.add_metric([name], count)
        yield claims
        up = GaugeMetricFamily(
            "buildcoord_server_up", "1 if the server is online.", labels=["server"]
        )
        age = GaugeMetricFamily(
            "buildcoord_server_heartbeat_age_seconds",
            "Seconds since the server's last heartbeat.",
            labels=["server"],
        )
        quarantined = GaugeMetricFamily(
            "buildcoord_server_quarantined", "1 if the server gets no new work.", labels=["server"]
        )
        for server in self.servers:
            up.add_metric([server.name], 1 if server.status in ("online", "busy") else 0)
            if server.heartbeat_age_seconds is not None:
                age.add_metric([server.name], server.heartbeat_age_seconds)
            quarantined.add_metric([server.name], 1 if server.quarantined_at is not None else 0)
        yield up
        yield age
        yield quarantined
        yield GaugeMetricFamily(
            "buildcoord_locks_held", "Lock leases held now.", value=figures.locks_held
        )
        alerts = GaugeMetricFamily(
            "buildcoord_alerts_open",
            "Open alerts by rule and severity.",
            labels=["rule", "severity"],
        )
        for rule, severity, count in figures.alerts_open:
            alerts.add_metric([rule, severity], count)
        yield alerts
        given_up = GaugeMetricFamily(
            "buildcoord_notifications_given_up",
            "Notifications given up after every attempt failed, by notifier.",
            labels=["notifier"],
        )
        for notifier, count in figures.deliveries_given_up:
            given_up.add_metric([notifier], count)
        yield given_up
        failing = GaugeMetricFamily(
            "buildcoord_notifications_failing",
            "Notifications whose last attempt failed, waiting to be tried again, by notifier.",
            labels=["notifier"],
        )
        for notifier, count in figures.deliveries_failing:
            failing.add_metric([notifier], count)
        yield failing

"""/metrics: Prometheus' text, parsed with prometheus_client's own parser; a token needed."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.models import Metrics
from inprocess import ADMIN_TOKEN, RegisterAgent, bearer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def scrape(http: TestClient, token: str = ADMIN_TOKEN) -> dict[str, Any]:
    response = http.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(family: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for sample in family.samples
    }


def test_metrics_report_jobs_builds_durations_claims_servers_locks_and_alerts(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    agent = register_agent("build1")
    register_agent("build2")
    agent.client.heartbeat("build1", Metrics())
    for result, seconds in (("succeeded", 20.0), ("succeeded", 400.0), ("failed", 5.0)):
        operator.submit_job("main", COMMIT)
        job = agent.client.claim_job("build1")
        assert job is not None
        agent.client.complete_job(
            job.id,
            status=result,
            duration=seconds,
            server="build1",
            fencing_token=job.fencing_token,
        )
    operator.submit_job("main", COMMIT)
    operator.acquire_lock("deploy", holder="ci")

    families = scrape(http)

    jobs = samples(families["buildcoord_jobs"])
    assert jobs[("buildcoord_jobs", (("status", "queued"),))] == 1
    assert jobs[("buildcoord_jobs", (("status", "succeeded"),))] == 2
    builds = samples(families["buildcoord_builds"])
    assert builds[("buildcoord_builds_total", (("branch", "main"), ("result", "failed")))] == 1
    durations = samples(families["buildcoord_build_duration_seconds"])
    assert durations[("buildcoord_build_duration_seconds_count", (("branch", "main"),))] == 2
    assert durations[("buildcoord_build_duration_seconds_sum", (("branch", "main"),))] == 420
    bucket = "buildcoord_build_duration_seconds_bucket"
    assert durations[(bucket, (("branch", "main"), ("le", "30")))] == 1
    assert durations[(bucket, (("branch", "main"), ("le", "600")))] == 2
    up = samples(families["buildcoord_server_up"])
    assert up == {
        ("buildcoord_server_up", (("server", "build1"),)): 1,
        ("buildcoord_server_up", (("server", "build2"),)): 0,
    }
    assert samples(families["buildcoord_locks_held"]) == {("buildcoord_locks_held", ()): 1}
    assert samples(families["buildcoord_claims"]) == {
        ("buildcoord_claims_total", (("server", "build1"),)): 3,
        ("buildcoord_claims_total", (("server", "build2"),)): 0,
    }


def test_metrics_need_a_token_and_a_read_token_is_enough(
    http: TestClient, operator: Client
) -> None:
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers=bearer("not-a-token")).status_code == 401
    read = operator.create_token("prometheus", kind="read")
    assert "buildcoord_jobs" in scrape(http, read.secret)


def test_the_shipped_grafana_dashboard_and_alert_rules_use_only_exported_metrics(
    http: TestClient,
) -> None:
    import json
    import re
    from pathlib import Path

    import yaml

    docs = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((docs / "prometheus-alerts.yml").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"buildcoord_[a-z_]+", expr)}
    # Every family announces its name and type, with or without samples yet.
    text = http.get("/metrics", headers=bearer(ADMIN_TOKEN)).text
    announced = set(re.findall(r"^# TYPE (buildcoord_[a-z_]+)", text, re.MULTILINE))
    missing = {
        name
        for name in used
        if name not in announced
        and re.sub(r"_(total|bucket|sum|count)$", "", name) not in announced
    }
    assert len(used) >= 8
    assert missing == set()

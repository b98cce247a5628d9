"""GitHub issues as a notifier, as the seed's health workflow meant them but working: an issue
per alert with the seed's titles and labels, a comment at most every ``repeat_minutes`` while
it stays open, and a comment and close when it resolves."""

from __future__ import annotations

import json

import httpx

from buildcoord.models import Alert
from buildcoord.notifier_config import NotifierSettings
from buildcoord.notifiers.http import DeliveryFailed, call

BUILD_RULES = frozenset({"branch_broken", "failure_rate", "black_hole"})
"""Rules about builds: their issues are the seed's build-failure kind; the others are its
health-alert kind."""


def issue_title_and_labels(alert: Alert) -> tuple[str, list[str]]:
    """The seed's title and labels for the alert's kind, the alert's summary after the title."""
    if alert.rule in BUILD_RULES:
        return f"❌ Build Failure Detected: {alert.summary}", ["build-failure", "automated"]
    return (
        f"🚨 Build Server Health Alert: {alert.summary}",
        ["health-alert", "automated", "priority-high"],
    )


def issue_body(alert: Alert, event: str) -> str:
    """The Markdown of an issue or of a comment on it."""
    heading = {
        "opened": "## 🚨 Alert opened",
        "test": "## buildcoord test message",
        "reminder": "## ⏰ Still open",
        "resolved": "## ✅ Resolved",
    }.get(event, f"## {event}")
    lines = [
        heading,
        "",
        f"**{alert.summary}**",
        "",
        f"- Rule: `{alert.rule}` ({alert.severity})",
        f"- Subject: `{alert.subject}`",
        f"- Opened: {alert.opened_at.isoformat()}; seen {alert.count} time(s),"
        f" last {alert.last_seen_at.isoformat()}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"- Resolved: {alert.resolved_at.isoformat()}")
    if alert.details:
        lines += ["", "```json", json.dumps(alert.details, indent=2, sort_keys=True), "```"]
    lines += [
        "",
        f"`buildcoord alerts show {alert.id}` · `buildcoord alerts ack {alert.id}`",
        "",
        "_Created automatically by buildcoord._",
    ]
    return "\n".join(lines)


def send_issue_update(
    notifier: NotifierSettings,
    alert: Alert,
    event: str,
    token: str,
    receipt: str | None,
    *,
    client: httpx.Client | None = None,
) -> str | None:
    """Open the alert's issue (opened, test), comment on it (reminder), or comment and close
    it (resolved); return the issue's number (the receipt the later events need)."""
    issues = f"{notifier.url.rstrip('/')}/repos/{notifier.repo}/issues"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }

    def send(method: str, url: str, document: dict[str, object]) -> httpx.Response:
        body = json.dumps(document).encode()
        return call(notifier, method, url, body, headers, client=client)

    if event in ("opened", "test"):
        title, labels = issue_title_and_labels(alert)
        created = send(
            "POST", issues, {"title": title, "body": issue_body(alert, event), "labels": labels}
        )
        try:
            number = str(int(created.json()["number"]))
        except (ValueError, KeyError, TypeError):
            raise DeliveryFailed("GitHub answered without an issue number") from None
        if event == "test":
            send("PATCH", f"{issues}/{number}", {"state": "closed"})
        return number
    if receipt is None:
        return None  # its opening was never filed: nothing to comment on or close
    send("POST", f"{issues}/{receipt}/comments", {"body": issue_body(alert, event)})
    if event == "resolved":
        send("PATCH", f"{issues}/{receipt}", {"state": "closed", "state_reason": "completed"})
    return receipt

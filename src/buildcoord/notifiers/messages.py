"""What each kind of notifier is sent: the JSON webhook's body and signature, Slack's text."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from buildcoord.models import Alert
from buildcoord.notifier_config import NotifierSettings

SIGNATURE_HEADER = "X-Buildcoord-Signature-256"
EVENT_HEADER = "X-Buildcoord-Event"


def alert_fields(alert: Alert) -> dict[str, Any]:
    """The alert as the webhook's JSON carries it (times in ISO 8601, UTC)."""
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "summary": alert.summary,
        "details": alert.details,
        "count": alert.count,
        "opened_at": alert.opened_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "resolved_at": None if alert.resolved_at is None else alert.resolved_at.isoformat(),
        "acknowledged_by": alert.acknowledged_by,
    }


def webhook_body(notifier: NotifierSettings, alert: Alert, event: str) -> bytes:
    """The generic webhook's JSON body."""
    document = {"event": event, "notifier": notifier.name, "alert": alert_fields(alert)}
    return json.dumps(document, sort_keys=True).encode()


def webhook_headers(body: bytes, event: str, secret: str) -> dict[str, str]:
    """The event header, and the body's HMAC-SHA256 under ``secret`` (as GitHub signs)."""
    headers = {EVENT_HEADER: event}
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers[SIGNATURE_HEADER] = f"sha256={digest}"
    return headers


def slack_text(alert: Alert, event: str) -> str:
    """One line for a chat channel."""
    if event == "resolved":
        return f"RESOLVED {alert.rule}: {alert.summary}"
    if event == "test":
        return f"buildcoord test message: {alert.summary}"
    prefix = "STILL " if event == "reminder" else ""
    return f"{prefix}{alert.severity.upper()} {alert.rule}: {alert.summary}"


def slack_body(alert: Alert, event: str) -> bytes:
    """A Slack-compatible incoming webhook's body."""
    return json.dumps({"text": slack_text(alert, event)}).encode()

"""Telling people about alerts: one sender per notifier kind (a JSON webhook, Slack, GitHub
issues, e-mail), alert in, message out.

A bottom layer: it knows the alert model and the notifier's settings, nothing of the store or
the services. A send either returns (the receiver took it) or raises DeliveryFailed with a
reason that never contains the notifier's URL or secret (a Slack URL is itself a secret).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from buildcoord.models import Alert
from buildcoord.notifier_config import NotifierSettings
from buildcoord.notifiers.email import send_mail
from buildcoord.notifiers.github import send_issue_update
from buildcoord.notifiers.http import DeliveryFailed, post
from buildcoord.notifiers.messages import slack_body, webhook_body, webhook_headers

__all__ = ["DeliveryFailed", "send"]


def send(
    notifier: NotifierSettings,
    alert: Alert,
    event: str,
    *,
    receipt: str | None = None,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> str | None:
    """Tell ``notifier`` about ``event`` (opened, reminder, resolved, test) of ``alert``;
    return what the receiver gave back that later events need (a GitHub issue's number),
    given to those as ``receipt``."""
    env = os.environ if environ is None else environ
    if notifier.kind == "github":
        token = env.get(notifier.secret_env, "")
        if not token:
            raise DeliveryFailed(f"environment variable {notifier.secret_env} is not set")
        return send_issue_update(notifier, alert, event, token, receipt, client=client)
    if notifier.kind == "webhook":
        body = webhook_body(notifier, alert, event)
        secret = ""
        if notifier.secret_env:
            secret = env.get(notifier.secret_env, "")
            if not secret:
                raise DeliveryFailed(f"environment variable {notifier.secret_env} is not set")
        headers = webhook_headers(body, event, secret)
        post(notifier, body, headers, client=client)
        return None
    if notifier.kind == "slack":
        post(notifier, slack_body(alert, event), {}, client=client)
        return None
    if notifier.kind == "email":
        password = ""
        if notifier.secret_env:
            password = env.get(notifier.secret_env, "")
            if not password:
                raise DeliveryFailed(f"environment variable {notifier.secret_env} is not set")
        send_mail(notifier, alert, event, password)
        return None
    raise DeliveryFailed(f"notifier kind {notifier.kind!r} cannot send")

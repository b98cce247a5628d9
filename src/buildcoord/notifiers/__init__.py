"""Telling people about alerts: one sender per notifier kind, alert in, message out.

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
from buildcoord.notifiers.http import DeliveryFailed, post
from buildcoord.notifiers.messages import slack_body, webhook_body, webhook_headers

__all__ = ["DeliveryFailed", "send"]


def send(
    notifier: NotifierSettings,
    alert: Alert,
    event: str,
    *,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> None:
    """Tell ``notifier`` about ``event`` (opened, reminder, resolved, test) of ``alert``."""
    env = os.environ if environ is None else environ
    if notifier.kind == "webhook":
        body = webhook_body(notifier, alert, event)
        secret = ""
        if notifier.secret_env:
            secret = env.get(notifier.secret_env, "")
            if not secret:
                raise DeliveryFailed(f"environment variable {notifier.secret_env} is not set")
        headers = webhook_headers(body, event, secret)
        post(notifier, body, headers, client=client)
    elif notifier.kind == "slack":
        post(notifier, slack_body(alert, event), {}, client=client)
    else:  # parse_notifiers admits no other kind
        raise DeliveryFailed(f"notifier kind {notifier.kind!r} cannot send")

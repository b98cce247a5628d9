"""One POST to a notifier, bounded by its timeout, with a failure reason safe to record."""

from __future__ import annotations

import httpx

from buildcoord import __version__
from buildcoord.notifier_config import NotifierSettings


class DeliveryFailed(Exception):
    """The receiver did not take the message; the reason is safe to store and show."""


def post(
    notifier: NotifierSettings,
    body: bytes,
    headers: dict[str, str],
    *,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST ``body`` (JSON) to the notifier's URL; DeliveryFailed unless it answers 2xx."""
    return call(notifier, "POST", notifier.url, body, headers, client=client)


def call(
    notifier: NotifierSettings,
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """Send one request within the notifier's timeout; DeliveryFailed unless it answers 2xx."""
    sent_headers = {
        "Content-Type": "application/json",
        "User-Agent": f"buildcoord/{__version__}",
        **headers,
    }
    try:
        if client is not None:
            response = client.request(
                method, url, content=body, headers=sent_headers, timeout=notifier.timeout_seconds
            )
        else:
            with httpx.Client(timeout=notifier.timeout_seconds, follow_redirects=False) as own:
                response = own.request(method, url, content=body, headers=sent_headers)
    except httpx.TimeoutException:
        raise DeliveryFailed(f"no answer within {notifier.timeout_seconds:g} s") from None
    except httpx.HTTPError as error:
        # The exception's text may carry the URL: only its kind and the OS reason are kept.
        reason = getattr(error, "__cause__", None) or type(error).__name__
        raise DeliveryFailed(f"cannot reach the receiver: {_without_url(str(reason))}") from None
    if not 200 <= response.status_code < 300:
        text = response.text[:200].replace("\n", " ")
        raise DeliveryFailed(f"refused: HTTP {response.status_code} {text}".rstrip())
    return response


def _without_url(text: str) -> str:
    return " ".join(word for word in text.split() if "://" not in word)[:300]

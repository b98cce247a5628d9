"""The push webhook's guards: refusals before the body is read, size and concurrency limits,
replayed deliveries, and pushes of commits the repository does not have."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.config import Settings
from gitrepos import commit, git
from inprocess import ADMIN_TOKEN, BASE_URL, error_of
from store_rows import StoreState

from .push_webhook import WEBHOOK, push_payload, queued, signed, webhook_settings


@pytest.fixture
def settings() -> Settings:
    """Settings with a webhook secret and no quiet period (a push is queued at once)."""
    return webhook_settings()


Headers = Mapping[str, str] | Mapping[bytes, bytes]


@dataclass
class Body:
    """A request body sent in chunks that records whether the server asked for any of it."""

    chunks: Iterable[bytes]
    consumed: bool = False

    async def stream(self) -> AsyncIterator[bytes]:
        """The chunks, marking the body consumed as soon as the first one is asked for."""
        self.consumed = True
        for chunk in self.chunks:
            yield chunk


async def post(
    client: httpx.AsyncClient, body: Body, headers: Headers | None = None
) -> httpx.Response:
    """POST body to the webhook in chunks, with no Content-Length."""
    return await client.post(WEBHOOK, content=body.stream(), headers=headers or {})


def post_streamed(app: FastAPI, body: Body, headers: Headers | None = None) -> httpx.Response:
    """POST body to the in-process app over httpx's ASGI transport, which streams it."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await post(client, body, headers)

    return asyncio.run(send())


@pytest.mark.parametrize("settings", [Settings(admin_token=ADMIN_TOKEN)])
def test_webhooks_are_refused_before_the_body_is_read_when_no_secret_is_set(
    app: FastAPI, store_state: StoreState
) -> None:
    payload = push_payload("main", "1" * 40)
    body = Body([payload])
    before = store_state()
    message = error_of(post_streamed(app, body, signed(payload)), 403)
    assert "webhooks are off" in message
    assert "webhook_secret" in message
    assert body.consumed is False
    assert store_state() == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha1=abc"},
        {"X-Hub-Signature-256": "sha256=" + "z" * 64},
        {"X-Hub-Signature-256": "sha256=" + "0" * 63},
    ],
    ids=["missing", "sha1", "not-hex", "short"],
)
def test_a_push_without_a_well_formed_signature_is_refused_before_the_body_is_read(
    app: FastAPI, headers: dict[str, str]
) -> None:
    body = Body([push_payload("main", "1" * 40)])
    assert "X-Hub-Signature-256" in error_of(post_streamed(app, body, headers), 401)
    assert body.consumed is False


@pytest.mark.parametrize(
    "settings",
    [webhook_settings(webhook_max_bytes=4096)],
)
def test_a_streamed_payload_over_webhook_max_bytes_is_refused_while_it_is_read(
    app: FastAPI, operator: Client, origin: Path, store_state: StoreState
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    payload = push_payload("main", commit(origin)).replace(b"}", b"}" + b" " * 8192, 1)
    before = store_state()
    # Chunked, with no Content-Length: only counting the bytes as they come can refuse it.
    response = post_streamed(app, Body([payload[:1000], payload[1000:]]), signed(payload))
    assert "larger than 4096 bytes" in error_of(response, 413)
    assert store_state() == before


def test_a_payload_over_the_default_limit_of_one_mebibyte_is_refused(
    http: TestClient, operator: Client, origin: Path, store_state: StoreState
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    padding = b" " * (1024 * 1024)
    payload = push_payload("main", commit(origin)).replace(b"}", b"}" + padding, 1)
    before = store_state()
    error_of(http.post(WEBHOOK, content=payload, headers=signed(payload)), 413)
    assert store_state() == before


@pytest.mark.parametrize(
    "settings",
    [webhook_settings(webhook_max_concurrent=1)],
)
def test_a_webhook_over_the_concurrent_limit_is_refused_at_once_with_retry_after(
    app: FastAPI, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    new = commit(origin)
    payload = push_payload("main", new)
    extra = Body([payload])

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        reading = asyncio.Event()
        release = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield payload[:10]
            reading.set()
            await release.wait()
            yield payload[10:]

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            first = asyncio.create_task(
                client.post(WEBHOOK, content=slow(), headers=signed(payload))
            )
            await reading.wait()  # the first body is being read: it holds the only slot
            refused = await post(client, extra, signed(payload))
            release.set()
            accepted = await first
            later = await client.post(WEBHOOK, content=payload, headers=signed(payload))
            return refused, accepted, later

    refused, accepted, later = asyncio.run(scenario())
    assert "retry" in error_of(refused, 503)
    assert refused.headers["Retry-After"].isdigit()
    assert extra.consumed is False
    assert (accepted.status_code, accepted.json()["outcome"]) == (202, "queued")
    assert later.json()["outcome"] == "unchanged"  # the slot was given back
    assert queued(operator, "main") == [new]


def test_a_push_of_a_commit_the_repository_does_not_have_is_ignored_and_queues_nothing(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    payload = push_payload("main", "1" * 40)
    response = http.post(WEBHOOK, content=payload, headers=signed(payload))
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "ignored"
    assert "not the pushed commit" in response.json()["detail"]
    assert queued(operator, "main") == []


def test_a_push_of_an_older_commit_than_the_tip_is_ignored(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    older = commit(origin)
    newer = commit(origin)
    late = push_payload("main", older)  # delivered after the push of newer
    response = http.post(WEBHOOK, content=late, headers=signed(late))
    assert response.json()["outcome"] == "ignored"
    assert queued(operator, "main") == []
    assert git(origin, "rev-parse", "main") == newer


def test_a_replayed_delivery_is_refused_and_queues_nothing(
    http: TestClient, operator: Client, origin: Path, store_state: StoreState
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    first = push_payload("main", commit(origin))
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert (
        http.post(WEBHOOK, content=first, headers=signed(first, delivery=delivery)).status_code
        == 202
    )
    second = push_payload("main", commit(origin))
    before = store_state()
    message = error_of(
        http.post(WEBHOOK, content=second, headers=signed(second, delivery=delivery)), 409
    )
    assert delivery in message
    assert store_state() == before


def test_a_gitea_delivery_id_is_recorded_too(
    http: TestClient, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    payload = push_payload("main", commit(origin))
    headers = {**signed(payload), "X-Gitea-Delivery": "d5a7f1c2-0001"}
    assert http.post(WEBHOOK, content=payload, headers=headers).status_code == 202
    error_of(http.post(WEBHOOK, content=payload, headers=headers), 409)


@pytest.mark.parametrize(
    "delivery", ["x" * 101, "two words", "caf\u00e9"], ids=["long", "space", "non-ascii"]
)
def test_a_malformed_delivery_id_is_refused_before_the_body_is_read(
    app: FastAPI, delivery: str
) -> None:
    payload = push_payload("main", "1" * 40)
    body = Body([payload])
    headers = {**signed(payload), "X-GitHub-Delivery": delivery}
    encoded = {name.encode(): value.encode("utf-8") for name, value in headers.items()}
    response = post_streamed(app, body, encoded)
    assert "X-GitHub-Delivery" in error_of(response, 422)
    assert body.consumed is False

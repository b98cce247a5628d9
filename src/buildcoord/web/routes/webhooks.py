"""/api/v1/hooks/git: push webhooks from GitHub or Gitea (HMAC-signed, no bearer token).

Anyone may post here, so what the headers alone condemn is refused before any byte of the
body is read (see services/webhooks.py), at most ``webhook_max_concurrent`` webhooks are handled
at once per process, and a body is refused as soon as it exceeds ``webhook_max_bytes``.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from buildcoord.models import BranchCheck
from buildcoord.services import webhooks
from buildcoord.web.auth import Services

router = APIRouter(prefix="/hooks", tags=["webhooks"])

RETRY_AFTER_SECONDS = 5


@router.post("/git", status_code=status.HTTP_202_ACCEPTED)
async def git_push(request: Request, services: Services) -> BranchCheck:
    """Queue the pushed branch's new commit; the X-Hub-Signature-256 HMAC is the only auth.

    The signature covers the raw body, so the body is read as bytes, never re-serialised.
    """
    settings = services.settings
    signature = request.headers.get(webhooks.SIGNATURE_HEADER)
    delivery = webhooks.delivery_id(request.headers)
    webhooks.check_headers(settings.webhook_secret, signature, delivery)
    watch = services.branch_watch
    if not watch.push_slots.take():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"more than {watch.push_slots.limit} webhooks at once: retry in a few seconds",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    # The slot is held until the push is acted on: the body stays in memory until then.
    try:
        body = await _bounded_body(request, settings.webhook_max_bytes)
        return await run_in_threadpool(watch.receive_push, body, signature, delivery)
    finally:
        watch.push_slots.give_back()


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The raw body; 413 as soon as it exceeds limit bytes, whatever Content-Length says."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"webhook payload larger than {limit} bytes (the webhook_max_bytes setting)",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)

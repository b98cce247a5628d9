"""/api/v1/hooks/git: push webhooks from GitHub or Gitea (HMAC-signed, no bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from buildcoord.models import BranchCheck
from buildcoord.web.auth import Services

router = APIRouter(prefix="/hooks", tags=["hooks"])

MAX_PAYLOAD_BYTES = 25 * 1024 * 1024
"""GitHub's own cap on a webhook payload. Anyone may post here before the HMAC is checked,
so a larger body is refused while it is read, not held in memory whole."""


@router.post("/git", status_code=status.HTTP_202_ACCEPTED)
async def git_push(request: Request, services: Services) -> BranchCheck:
    """Queue the pushed branch's new commit; the X-Hub-Signature-256 HMAC is the only auth.

    The signature covers the raw body, so the body is read as bytes, never re-serialised.
    """
    body = await _bounded_body(request)
    signature = request.headers.get("x-hub-signature-256")
    return await run_in_threadpool(services.branch_watch.receive_push, body, signature)


async def _bounded_body(request: Request) -> bytes:
    """The raw body; 413 as soon as it exceeds MAX_PAYLOAD_BYTES."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"webhook payload larger than {MAX_PAYLOAD_BYTES} bytes",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)

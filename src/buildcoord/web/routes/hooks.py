"""/api/v1/hooks/git: push webhooks from GitHub or Gitea (HMAC-signed, no bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from buildcoord.models import BranchCheck
from buildcoord.web.auth import Services

router = APIRouter(prefix="/hooks", tags=["hooks"])


@router.post("/git", status_code=status.HTTP_202_ACCEPTED)
async def git_push(request: Request, services: Services) -> BranchCheck:
    """Queue the pushed branch's new commit; the X-Hub-Signature-256 HMAC is the only auth.

    The signature covers the raw body, so the body is read as bytes, never re-serialised.
    """
    body = await request.body()
    signature = request.headers.get("x-hub-signature-256")
    return await run_in_threadpool(services.branch_watch.receive_push, body, signature)

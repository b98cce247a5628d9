"""/api/v1/tokens: operator and read-only tokens."""

from __future__ import annotations

from fastapi import APIRouter, status

from buildcoord.models import IssuedToken, Token
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import RowId, TokenIn

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: TokenIn, services: Services, caller: Caller) -> IssuedToken:
    """Create a token; its secret is in the response and nowhere else."""
    return services.tokens.create(body.name, kind=body.kind, by=caller)


@router.get("")
def list_tokens(services: Services, caller: Caller) -> list[Token]:
    """List tokens (never their secrets)."""
    return services.tokens.list_tokens(by=caller)


@router.delete("/{token_id}")
def revoke(token_id: RowId, services: Services, caller: Caller) -> Token:
    """Revoke a token."""
    return services.tokens.revoke(token_id, by=caller)

"""The client's calls to /tokens: creating, listing and revoking bearer tokens."""

from __future__ import annotations

from buildcoord.client.transport import Transport
from buildcoord.models import IssuedToken, Token


class TokenEndpoints(Transport):
    """Bearer tokens."""

    def create_token(self, name: str, *, kind: str = "operator") -> IssuedToken:
        """Create a token."""
        data = self._call("POST", "/tokens", json={"name": name, "kind": kind})
        return self._parse(IssuedToken, data)

    def list_tokens(self) -> list[Token]:
        """List tokens."""
        return self._parse(list[Token], self._call("GET", "/tokens"))

    def revoke_token(self, token_id: int) -> Token:
        """Revoke a token."""
        return self._parse(Token, self._call("DELETE", f"/tokens/{token_id}"))

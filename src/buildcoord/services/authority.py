"""Who may do what: the permission rules every service applies to its caller.

Each rule names the kinds it allows, never the ones it refuses, so that a ``build`` (the
token a build runs with) passes none of them: only LogService.append lets a build in.
"""

from __future__ import annotations

from buildcoord.errors import Forbidden
from buildcoord.models import Principal


def require_operator(principal: Principal, action: str) -> None:
    """Allow operators (and the system) only."""
    if principal.kind not in ("operator", "system"):
        raise Forbidden(f"{action} needs an operator token")


def require_reader(principal: Principal, action: str) -> None:
    """Allow anyone authenticated to read (agents read only their own server's view)."""
    if principal.kind not in ("operator", "system", "read", "agent"):
        raise Forbidden(f"{action} needs a token")


def require_viewer(principal: Principal, action: str) -> None:
    """Allow operators and read-only tokens: what the whole fleet's messages are part of, which
    an agent (that reads only its own server's) may not see."""
    if principal.kind not in ("operator", "system", "read"):
        raise Forbidden(f"{action} needs an operator or read-only token")


def require_operator_or_agent(principal: Principal, action: str) -> None:
    """Allow operators and agents (each service then holds an agent to its own server)."""
    if principal.kind not in ("operator", "system", "agent"):
        raise Forbidden(f"{action} needs an operator or agent token")


def require_self_or_operator(principal: Principal, server: str, action: str) -> None:
    """Allow operators, or the agent of ``server`` acting as itself."""
    if principal.kind in ("operator", "system"):
        return
    if principal.kind == "agent" and principal.server == server:
        return
    if principal.kind == "agent":
        raise Forbidden(f"agent {principal.server} may not {action} as {server}")
    raise Forbidden(f"{action} needs an operator or {server}'s agent token")


def refuse_build(principal: Principal) -> None:
    """Refuse a build's token: it may append to its own job's log and do nothing else."""
    if principal.kind == "build":
        raise Forbidden(
            f"a build token may only append to the log of its own job ({principal.job_id})"
        )

"""The one error hierarchy: the web layer maps each class to an HTTP status in one place."""

from __future__ import annotations


class BuildcoordError(Exception):
    """Base of every error buildcoord raises on purpose; its message is meant for users."""

    status = 400


class InvalidInput(BuildcoordError):
    """A value failed validation (priority out of range, bad branch name, ...)."""

    status = 422


class NotFound(BuildcoordError):
    """The named job, server, lock, message or token does not exist."""

    status = 404


class Conflict(BuildcoordError):
    """The request is valid but the current state refuses it (wrong holder, stale token, ...)."""

    status = 409


class CommitKnown(Conflict):
    """A build of this branch at this commit is already queued, running or finished."""

    def __init__(self, message: str, *, job_id: int, job_status: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.job_status = job_status


class Unauthorized(BuildcoordError):
    """No credentials, or credentials that match no live token."""

    status = 401


class Forbidden(BuildcoordError):
    """Valid credentials that may not do this (an agent acting for another server)."""

    status = 403


class Unavailable(BuildcoordError):
    """The coordinator (or its database) cannot be reached."""

    status = 503

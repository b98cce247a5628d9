"""Job log rules: who may write a job's log, what an entry is, output truncation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buildcoord.clock import Clock
from buildcoord.errors import Forbidden, InvalidInput
from buildcoord.logformat import truncate_output
from buildcoord.models import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, LogEntry, Principal
from buildcoord.services.authority import require_reader, require_self_or_operator
from buildcoord.store import Store

KINDS = ("event", "command", "output")
LEVELS = ("info", "warning", "error", "success")
MESSAGE_LIMIT = 20_000
BATCH_LIMIT = 5_000

MAX_PAGE = 5000
"""The most log entries one read returns."""


class LogService:
    """Append to and read job logs."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def append(
        self,
        job_id: int,
        entries: Sequence[dict[str, Any]],
        *,
        server: str | None = None,
        fencing_token: int | None = None,
        by: Principal,
    ) -> int:
        """Append a batch; agents write only to jobs they hold, with their current token.

        A build writes only to its own job, under the lease its token was issued for: once
        the job finished or its lease was issued again, the store refuses it (409).
        """
        if by.kind == "build":
            fencing_token = self._build_lease(job_id, fencing_token, by)
        elif by.kind == "agent":
            if server is None or fencing_token is None:
                raise Forbidden("an agent writes a job log with its server name and fencing token")
            require_self_or_operator(by, server, "write job logs")
        elif by.kind not in ("operator", "system"):
            raise Forbidden("writing a job log needs an operator or agent token")
        if len(entries) > BATCH_LIMIT:
            raise InvalidInput(f"at most {BATCH_LIMIT} log entries per request")
        now = self.clock.now().timestamp()
        clean = [self._entry(raw, now) for raw in entries]
        return self.store.append_log_entries(
            job_id, clean, server=server, fencing_token=fencing_token
        )

    @staticmethod
    def _build_lease(job_id: int, fencing_token: int | None, by: Principal) -> int:
        """The fencing token a build writes under: its own token's, whatever it claims."""
        if by.job_id != job_id:
            raise Forbidden(f"a build token of job {by.job_id} may not write job {job_id}'s log")
        assert by.fencing_token is not None
        if fencing_token is not None and fencing_token != by.fencing_token:
            raise Forbidden(
                f"a build token of lease {by.fencing_token} may not write under lease "
                f"{fencing_token}"
            )
        return by.fencing_token

    def _entry(self, raw: dict[str, Any], now: float) -> dict[str, Any]:
        kind = raw.get("kind", "event")
        level = raw.get("level", "info")
        message = raw.get("message", "")
        if kind not in KINDS:
            raise InvalidInput(f"invalid log kind {kind!r}: expected event, command or output")
        if level not in LEVELS:
            raise InvalidInput(
                f"invalid log level {level!r}: expected info, warning, error or success"
            )
        if not isinstance(message, str):
            raise InvalidInput("a log message is text")
        message = message[:MESSAGE_LIMIT]
        details = raw.get("details")
        if details is not None and not isinstance(details, dict):
            raise InvalidInput("log details are a JSON object")
        if kind == "command" and details is not None and isinstance(details.get("output"), str):
            text, truncated = truncate_output(details["output"])
            details = {**details, "output": text, "truncated": truncated}
        at = raw.get("at")
        moment = now if at is None else _moment(at)
        return {"at": moment, "kind": kind, "level": level, "message": message, "details": details}

    def entries(
        self, job_id: int, *, after_id: int = 0, limit: int = MAX_PAGE, by: Principal
    ) -> list[LogEntry]:
        """Read a job's log after a cursor, at most ``limit`` entries (1 to MAX_PAGE)."""
        require_reader(by, "reading job logs")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}")
        return self.store.list_log_entries(job_id, after_id=after_id, limit=limit)


def _moment(at: object) -> float:
    """An entry's time in epoch seconds, within 2000-2100: a time outside would not convert
    back to a date when the log is read."""
    if (
        isinstance(at, bool)
        or not isinstance(at, int | float)
        or not EARLIEST_TIMESTAMP <= at <= LATEST_TIMESTAMP
    ):
        raise InvalidInput(
            f"invalid log entry time {at!r}: expected epoch seconds from "
            f"{EARLIEST_TIMESTAMP:.0f} (2000-01-01) to {LATEST_TIMESTAMP:.0f} (2100-01-01)"
        )
    return float(at)

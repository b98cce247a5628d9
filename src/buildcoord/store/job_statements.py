"""The job queue's hot-path SQL: the claim's and the completion's statements, prebuilt once.

Claim and complete run these statements on the driver's cursor (engine.Driver): building
SQLAlchemy statements, and executing them through Core, cost several times the database work
itself. Each is written once here, for both dialects unless noted, as a module-level constant.
"""

from __future__ import annotations

from buildcoord.store.engine import Sql, sql
from buildcoord.store.events import EVENT_TABLE

CLAIM_BATCH = 16
"""How many claimable rows one claim reads at a time while looking for a label match."""

# The columns a claim or completion returns, in the order job_rows.job_from_values reads them.
_JOB_COLUMNS = (
    'id, branch, "commit", priority, status, attempt, max_attempts, depends_on, labels,'
    " pending_deps, server, fencing_token, lease_expires_at, blocked_reason, reason,"
    ' created_at, queued_at, started_at, finished_at, exit_code, duration, "trigger"'
)

SERVER_LABELS = sql("SELECT labels, reported_labels FROM servers WHERE name = ?")
"""The claiming server's labels, the operator's and its agent's (models.matched_labels adds
its own server=<name>); no row means there is no such server."""

BUILDABLE_BRANCHES = sql("SELECT name FROM branches WHERE command IS NOT NULL")
"""Branches agents can build (they have a build command); agent claims skip the others."""

# What a claim reads of each candidate, and the lease columns it sets, after "UPDATE jobs SET".
_CANDIDATE_COLUMNS = "id, rank, labels, branch, attempt, fencing_token"
_LEASE = (
    "status = 'running', server = ?, fencing_token = fencing_token + 1,"
    " lease_expires_at = ?, started_at = ?, reason = NULL"
)


def _same(column: str, value: str) -> str:
    """``column = value`` in a form no index can serve, for the compare-and-set of a write.

    A write by primary key must find its row through the primary key. With a plain
    ``status = 'queued'`` (or ``server = ?``), PostgreSQL without statistics (a new table,
    before autovacuum's first ANALYZE) chose ix_jobs_status_lease (or ix_jobs_server_status)
    and read every queued job (or every job of the server) for each write: 4 ms per claim
    with 12,000 queued, in the benchmark's first minute.
    """
    return f"{column} || '' = {value}"


_QUEUED = _same("status", "'queued'")
_RUNNING = _same("status", "'running'")


def _candidates(*, paged: bool) -> Sql:
    """The claim's candidate read, straight off ix_jobs_claim_order, CLAIM_BATCH rows a page.

    The index's predicate is written out verbatim: with a bound 'queued' the planner cannot
    match the partial index. SQLite is also told the index by name: without statistics it
    preferred ix_jobs_status_lease and sorted every queued row (and ANALYZE can flip the
    choice), so the plan no longer depends on what the planner guesses. PostgreSQL locks the
    rows it returns and skips rows other claims hold; SQLite's BEGIN IMMEDIATE already
    serialises claims. Parameters: [after_rank, after_rank, after_id,] batch.
    """
    where = "status = 'queued' AND pending_deps = 0"
    if paged:
        where += " AND (rank > ? OR (rank = ? AND id > ?))"
    tail = f" WHERE {where} ORDER BY rank, id LIMIT ?"
    return sql(
        f"SELECT {_CANDIDATE_COLUMNS} FROM jobs INDEXED BY ix_jobs_claim_order{tail}",
        postgresql=f"SELECT {_CANDIDATE_COLUMNS} FROM jobs{tail} FOR UPDATE SKIP LOCKED",
    )


CANDIDATES = {paged: _candidates(paged=paged) for paged in (False, True)}
"""The claim's candidate reads by ``paged``: the first page, or the page after a (rank, id).

Each row is (id, rank, labels, branch, attempt, fencing_token). Parameters: [after_rank,
after_rank, after_id,] batch.
"""

LABELS_AND_CANDIDATES = sql(
    "",
    postgresql=f"SELECT s.labels, s.reported_labels, c.* FROM servers s LEFT JOIN LATERAL"
    f" ({CANDIDATES[False].postgresql.replace('%s', '?')}) c ON TRUE WHERE s.name = ?",
)
"""PostgreSQL: SERVER_LABELS and the first page of candidates in one round trip.

No row: no such server; one row of NULL candidate columns: nothing to claim. Parameters:
batch, server.
"""

CLAIM = sql(f"UPDATE jobs SET {_LEASE} WHERE id = ? AND {_QUEUED} RETURNING {_JOB_COLUMNS}")
"""Lease a queued job (compare-and-set on its status) and bump its fencing token.

Parameters: server, lease_expires_at, started_at, id.
"""

CLAIM_RECORDING = sql(
    "",
    postgresql=f"WITH claimed AS (UPDATE jobs SET {_LEASE} WHERE id = ? AND {_QUEUED}"
    f" RETURNING {_JOB_COLUMNS}),"
    f" recorded AS (INSERT INTO {EVENT_TABLE} SELECT ?, ?, ?, ?, ?, ? FROM claimed)"
    " SELECT * FROM claimed",
)
"""PostgreSQL: CLAIM and its event in one round trip; the event is written only if the
lease was taken. Parameters: those of CLAIM, then event_values(...)."""


def _complete_statement(*, by_server: bool, by_token: bool) -> Sql:
    """Finish the current lease (compare-and-set on status, and on holder and token if given).

    The duration, unless given, is now - started_at (never below 0). Parameters: status,
    finished_at, exit_code, reason, given duration, now, now, id[, server][, fencing_token].
    """
    where = f"id = ? AND {_RUNNING}"
    if by_server:
        where += f" AND {_same('server', '?')}"
    if by_token:
        where += " AND fencing_token = ?"
    return sql(
        "UPDATE jobs SET status = ?, finished_at = ?, exit_code = ?, reason = ?,"
        " lease_expires_at = NULL,"
        " duration = COALESCE(?, CASE WHEN ? - started_at > 0 THEN ? - started_at ELSE 0.0 END)"
        f" WHERE {where} RETURNING {_JOB_COLUMNS}"
    )


COMPLETE = {
    (by_server, by_token): _complete_statement(by_server=by_server, by_token=by_token)
    for by_server in (False, True)
    for by_token in (False, True)
}
"""Finish the current lease, by (checks the holder, checks the fencing token); parameters as
_complete_statement says."""

RELEASE_DEPENDENTS = sql(
    "UPDATE jobs SET pending_deps = pending_deps - 1"
    " WHERE id IN (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?)"
)
"""A job succeeded: each job that depends on it waits for one dependency less."""

RECORD_AND_RELEASE = sql(
    "",
    postgresql=f"WITH recorded AS (INSERT INTO {EVENT_TABLE} VALUES (?, ?, ?, ?, ?, ?))"
    f" {RELEASE_DEPENDENTS.postgresql.replace('%s', '?')}",
)
"""PostgreSQL: a completion's event and RELEASE_DEPENDENTS in one round trip.

Parameters: event_values(...), then the finished job's id.
"""

LEASE_STATE = sql("SELECT status, server, fencing_token FROM jobs WHERE id = ?")
"""What a refused lease-holder write is told about the job as it stands."""

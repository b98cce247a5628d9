"""Every statement the job tables (jobs, job_dependencies, events) run, each named, in one file.

These tables are the queue's hot path (claim and completion, a few thousand a second), so
their statements are prebuilt SQL text run on the driver's cursor (engine.Driver): building
SQLAlchemy statements, and executing them through Core, cost several times the database work
itself. Each is written once here for both dialects (``?`` placeholders), unless a PostgreSQL
variant is given; an empty SQLite text marks a PostgreSQL-only statement. A statement that
returns a job returns JOB_COLUMNS, which job_rows.job_from_row reads in order. A list of ids
is passed as one JSON array (ids_param), so one text serves any number of ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache

from buildcoord.store.engine import Sql, sql

CLAIM_BATCH = 16
"""How many claimable rows one claim reads at a time while looking for a label match."""

JOB_COLUMNS = (
    'id, branch, "commit", priority, status, attempt, max_attempts, depends_on, labels,'
    " pending_deps, server, fencing_token, lease_expires_at, blocked_reason, reason,"
    ' created_at, queued_at, started_at, finished_at, exit_code, duration, "trigger"'
)
"""The columns of a statement that returns a job, in the order job_rows.job_from_row reads."""

EVENT_TABLE = 'events (at, actor, kind, subject, "before", "after")'
"""The event columns written ("before" and "after" are SQL keywords: quoted)."""


def ids_param(ids: Iterable[int]) -> str:
    """A list of job ids as the one parameter an ``IN (ids)`` statement below takes."""
    return json.dumps([int(job_id) for job_id in ids])


# An id list from ids_param: json_each on SQLite, json_array_elements_text on PostgreSQL.
_IDS_SQLITE = "(SELECT value FROM json_each(?))"
_IDS_POSTGRESQL = "(SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(? AS json)))"


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

# -- events -------------------------------------------------------------------------------------

# One event row; parameters: events.event_values(...).
APPEND_EVENT = sql(f"INSERT INTO {EVENT_TABLE} VALUES (?, ?, ?, ?, ?, ?)")

_EVENT_READ = 'SELECT id, at, actor, kind, subject, "before", "after" FROM events WHERE id > ?'
# The event log after a cursor, in append order; parameters: after_id, limit.
LIST_EVENTS = sql(f"{_EVENT_READ} ORDER BY id LIMIT ?")
# One subject's events after a cursor, in append order; parameters: after_id, subject, limit.
LIST_SUBJECT_EVENTS = sql(f"{_EVENT_READ} AND subject = ? ORDER BY id LIMIT ?")
# The newest event's id, 0 for an empty log: where a change feed starts following.
# One kind of event after a cursor, in append order (a range of the primary key).
# Parameters: after_id, kind, limit.
LIST_KIND_EVENTS = sql(f"{_EVENT_READ} AND kind = ? ORDER BY id LIMIT ?")

LAST_EVENT_ID = sql("SELECT COALESCE(MAX(id), 0) FROM events")

# -- reading jobs -------------------------------------------------------------------------------

# One job by id.
GET_JOB = sql(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?")

# Whether a job exists (another noun checks before reading its own rows).
JOB_EXISTS = sql("SELECT id FROM jobs WHERE id = ?")

# What the branch, commit and status of a job are (artifact sets are recorded per job).
JOB_ORIGIN = sql('SELECT server, branch, "commit", status FROM jobs WHERE id = ?')

# A job's lease as it stands: status, server, fencing_token, attempt (holder writes check it).
LEASE_STATE = sql("SELECT status, server, fencing_token, attempt FROM jobs WHERE id = ?")

# How many jobs are in each status.
COUNT_BY_STATUS = sql("SELECT status, count(*) FROM jobs GROUP BY status")

# How many jobs wait claimable (queued, dependencies done), and since when the oldest has.
WAITING = sql(
    "SELECT count(*), min(queued_at) FROM jobs WHERE status = 'queued' AND pending_deps = 0"
)

# Every running job (the literal status lets it use ix_jobs_status_lease; no ORDER BY, or
# SQLite with statistics walks the whole table in id order instead: 13 ms at 100,000 jobs).
RUNNING = sql(f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running'")

# Every running job as (server, id), by id.
RUNNING_JOBS = sql("SELECT server, id FROM jobs WHERE status = 'running' ORDER BY id")

# The running jobs of one server (their ids).
RUNNING_ON_SERVER = sql("SELECT id FROM jobs WHERE server = ? AND status = 'running'")


@cache
def list_jobs(*, statuses: int, by_branch: bool, by_server: bool, claim_order: bool) -> Sql:
    """Jobs filtered by ``statuses`` status values and optionally branch and server, limited.

    ``claim_order``: waiting jobs last, then by rank and id (queued jobs as claims take them);
    else newest first. Parameters: *statuses, [branch,] [server,] limit.
    """
    where = []
    if statuses:
        where.append(f"status IN ({', '.join('?' * statuses)})")
    if by_branch:
        where.append("branch = ?")
    if by_server:
        where.append("server = ?")
    text = f"SELECT {JOB_COLUMNS} FROM jobs"
    if where:
        text += " WHERE " + " AND ".join(where)
    order = "pending_deps > 0, rank, id" if claim_order else "id DESC"
    return sql(f"{text} ORDER BY {order} LIMIT ?")


# -- submitting ---------------------------------------------------------------------------------

# Serialise the submissions of one branch by locking its row (SQLite: BEGIN IMMEDIATE does).
LOCK_BRANCH = sql("", postgresql="SELECT name FROM branches WHERE name = ? FOR UPDATE")

# The newest job of a branch at a commit, if any: (id, status).
KNOWN_COMMIT = sql(
    'SELECT id, status FROM jobs WHERE branch = ? AND "commit" = ? ORDER BY id DESC LIMIT 1'
)

_DEPENDENCY_READ = "SELECT id, status, blocked_by, blocked_reason FROM jobs WHERE id IN "

# The jobs of an ids_param, locked so that none finishes before a submission's insert.
LOCK_DEPENDENCIES = sql(
    f"{_DEPENDENCY_READ}{_IDS_SQLITE} ORDER BY id",
    postgresql=f"{_DEPENDENCY_READ}{_IDS_POSTGRESQL} ORDER BY id FOR UPDATE",
)

# The jobs of an ids_param as (id, status, blocked_by, blocked_reason), by id.
DEPENDENCIES = sql(
    f"{_DEPENDENCY_READ}{_IDS_SQLITE} ORDER BY id",
    postgresql=f"{_DEPENDENCY_READ}{_IDS_POSTGRESQL} ORDER BY id",
)

# A new job; parameters in the order of the column list.
INSERT_JOB = sql(
    'INSERT INTO jobs (branch, "commit", priority, status, attempt, max_attempts, labels,'
    " depends_on, pending_deps, rank, fencing_token, blocked_reason, blocked_by, created_at,"
    ' queued_at, "trigger") VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)'
    f" RETURNING {JOB_COLUMNS}"
)

# One edge of the dependency graph: (job_id, depends_on_id).
INSERT_DEPENDENCY = sql("INSERT INTO job_dependencies (job_id, depends_on_id) VALUES (?, ?)")

# -- claiming -----------------------------------------------------------------------------------

# The claiming server's labels, the operator's and its agent's; no row: no such server.
SERVER_LABELS = sql("SELECT labels, reported_labels, quarantined_at FROM servers WHERE name = ?")

# Branches agents can build (they have a build command); agent claims skip the others.
BUILDABLE_BRANCHES = sql("SELECT name FROM branches WHERE command IS NOT NULL")

# One job, if a claim could take it now (queued, no dependency pending): what an agent must
# match to be told about it. Parameters: id.
CLAIMABLE_JOB = sql(
    "SELECT id, rank, labels, branch FROM jobs WHERE id = ? AND status = 'queued'"
    " AND pending_deps = 0"
)

# What a claim reads of each candidate, and the lease columns it sets, after "UPDATE jobs SET".
_CANDIDATE_COLUMNS = "id, rank, labels, branch, attempt, fencing_token"
_LEASE = (
    "status = 'running', server = ?, fencing_token = fencing_token + 1,"
    " lease_expires_at = ?, started_at = ?, reason = NULL"
)


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


# The claim's candidate reads by ``paged``: the first page, or the page after a (rank, id);
# rows of (id, rank, labels, branch, attempt, fencing_token).
CANDIDATES = {paged: _candidates(paged=paged) for paged in (False, True)}

# PostgreSQL: SERVER_LABELS and the first page of candidates in one round trip. No row: no
# such server; one row of NULL candidate columns: nothing to claim. Parameters: batch, server.
LABELS_AND_CANDIDATES = sql(
    "",
    postgresql=f"SELECT s.labels, s.reported_labels, s.quarantined_at, c.* FROM servers s"
    " LEFT JOIN LATERAL"
    f" ({CANDIDATES[False].postgresql.replace('%s', '?')}) c ON TRUE WHERE s.name = ?",
)

# Lease a queued job (compare-and-set on its status), bumping its fencing token.
# Parameters: server, lease_expires_at, started_at, id.
CLAIM = sql(f"UPDATE jobs SET {_LEASE} WHERE id = ? AND {_QUEUED} RETURNING {JOB_COLUMNS}")

# PostgreSQL: CLAIM and its event in one round trip; the event is written only if the lease
# was taken. Parameters: those of CLAIM, then event_values(...).
CLAIM_RECORDING = sql(
    "",
    postgresql=f"WITH claimed AS (UPDATE jobs SET {_LEASE} WHERE id = ? AND {_QUEUED}"
    f" RETURNING {JOB_COLUMNS}),"
    f" recorded AS (INSERT INTO {EVENT_TABLE} SELECT ?, ?, ?, ?, ?, ? FROM claimed),"
    " counted AS (UPDATE servers SET claims_total = servers.claims_total + 1 FROM claimed"
    " WHERE servers.name = claimed.server)"
    " SELECT * FROM claimed",
)

# SQLite: count a claim on its server (PostgreSQL counts it in CLAIM_RECORDING). Parameters:
# server.
COUNT_CLAIM = sql("UPDATE servers SET claims_total = claims_total + 1 WHERE name = ?")

# -- holding and ending a lease -----------------------------------------------------------------

# Extend a lease; only its holder with the current token. Parameters: lease_expires_at, id,
# server, fencing_token.
RENEW = sql(
    f"UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND {_RUNNING}"
    f" AND {_same('server', '?')} AND fencing_token = ? RETURNING {JOB_COLUMNS}"
)


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
        f" WHERE {where} RETURNING {JOB_COLUMNS}"
    )


# Finish the current lease, by (checks the holder, checks the fencing token).
COMPLETE = {
    (by_server, by_token): _complete_statement(by_server=by_server, by_token=by_token)
    for by_server in (False, True)
    for by_token in (False, True)
}

_LOST = f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND "
_LOST_TAIL = " ORDER BY id"

# Running jobs whose lease ran out before a time, locked (others' locked rows skipped).
EXPIRED_LEASES = sql(
    f"{_LOST}lease_expires_at < ?{_LOST_TAIL}",
    postgresql=f"{_LOST}lease_expires_at < ?{_LOST_TAIL} FOR UPDATE SKIP LOCKED",
)

# The running jobs of one server, locked (others' locked rows skipped).
LEASES_OF_SERVER = sql(
    f"{_LOST}server = ?{_LOST_TAIL}",
    postgresql=f"{_LOST}server = ?{_LOST_TAIL} FOR UPDATE SKIP LOCKED",
)

_LOST_WHERE = f"WHERE id = ? AND {_RUNNING} AND fencing_token = ? RETURNING {JOB_COLUMNS}"

# A lost lease with attempts left: queue the job again. Parameters: attempt, reason, id,
# fencing_token.
REQUEUE_LOST = sql(
    "UPDATE jobs SET status = 'queued', attempt = ?, server = NULL, lease_expires_at = NULL,"
    f" started_at = NULL, reason = ? {_LOST_WHERE}"
)

# A lost lease on the last attempt: the job failed. Parameters: finished_at, reason, id,
# fencing_token.
FAIL_LOST = sql(
    "UPDATE jobs SET status = 'failed', lease_expires_at = NULL, finished_at = ?, reason = ?"
    f" {_LOST_WHERE}"
)

# Give every running lease that ends sooner the end ``until``. Parameters: until, until.
EXTEND_LEASES = sql(
    "UPDATE jobs SET lease_expires_at = ? WHERE status = 'running' AND lease_expires_at < ?"
)

# -- operators' transitions ---------------------------------------------------------------------

# Cancel a job still in the status read. Parameters: finished_at, reason, id, status.
CANCEL = sql(
    "UPDATE jobs SET status = 'cancelled', finished_at = ?, lease_expires_at = NULL, reason = ?"
    f" WHERE id = ? AND status = ? RETURNING {JOB_COLUMNS}"
)

# A new attempt of a failed or cancelled job (still in the status read). Parameters: status,
# blocked_reason, blocked_by, max_attempts, queued_at, rank, id, status read.
RETRY = sql(
    "UPDATE jobs SET status = ?, blocked_reason = ?, blocked_by = ?, attempt = attempt + 1,"
    " max_attempts = ?, server = NULL, lease_expires_at = NULL, started_at = NULL,"
    " finished_at = NULL, exit_code = NULL, duration = NULL, reason = NULL, queued_at = ?,"
    f" rank = ? WHERE id = ? AND status = ? RETURNING {JOB_COLUMNS}"
)

# A waiting job's new priority and the rank it gives. Parameters: priority, rank, id, status.
REPRIORITIZE = sql(
    f"UPDATE jobs SET priority = ?, rank = ? WHERE id = ? AND status = ? RETURNING {JOB_COLUMNS}"
)

# Every job whose claim rank a policy change recomputes: (id, priority, queued_at).
RANKED = sql("SELECT id, priority, queued_at FROM jobs WHERE status IN ('queued', 'blocked')")

# One job's new claim rank. Parameters: rank, id.
SET_RANK = sql("UPDATE jobs SET rank = ? WHERE id = ?")

# -- the dependency graph -----------------------------------------------------------------------

# A job succeeded: each job that depends on it waits for one dependency less.
RELEASE_DEPENDENTS = sql(
    "UPDATE jobs SET pending_deps = pending_deps - 1"
    " WHERE id IN (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?)"
)

# PostgreSQL: a completion's event and RELEASE_DEPENDENTS in one round trip.
# Parameters: event_values(...), then the finished job's id.
RECORD_AND_RELEASE = sql(
    "",
    postgresql=f"WITH recorded AS (INSERT INTO {EVENT_TABLE} VALUES (?, ?, ?, ?, ?, ?))"
    f" {RELEASE_DEPENDENTS.postgresql.replace('%s', '?')}",
)

_CHILDREN = (
    "SELECT d.job_id, d.depends_on_id FROM job_dependencies d JOIN jobs j ON j.id = d.job_id"
    " WHERE j.status = 'queued' AND d.depends_on_id IN "
)

# The queued jobs that depend on any job of an ids_param: (job_id, depends_on_id), by job.
QUEUED_DEPENDENTS = sql(
    f"{_CHILDREN}{_IDS_SQLITE} ORDER BY d.job_id",
    postgresql=f"{_CHILDREN}{_IDS_POSTGRESQL} ORDER BY d.job_id",
)

# Block a queued job behind a root job. Parameters: blocked_reason, blocked_by, id.
BLOCK = sql(
    "UPDATE jobs SET status = 'blocked', blocked_reason = ?, blocked_by = ?"
    " WHERE id = ? AND status = 'queued'"
)

# The jobs a root job blocks: (id, depends_on), by id.
BLOCKED_BY = sql(
    "SELECT id, depends_on FROM jobs WHERE blocked_by = ? AND status = 'blocked' ORDER BY id"
)

# Queue a blocked job again: nothing blocks it any more.
UNBLOCK = sql(
    "UPDATE jobs SET status = 'queued', blocked_reason = NULL, blocked_by = NULL WHERE id = ?"
)

# Record what blocks a job now. Parameters: blocked_reason, blocked_by, id.
REBLOCK = sql("UPDATE jobs SET blocked_reason = ?, blocked_by = ? WHERE id = ?")

"""The statements of the PostgreSQL run queue (tables ``weavegraph_runs`` and
``weavegraph_workers``, see `checkpoint._migrations.RUNS`).

Every time is the server's `now()`, so the clocks of the workers' machines never matter. A
statement that puts work on the queue sends ``NOTIFY weavegraph_runs`` (payload: the graph) in
its own transaction, so a listener hears of a run only once it can be claimed.
"""

from __future__ import annotations

__all__ = [
    "CANCEL_CHANNEL",
    "CANCEL_QUEUED",
    "CANCEL_RUNNING",
    "CLAIM_CANDIDATE",
    "CLAIM_TAKE",
    "COLUMNS",
    "END_AT_CLAIM",
    "ENQUEUE",
    "FAIL_ATTEMPT",
    "FINISH",
    "FORGET_WORKER",
    "GET",
    "HEARTBEAT",
    "LOCK_FOR_CANCEL",
    "QUEUE_COUNTS",
    "RELEASE",
    "RUNS",
    "RUNS_CHANNEL",
    "WORKERS",
    "WORKERS_SEEN",
]

RUNS = "weavegraph_runs"
WORKERS = "weavegraph_workers"
RUNS_CHANNEL = "weavegraph_runs"
CANCEL_CHANNEL = "weavegraph_cancel"

COLUMNS = (
    "id, graph, input, status, attempt, max_attempts, lease_owner, lease_expires_at, "
    "cancel_requested, created_at, started_at, finished_at, error"
)
_LEASE = "now() + make_interval(secs => %s)"
_CLEAR_LEASE = "lease_owner = NULL, lease_expires_at = NULL"
_HELD = "id = %s AND lease_owner = %s AND status = 'running'"

ENQUEUE = (
    f"WITH new AS (INSERT INTO {RUNS} (id, graph, input, status, attempt, max_attempts, "
    "cancel_requested, created_at) VALUES (%s, %s, %s::json, 'queued', 0, %s, false, now()) "
    f"ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}) "
    f"SELECT {COLUMNS}, pg_notify('{RUNS_CHANNEL}', graph) FROM new"
)
GET = f"SELECT {COLUMNS} FROM {RUNS} WHERE id = %s"

# The oldest claimable run: queued, or running under a lease that has expired (its worker is
# gone). SKIP LOCKED: concurrent claimers each take a different row instead of queueing up.
CLAIM_CANDIDATE = (
    "SELECT id, status, attempt, max_attempts, lease_owner, cancel_requested "
    f"FROM {RUNS} "
    "WHERE graph = %s AND (status = 'queued' OR "
    "(status = 'running' AND lease_expires_at < now())) "
    "ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
CLAIM_TAKE = (
    f"UPDATE {RUNS} SET status = 'running', attempt = attempt + 1, lease_owner = %s, "
    f"lease_expires_at = {_LEASE}, started_at = COALESCE(started_at, now()) "
    f"WHERE id = %s RETURNING {COLUMNS}"
)
END_AT_CLAIM = (
    f"UPDATE {RUNS} SET status = %s, error = COALESCE(%s, error), {_CLEAR_LEASE}, "
    f"finished_at = now() WHERE id = %s RETURNING {COLUMNS}"
)

# One round trip: the lease extension, and the worker's row as a side effect (a data-modifying
# WITH runs whether or not the outer query reads it).
HEARTBEAT = (
    f"WITH held AS (UPDATE {RUNS} SET lease_expires_at = {_LEASE} "
    "WHERE id = ANY(%s) AND lease_owner = %s AND status = 'running' "
    "RETURNING id, cancel_requested), "
    f"seen AS (INSERT INTO {WORKERS} AS w (owner, graph, host, pid, started_at, seen_at) "
    "VALUES (%s, %s, %s, %s, now(), now()) ON CONFLICT (owner) DO UPDATE SET "
    "graph = COALESCE(NULLIF(EXCLUDED.graph, ''), w.graph), host = EXCLUDED.host, "
    "pid = EXCLUDED.pid, seen_at = EXCLUDED.seen_at) "
    "SELECT id, cancel_requested FROM held"
)
FINISH = (
    f"UPDATE {RUNS} SET status = %s, error = %s, {_CLEAR_LEASE}, finished_at = now() "
    f"WHERE {_HELD} RETURNING id"
)
FAIL_ATTEMPT = (
    f"WITH ended AS (UPDATE {RUNS} SET "
    "status = CASE WHEN attempt < max_attempts THEN 'queued' ELSE 'failed' END, "
    "finished_at = CASE WHEN attempt < max_attempts THEN NULL ELSE now() END, "
    f"error = %s, {_CLEAR_LEASE} WHERE {_HELD} RETURNING status, graph) "
    "SELECT status, CASE WHEN status = 'queued' "
    f"THEN pg_notify('{RUNS_CHANNEL}', graph) END FROM ended"
)
# A release is no failed attempt: the claim's increment is taken back.
RELEASE = (
    f"WITH back AS (UPDATE {RUNS} SET status = 'queued', attempt = GREATEST(attempt - 1, 0), "
    f"{_CLEAR_LEASE} WHERE {_HELD} RETURNING graph) "
    f"SELECT pg_notify('{RUNS_CHANNEL}', graph) FROM back"
)
LOCK_FOR_CANCEL = f"SELECT status FROM {RUNS} WHERE id = %s FOR UPDATE"
CANCEL_QUEUED = (
    f"UPDATE {RUNS} SET status = 'cancelled', cancel_requested = true, finished_at = now() "
    f"WHERE id = %s RETURNING {COLUMNS}"
)
CANCEL_RUNNING = (
    f"UPDATE {RUNS} SET cancel_requested = true WHERE id = %s RETURNING {COLUMNS}, "
    f"pg_notify('{CANCEL_CHANNEL}', id)"
)

QUEUE_COUNTS = (
    "SELECT count(*) FILTER (WHERE status = 'queued'), "
    "count(*) FILTER (WHERE status = 'running'), "
    "EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status = 'queued'))::float8 "
    f"FROM {RUNS} WHERE status IN ('queued', 'running') AND (%s::text IS NULL OR graph = %s)"
)
WORKERS_SEEN = (
    f"SELECT owner, graph, host, pid, seen_at FROM {WORKERS} "
    "WHERE seen_at > now() - make_interval(secs => %s) AND (%s::text IS NULL OR graph = %s) "
    "ORDER BY owner"
)
FORGET_WORKER = f"DELETE FROM {WORKERS} WHERE owner = %s"

"""Versioned schema migrations shared by the SQLite and PostgreSQL backends.

Each component (checkpoints, events, runs) has an ordered list of migrations; the table
``{prefix}migrations`` records which versions of which component a database has. A later
feature adds a table by appending one `Migration` to its component's list. Statements are
templates filled per dialect:

- ``{p}``: the table prefix (``""`` in SQLite, ``"weavegraph_"`` in PostgreSQL);
- ``{json}``: the JSON column type (``TEXT`` / ``json``: the text is kept verbatim, so floats
  and key order round-trip exactly, which ``jsonb`` would not guarantee);
- ``{ts}``: a timestamp column (ISO text in SQLite, ``timestamptz`` in PostgreSQL);
- ``{norowid}``: ``WITHOUT ROWID`` in SQLite (the primary key is the table), empty otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHECKPOINTS",
    "EVENTS",
    "MIGRATIONS_TABLE",
    "POSTGRES",
    "RUNS",
    "SQLITE",
    "Component",
    "Dialect",
    "Migration",
]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: its version (1, 2, 3 … per component) and its SQL templates."""

    version: int
    description: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Component:
    """A named, ordered list of migrations (versions must be 1, 2, 3 …)."""

    name: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"{self.name}: migration versions must be 1, 2, 3 …; got {versions}")

    @property
    def latest(self) -> int:
        """The version a fully migrated database has."""
        return len(self.migrations)

    def pending(self, applied: set[int]) -> list[Migration]:
        """The migrations not yet in `applied`, in order."""
        return [m for m in self.migrations if m.version not in applied]

    def too_new(self, applied: set[int]) -> str | None:
        """Why a database whose `applied` versions include unknown ones cannot be used, or None."""
        newest = max(applied, default=0)
        if newest <= self.latest:
            return None
        return (
            f"its {self.name} schema is at version {newest}, newer than this weavegraph knows "
            f"({self.latest}); upgrade weavegraph"
        )


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database fills the templates."""

    prefix: str
    json: str
    ts: str
    norowid: str

    def render(self, template: str) -> str:
        """The template as SQL of this dialect."""
        return template.format(p=self.prefix, json=self.json, ts=self.ts, norowid=self.norowid)


SQLITE = Dialect(prefix="", json="TEXT", ts="TEXT", norowid=" WITHOUT ROWID")
POSTGRES = Dialect(prefix="weavegraph_", json="json", ts="timestamptz", norowid="")

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS {p}migrations ("
    "component TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL, "
    "applied_at {ts} NOT NULL, PRIMARY KEY (component, version)){norowid}"
)

CHECKPOINTS = Component(
    "checkpoints",
    (
        Migration(
            1,
            "sessions, checkpoints and channel values",
            (
                # `epoch` is drawn anew each time a session row is created, so a writer's memory
                # of the values it wrote is dropped when the session was deleted and re-created.
                "CREATE TABLE {p}sessions (session_id TEXT PRIMARY KEY, "
                "latest_step BIGINT NOT NULL, epoch BIGINT NOT NULL){norowid}",
                "CREATE TABLE {p}checkpoints (session_id TEXT NOT NULL, step BIGINT NOT NULL, "
                "channel_versions {json} NOT NULL, frontier {json} NOT NULL, "
                "joins {json} NOT NULL, ran_nodes {json} NOT NULL, "
                "skipped_nodes {json} NOT NULL, updated_channels {json} NOT NULL, "
                "status TEXT NOT NULL, created_at {ts} NOT NULL, graph_hash TEXT NOT NULL, "
                "PRIMARY KEY (session_id, step)){norowid}",
                # A rowid table, unlike the others: its rows are large (a whole message list),
                # which SQLite stores with fewer page writes outside the primary key's tree.
                "CREATE TABLE {p}channel_values (session_id TEXT NOT NULL, "
                "channel TEXT NOT NULL, version BIGINT NOT NULL, value {json} NOT NULL, "
                "PRIMARY KEY (session_id, channel, version))",
            ),
        ),
    ),
)

EVENTS = Component(
    "events",
    (
        Migration(
            1,
            "events by session and id",
            (
                "CREATE TABLE {p}events (session_id TEXT NOT NULL, id BIGINT NOT NULL, "
                "body {json} NOT NULL, PRIMARY KEY (session_id, id)){norowid}",
            ),
        ),
    ),
)

# The distributed run queue (PostgreSQL only: SQLite serves one process, which needs no queue).
RUNS = Component(
    "runs",
    (
        Migration(
            1,
            "queued runs and the workers that take them",
            (
                "CREATE TABLE {p}runs (id TEXT PRIMARY KEY, graph TEXT NOT NULL, "
                "input {json} NOT NULL, status TEXT NOT NULL CHECK (status IN "
                "('queued', 'running', 'succeeded', 'failed', 'cancelled')), "
                "attempt INTEGER NOT NULL, "
                "max_attempts INTEGER NOT NULL, lease_owner TEXT, lease_expires_at {ts}, "
                "cancel_requested BOOLEAN NOT NULL, created_at {ts} NOT NULL, "
                "started_at {ts}, finished_at {ts}, error TEXT){norowid}",
                "CREATE INDEX {p}runs_claim ON {p}runs (status, graph, created_at)",
                "CREATE TABLE {p}workers (owner TEXT PRIMARY KEY, graph TEXT NOT NULL, "
                "host TEXT NOT NULL, pid INTEGER NOT NULL, started_at {ts} NOT NULL, "
                "seen_at {ts} NOT NULL){norowid}",
            ),
        ),
    ),
)

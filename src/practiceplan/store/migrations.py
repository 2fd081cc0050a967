"""Schema migrations: named, append-only functions (``sqlite_utils.Migrations``).

Never edit or reorder a released migration; add a new one and its name to ``schema.MIGRATION_NAMES``.
``migrate`` runs every pending migration inside the caller's single ``BEGIN IMMEDIATE`` transaction, so
several processes opening an old database at once migrate it exactly once, and a migration killed midway
leaves the old schema or the new one, never a mix.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database, Migrations

from practiceplan.store.schema import MIGRATION_NAMES, SCHEMA_VERSION

migrations = Migrations("practiceplan")


@migrations()
def m001_initial(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE practice_plans (
            id TEXT PRIMARY KEY,
            status TEXT,
            updated_at TEXT,
            deleted_at TEXT,
            horizon TEXT,            -- local only: occurrences are materialised up to this instant
            doc TEXT NOT NULL CHECK (json_valid(doc))
        );
        CREATE TABLE plan_occurrences (
            id TEXT PRIMARY KEY,
            plan_id TEXT NOT NULL,
            scheduled_start TEXT,
            status TEXT,
            log_entry_id TEXT,
            updated_at TEXT,
            deleted_at TEXT,
            doc TEXT NOT NULL CHECK (json_valid(doc))
        );
        CREATE INDEX plan_occurrences_plan_start ON plan_occurrences (plan_id, scheduled_start);
        CREATE INDEX plan_occurrences_start ON plan_occurrences (scheduled_start);
        CREATE TABLE logbook_entries (
            id TEXT PRIMARY KEY,
            ts INTEGER NOT NULL,     -- the entry's timestamp in epoch milliseconds
            plan_occurrence_id TEXT,
            updated_at TEXT,
            deleted_at TEXT,
            doc TEXT NOT NULL CHECK (json_valid(doc))
        );
        CREATE INDEX logbook_entries_ts ON logbook_entries (ts);
        CREATE INDEX logbook_entries_occurrence ON logbook_entries (plan_occurrence_id);
        CREATE TABLE goals (
            id TEXT PRIMARY KEY,
            updated_at TEXT,
            deleted_at TEXT,
            doc TEXT NOT NULL CHECK (json_valid(doc))
        );
        CREATE TABLE outbox (
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            rev INTEGER NOT NULL DEFAULT 1,
            seq INTEGER NOT NULL,
            changed_at TEXT NOT NULL,
            PRIMARY KEY (entity_type, entity_id)
        );
        CREATE INDEX outbox_seq ON outbox (seq);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            name TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data))
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_templates(db: Database) -> None:
    """Tutor plan templates: the entity (wire format), every published/imported version, trusted keys."""
    _run_script(
        db,
        """
        CREATE TABLE plan_templates (
            id TEXT PRIMARY KEY,
            author_id TEXT,
            status TEXT,             -- local: draft | published | imported
            visibility TEXT,
            template_version INTEGER,
            updated_at TEXT,
            deleted_at TEXT,
            doc TEXT NOT NULL CHECK (json_valid(doc))
        );
        CREATE INDEX plan_templates_status ON plan_templates (status);
        CREATE TABLE plan_template_versions (
            template_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            published_at TEXT,
            added_at TEXT NOT NULL,
            doc TEXT NOT NULL CHECK (json_valid(doc)),   -- the template file document of that version
            PRIMARY KEY (template_id, version)
        );
        CREATE TABLE trusted_keys (
            fingerprint TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            public_key TEXT NOT NULL UNIQUE,
            added_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m003_reminders(db: Database) -> None:
    """Reminders sent per occurrence and channel (exactly once), and each channel's last run (the cursor)."""
    _run_script(
        db,
        """
        CREATE TABLE reminders_sent (
            occurrence_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            kind TEXT NOT NULL,      -- reminder | summary
            sent_at TEXT NOT NULL,
            PRIMARY KEY (occurrence_id, channel, kind)
        );
        CREATE UNIQUE INDEX reminders_sent_once ON reminders_sent (occurrence_id, channel);
        CREATE TABLE reminder_cursor (
            channel TEXT PRIMARY KEY,
            last_run TEXT NOT NULL
        );
        """
    )


@migrations()
def m004_logbook_duration(db: Database) -> None:
    """A plain ``duration`` column on logbook entries, so analytics sum minutes without parsing JSON."""
    db.conn.execute("ALTER TABLE logbook_entries ADD COLUMN duration INTEGER NOT NULL DEFAULT 0")
    db.conn.execute(
        "UPDATE logbook_entries SET duration = COALESCE(CAST(json_extract(doc, '$.duration') AS INTEGER), 0)"
    )


@migrations()
def m005_logbook_revision(db: Database) -> None:
    """A revision counter that every change to the logbook bumps (triggers, so no code path can forget it):
    lets read commands cache values derived from the whole logbook, such as the practice-day streak."""
    for event in ("INSERT", "UPDATE", "DELETE"):
        db.conn.execute(
            f"CREATE TRIGGER logbook_rev_{event.lower()} AFTER {event} ON logbook_entries BEGIN "
            "INSERT INTO meta (key, value) VALUES ('logbook_rev', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; END"
        )


@migrations()
def m006_logbook_rollup(db: Database) -> None:
    """Logbook minutes and entry counts per UTC hour and per UTC quarter-hour, kept by triggers.

    Why this design. Analytics need totals per *local calendar day of the user's zone*, and that zone can
    change (config ``timezone``, ``PRACTICEPLAN_TZ``) and moves across DST, so a table keyed by local day
    would be stale after any zone change (and rebuilding it on a read would write on a read). Keyed by UTC
    time buckets the rollup is independent of every zone: a local day of any zone whose UTC offset is a
    whole number of hours starts and ends on UTC hour boundaries (DST transitions happen on them too), so
    its totals are the exact sum of its 24 (23 or 25 on DST days) hour rows. Zones with :30 / :45 offsets
    (Asia/Kolkata, Asia/Kathmandu, Australia/Adelaide, Lord Howe's half-hour DST) start their days on
    quarter hours, so a second table keyed by UTC quarter-hour serves them exactly. Whatever no bucket
    covers exactly (historic offsets in seconds, transitions off the quarter hour) is read from the logbook
    itself, so totals are exact for every zone (store/insights.py ``day_totals``). A UTC-day key would be
    wrong for every zone but UTC; a per-(zone, day) table would need a rebuild per zone change.

    Reduction: one row per hour with entries, so at most 24 rows a day however dense the logbook (the
    5-year 100k-entry benchmark: 100,000 entries -> about 44,000 hour rows of four integers, read without
    touching the entries' JSON documents; a realistic 1-3 sessions a day gives one row per entry, still
    without the documents).

    Triggers (not Python) keep both tables in step with ``logbook_entries`` in the transaction of every
    change, so every writer stays consistent: ``Store.save_many`` (add, edit, soft delete through
    ``deletedAt``, import, sync), raw SQL (hard deletes), and a restore, which copies the backup's rollup
    as it is (consistent with the backup's entries) before recreating the triggers. A row exists only
    while its bucket holds a live entry (``entries`` > 0). Entries are live while ``deleted_at`` is NULL;
    ``linked`` sums the minutes of entries with a ``plan_occurrence_id``.
    """
    for table, key, size in (("logbook_hours", "hour", 3_600_000), ("logbook_quarters", "quarter", 900_000)):
        db.conn.execute(
            f"CREATE TABLE {table} ({key} INTEGER PRIMARY KEY, entries INTEGER NOT NULL, "
            "minutes INTEGER NOT NULL, linked INTEGER NOT NULL)"
        )

        def bucket(ts: str) -> str:  # floor division (SQLite's / truncates toward zero)
            return f"({ts} / {size} - ({ts} < 0 AND {ts} % {size} != 0))"

        def change(row: str, sign: str) -> str:
            return (
                f"INSERT INTO {table} ({key}, entries, minutes, linked) SELECT {bucket(row + '.ts')}, {sign}1, "
                f"{sign}{row}.duration, {sign}(CASE WHEN {row}.plan_occurrence_id IS NOT NULL "
                f"THEN {row}.duration ELSE 0 END) WHERE {row}.deleted_at IS NULL "
                f"ON CONFLICT ({key}) DO UPDATE SET entries = entries + excluded.entries, "
                "minutes = minutes + excluded.minutes, linked = linked + excluded.linked; "
                f"DELETE FROM {table} WHERE {key} = {bucket(row + '.ts')} AND entries = 0;"
            )

        moved = ("NOT (OLD.ts IS NEW.ts AND OLD.duration IS NEW.duration AND (OLD.deleted_at IS NULL) = "
                 "(NEW.deleted_at IS NULL) AND (OLD.plan_occurrence_id IS NULL) = (NEW.plan_occurrence_id IS NULL))")
        db.conn.execute(f"CREATE TRIGGER {table}_insert AFTER INSERT ON logbook_entries "
                        f"BEGIN {change('NEW', '+')} END")
        db.conn.execute(f"CREATE TRIGGER {table}_delete AFTER DELETE ON logbook_entries "
                        f"BEGIN {change('OLD', '-')} END")
        db.conn.execute(f"CREATE TRIGGER {table}_update AFTER UPDATE OF ts, duration, deleted_at, "
                        f"plan_occurrence_id ON logbook_entries WHEN {moved} "
                        f"BEGIN {change('OLD', '-')} {change('NEW', '+')} END")
        db.conn.execute(
            f"INSERT INTO {table} ({key}, entries, minutes, linked) SELECT {bucket('ts')}, count(*), sum(duration), "
            "sum(CASE WHEN plan_occurrence_id IS NOT NULL THEN duration ELSE 0 END) "
            f"FROM logbook_entries WHERE deleted_at IS NULL GROUP BY 1"
        )


@migrations()
def m007_sync(db: Database) -> None:
    """Sync bookkeeping (practiceplan/sync): what was last agreed with the server, batches in flight, conflicts.

    * ``sync_state``: per synced entity, the hash of the version both sides held after the last sync (``hash``;
      see sync/wire.py ``version_hash``) and the server's version number when the server reports one. An
      entity with a row here was seen on the server; a full-snapshot pull that no longer has it means it was
      deleted there.
    * ``sync_batches``: a push batch written *before* it is sent, with its idempotency key and exact body, so a
      retry (after a timeout, a 5xx, or a kill -9) resends the same bytes under the same key; ``items`` lists
      (kind, id, outbox rev, version hash, base hash) per entity, to acknowledge exactly what was sent.
    * ``conflicts``: every version that lost (to last-write-wins, a server deletion or a server refusal),
      kept whole until the user resolves it: nothing is dropped silently.
    """
    _run_script(
        db,
        """
        CREATE TABLE sync_state (
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            hash TEXT NOT NULL,
            version INTEGER,
            PRIMARY KEY (entity_type, entity_id)
        );
        CREATE TABLE sync_batches (
            id INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            items TEXT NOT NULL CHECK (json_valid(items)),
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY,
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            kept TEXT NOT NULL CHECK (kept IN ('local', 'remote', 'none')),
            local_doc TEXT CHECK (local_doc IS NULL OR json_valid(local_doc)),
            remote_doc TEXT CHECK (remote_doc IS NULL OR json_valid(remote_doc)),
            at TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT
        );
        CREATE INDEX conflicts_open ON conflicts (resolved_at, id)
        """
    )


@migrations()
def m008_logbook_progress(db: Database) -> None:
    """A partial index over the logbook entries that carry progress records (``metadata.progress``: clean and
    ceiling tempos, tension spots; see domain/progress.py), so `progress` and the tempo line of `stats` read only
    those entries, through the index, instead of parsing every entry's JSON (100k entries: a few hundred
    milliseconds). The index condition is evaluated on every write of an entry; the read uses the exact same
    expression (store/progress.py ``PROGRESS_ROWS``), which is what lets SQLite choose the index."""
    db.conn.execute(
        "CREATE INDEX logbook_entries_progress ON logbook_entries (ts) "
        "WHERE json_type(doc, '$.metadata.progress') = 'array'"
    )


@migrations()
def m009_sharing(db: Database) -> None:
    """Shared plans (docs/collaboration.md).

    * ``plan_comments``: comments on a shared plan or one of its sessions (kind ``plan_comment``, synced with a
      server that advertises ``sharing``); ``author`` is the server user name, set by the server.
    * ``shared_sessions``: the sessions *other* participants of a shared plan keep (status and times only; the
      server strips notes), for the owner's per-member adherence and `students`. Never pushed: each participant
      syncs their own sessions.
    """
    _run_script(
        db,
        """
        CREATE TABLE plan_comments (
            id TEXT PRIMARY KEY,
            plan_id TEXT NOT NULL,
            occurrence_id TEXT,
            author TEXT,
            updated_at TEXT,
            deleted_at TEXT,
            doc TEXT NOT NULL CHECK (json_valid(doc))
        );
        CREATE INDEX plan_comments_plan ON plan_comments (plan_id, occurrence_id);
        CREATE TABLE shared_sessions (
            member TEXT NOT NULL,
            id TEXT NOT NULL,
            plan_id TEXT NOT NULL,
            scheduled_start TEXT,
            status TEXT,
            updated_at TEXT,
            doc TEXT NOT NULL CHECK (json_valid(doc)),
            PRIMARY KEY (member, id)
        );
        CREATE INDEX shared_sessions_plan ON shared_sessions (plan_id, member, scheduled_start)
        """
    )


def _run_script(db: Database, script: str) -> None:
    """Run statements one by one: ``executescript`` would COMMIT the caller's transaction first."""
    for statement in script.split(";"):
        sql = "\n".join(line.split("--", 1)[0] for line in statement.splitlines()).strip()
        if sql:
            db.conn.execute(sql)


assert tuple(m.name for m in migrations._migrations) == MIGRATION_NAMES, "schema.MIGRATION_NAMES is stale"


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations. The caller holds a ``BEGIN IMMEDIATE`` transaction. Returns the names run."""
    db = Database(conn)
    pending = [m.name for m in migrations.pending(db)]
    if pending:
        migrations.apply(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return pending


def applied_names(conn: sqlite3.Connection) -> list[str]:
    return [m.name for m in migrations.applied(Database(conn))]

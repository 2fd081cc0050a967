"""Run the CLI with one extra, test-only migration registered (a subprocess driver; not collected by pytest).

    python tests/store/migrate_driver.py [--wait] -- ARGS...      # e.g. -- --db X log list --json

Why: the migration tests need "an old database with a migration pending" no matter how many real
migrations exist. Before anything opens a database, this appends ``m999_test_probe`` to the real migration
set (``practiceplan.store.migrations.migrations``) and bumps ``MIGRATION_NAMES`` / ``SCHEMA_VERSION`` in
the modules that read them, then runs the real entry point (``practiceplan.cli.app.main``). Any real
pending migrations run too, in the same single transaction.

The probe migration copies every logbook entry into a new table and adds a column to ``practice_plans``,
with ``faults.hit("migrate.step")`` between its statements, so a kill there shows whether a half-run
migration can be observed (it must not: the old schema or the new one, never a mix).

``--wait``: print ``ready`` and wait for a line on stdin before running (several processes start at once).
"""

from __future__ import annotations

import sys

EXTRA = "m999_test_probe"


def install() -> int:
    from practiceplan import faults
    from practiceplan.store import db, migrations, schema

    @migrations.migrations(name=EXTRA)
    def m999_test_probe(database) -> None:  # noqa: ANN001
        conn = database.conn
        conn.execute("CREATE TABLE test_probe (entry_id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        faults.hit("migrate.step")
        conn.execute("INSERT INTO test_probe (entry_id, doc) SELECT id, doc FROM logbook_entries")
        faults.hit("migrate.step")
        conn.execute("ALTER TABLE practice_plans ADD COLUMN test_probe_note TEXT")
        conn.execute("UPDATE practice_plans SET test_probe_note = 'migrated'")
        faults.hit("migrate.step")

    names = (*schema.MIGRATION_NAMES, EXTRA)
    for module in (schema, migrations, db):
        if hasattr(module, "MIGRATION_NAMES"):
            module.MIGRATION_NAMES = names
        module.SCHEMA_VERSION = len(names)
    return len(names)


def main(argv: list[str]) -> None:
    wait = "--wait" in argv[: argv.index("--")] if "--" in argv else False
    args = argv[argv.index("--") + 1 :] if "--" in argv else argv
    install()
    from practiceplan.cli.app import main as cli_main

    if wait:
        print("ready", flush=True)
        sys.stdin.readline()
    sys.argv = ["practiceplan", *args]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])

"""The names of the schema migrations, in order (append-only).

Kept apart from the migration code so that opening an up-to-date database never imports sqlite_utils:
``PRAGMA user_version`` equals ``SCHEMA_VERSION`` after every successful migration run.
"""

MIGRATION_NAMES: tuple[str, ...] = ("m001_initial", "m002_templates", "m003_reminders", "m004_logbook_duration",
    "m005_logbook_revision", "m006_logbook_rollup", "m007_sync", "m008_logbook_progress",
    "m009_sharing",
)
SCHEMA_VERSION = len(MIGRATION_NAMES)

"""Template storage beyond the generic entity table: published/imported versions and trusted keys.

The template entity itself lives in ``plan_templates`` and is written with ``Store.save`` (outbox row in
the same transaction). ``plan_template_versions`` keeps the file document of every version a template
had (published here or imported), so older versions stay readable and ``template upgrade`` has its base.
``trusted_keys`` is local (never synced). Writers must run inside ``Store.write()``.
"""

from __future__ import annotations

import json
from typing import Any

from practiceplan.errors import AmbiguousIdError, InvalidInputError, NotFoundError
from practiceplan.store.repo import Store, dumps


def templates(store: Store, *, statuses: tuple[str, ...] | None = None, include_deleted: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT doc FROM plan_templates WHERE 1=1"
    params: list[Any] = []
    if not include_deleted:
        sql += " AND deleted_at IS NULL"
    if statuses:
        sql += f" AND status IN ({', '.join('?' * len(statuses))})"
        params.extend(statuses)
    return [json.loads(r[0]) for r in store.conn.execute(sql + " ORDER BY id", params)]


def versions(store: Store, template_id: str) -> list[dict[str, Any]]:
    """``[{"version", "publishedAt", "addedAt", "document"}]``, oldest first."""
    return [
        {"version": r[0], "publishedAt": r[1], "addedAt": r[2], "document": json.loads(r[3])}
        for r in store.conn.execute(
            "SELECT version, published_at, added_at, doc FROM plan_template_versions WHERE template_id = ? ORDER BY version",
            (template_id,),
        )
    ]


def version(store: Store, template_id: str, number: int) -> dict[str, Any] | None:
    row = store.conn.execute(
        "SELECT doc FROM plan_template_versions WHERE template_id = ? AND version = ?", (template_id, number)
    ).fetchone()
    return json.loads(row[0]) if row else None


def latest_version(store: Store, template_id: str) -> tuple[int, dict[str, Any]] | None:
    row = store.conn.execute(
        "SELECT version, doc FROM plan_template_versions WHERE template_id = ? ORDER BY version DESC LIMIT 1",
        (template_id,),
    ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def add_version(store: Store, template_id: str, number: int, published_at: str | None, document: dict[str, Any], at: str) -> None:
    assert store.conn.in_transaction, "writes must run inside Store.write()"
    store.conn.execute(
        "INSERT INTO plan_template_versions (template_id, version, published_at, added_at, doc) VALUES (?, ?, ?, ?, ?)",
        (template_id, number, published_at, at, dumps(document)),
    )


def adoption_counts(store: Store) -> dict[str, int]:
    """Live plans adopted here, per template id (counted from the plans, so it never drifts)."""
    return {
        r[0]: r[1]
        for r in store.conn.execute(
            "SELECT json_extract(doc, '$.sourceTemplateId') AS t, count(*) FROM practice_plans "
            "WHERE deleted_at IS NULL AND t IS NOT NULL GROUP BY t"
        )
    }


# --------------------------------------------------------------------------- trusted keys


def _key(row: tuple[Any, ...]) -> dict[str, str]:
    return {"fingerprint": row[0], "name": row[1], "publicKey": row[2], "addedAt": row[3]}


def trusted_keys(store: Store) -> list[dict[str, str]]:
    return [_key(r) for r in store.conn.execute("SELECT fingerprint, name, public_key, added_at FROM trusted_keys ORDER BY name")]


def trusted_key(store: Store, public_key: str) -> dict[str, str] | None:
    row = store.conn.execute(
        "SELECT fingerprint, name, public_key, added_at FROM trusted_keys WHERE public_key = ?", (public_key,)
    ).fetchone()
    return _key(row) if row else None


def add_trusted_key(store: Store, fingerprint: str, name: str, public_key: str, at: str) -> dict[str, str]:
    assert store.conn.in_transaction, "writes must run inside Store.write()"
    existing = trusted_key(store, public_key)
    if existing:
        raise InvalidInputError(f"this key is already trusted as '{existing['name']}'")
    if store.conn.execute("SELECT 1 FROM trusted_keys WHERE name = ?", (name,)).fetchone():
        raise InvalidInputError(f"a trusted key is already named '{name}'", hint="choose another --name")
    store.conn.execute(
        "INSERT INTO trusted_keys (fingerprint, name, public_key, added_at) VALUES (?, ?, ?, ?)",
        (fingerprint, name, public_key, at),
    )
    return {"fingerprint": fingerprint, "name": name, "publicKey": public_key, "addedAt": at}


def find_trusted_key(store: Store, ref: str) -> dict[str, str]:
    """A trusted key by exact name, or by fingerprint (any unique prefix of at least 4 digits)."""
    keys = trusted_keys(store)
    by_name = [k for k in keys if k["name"] == ref]
    if by_name:
        return by_name[0]
    text = ref.strip().lower()
    matches = [k for k in keys if len(text) >= 4 and k["fingerprint"].startswith(text)]
    if not matches:
        raise NotFoundError(f"no trusted key named or with fingerprint '{ref}'", hint="see `practiceplan template trust list`")
    if len(matches) > 1:
        raise AmbiguousIdError(ref, [k["fingerprint"] for k in matches])
    return matches[0]


def remove_trusted_key(store: Store, fingerprint: str) -> None:
    assert store.conn.in_transaction, "writes must run inside Store.write()"
    store.conn.execute("DELETE FROM trusted_keys WHERE fingerprint = ?", (fingerprint,))

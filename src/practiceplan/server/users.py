"""Server accounts: a name, a role (learner, tutor, admin) and one bearer token, stored only as its SHA-256
(the token is 256 random bits, so a plain hash is enough; it is shown once, at creation)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from practiceplan.server import db
from practiceplan.server.protocol import iso_ms

ROLES = ("learner", "tutor", "admin")
PUBLISHERS = ("tutor", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TOKEN_PREFIX = "pps_"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def publishes(self) -> bool:
        return self.role in PUBLISHERS


class UserExists(Exception):
    pass


class NoSuchUser(Exception):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add(engine: Engine, name: str, role: str, now: datetime | None = None) -> tuple[User, str]:
    """Create ``name`` with ``role``; returns the user and its token (the only time the token exists in clear)."""
    if not NAME.match(name):
        raise ValueError("a user name is 1-64 letters, digits or . _ @ -, starting with a letter or digit")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = new_token()
    stamp = iso_ms(now or datetime.now(UTC))

    def work(conn: Any) -> User:
        exists = conn.execute(sa.select(db.users.c.id).where(db.users.c.name == name)).first()
        if exists is not None:
            raise UserExists(name)
        result = conn.execute(db.users.insert().values(name=name, role=role, token_hash=hash_token(token),
                                                       created_at=stamp, change_seq=0, purged_seq=0))
        return User(int(result.inserted_primary_key[0]), name, role)

    try:
        return db.run(engine, work, write=True), token
    except IntegrityError:
        raise UserExists(name) from None


def listing(engine: Engine) -> list[dict[str, Any]]:
    u, r = db.users, db.sync_rows

    def work(conn: Any) -> list[dict[str, Any]]:
        counts = dict(conn.execute(sa.select(r.c.user_id, sa.func.count()).where(r.c.deleted_at.is_(None))
                                   .group_by(r.c.user_id)).all())
        rows = conn.execute(sa.select(u.c.id, u.c.name, u.c.role, u.c.created_at, u.c.revoked_at,
                                      u.c.last_sync_time).order_by(u.c.name)).all()
        return [{"name": x.name, "role": x.role, "createdAt": x.created_at, "revokedAt": x.revoked_at,
                 "active": x.revoked_at is None, "lastSyncTime": x.last_sync_time,
                 "entityCount": int(counts.get(x.id, 0))} for x in rows]

    return db.run(engine, work, write=False)


def revoke(engine: Engine, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Revoke the user's token (its data stays); revoking twice is not an error."""
    stamp = iso_ms(now or datetime.now(UTC))

    def work(conn: Any) -> dict[str, Any]:
        row = conn.execute(sa.select(db.users.c.id, db.users.c.revoked_at).where(db.users.c.name == name)).first()
        if row is None:
            raise NoSuchUser(name)
        if row.revoked_at is None:
            conn.execute(db.users.update().where(db.users.c.id == row.id).values(revoked_at=stamp))
            return {"name": name, "revokedAt": stamp, "already": False}
        return {"name": name, "revokedAt": row.revoked_at, "already": True}

    return db.run(engine, work, write=True)


def authenticate(engine: Engine, token: str) -> User | None:
    """The active user whose token this is, or None. The lookup is by hash (an index probe that reveals nothing
    about the token) and the stored hash is compared again in constant time."""
    if not token or len(token) > 512:
        return None
    digest = hash_token(token)

    def work(conn: Any) -> Any:
        return conn.execute(sa.select(db.users.c.id, db.users.c.name, db.users.c.role, db.users.c.token_hash)
                            .where(db.users.c.token_hash == digest, db.users.c.revoked_at.is_(None))).first()

    row = db.run(engine, work, write=False)
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return User(int(row.id), row.name, row.role)

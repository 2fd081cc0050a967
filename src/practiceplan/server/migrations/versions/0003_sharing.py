"""Shared plans and live updates (issue 14, docs/collaboration.md).

* ``sync_rows.plan_id``: the plan a row belongs to (a plan: its own id; a session or a comment: its ``planId``),
  indexed with the user and the change number (a partial index: rows of no plan, most of them, cost nothing
  there), so the rows of one shared plan are read through the index; filled here for existing rows.
* ``plan_members``: members of a plan besides its owner, with a level (view < comment < edit); a removed member's
  row stays with ``removed_at`` set, so a push from a device that has not heard yet is refused, not stored as a
  new plan of its own.
* ``invites``: single-use invite links (SHA-256 of the token only).
* ``live_events``: events for WebSocket clients, one row per recipient, written in the transaction of the change
  they describe; every server process delivers them to its own connections (server/live.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_rows", sa.Column("plan_id", sa.String(255), nullable=True))
    op.create_index("ix_sync_rows_user_plan_seq", "sync_rows", ["user_id", "plan_id", "change_seq"],
                    sqlite_where=sa.text("plan_id IS NOT NULL"), postgresql_where=sa.text("plan_id IS NOT NULL"))
    conn = op.get_bind()
    rows = sa.table("sync_rows", sa.column("user_id"), sa.column("entity_type"), sa.column("entity_id"),
                    sa.column("data"), sa.column("plan_id"))
    conn.execute(rows.update().where(rows.c.entity_type == "practice_plan").values(plan_id=rows.c.entity_id))
    found = conn.execute(sa.select(rows.c.user_id, rows.c.entity_type, rows.c.entity_id, rows.c.data)
                         .where(rows.c.entity_type.in_(["plan_occurrence", "plan_comment"]))).all()
    for r in found:
        try:
            plan_id = json.loads(r.data).get("planId")
        except (ValueError, AttributeError):
            continue
        if isinstance(plan_id, str) and plan_id:
            conn.execute(rows.update().where(rows.c.user_id == r.user_id, rows.c.entity_type == r.entity_type,
                                             rows.c.entity_id == r.entity_id).values(plan_id=plan_id[:255]))
    op.create_table(
        "plan_members",
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("plan_id", sa.String(255), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False),
        sa.Column("removed_at", sa.String(32), nullable=True),
        sa.CheckConstraint("level IN ('view', 'comment', 'edit')", name="ck_plan_members_level"),
    )
    op.create_index("ix_plan_members_member", "plan_members", ["member_id"])
    op.create_table(
        "invites",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("plan_id", sa.String(255), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("used_at", sa.String(32), nullable=True),
        sa.Column("used_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.CheckConstraint("level IN ('view', 'comment', 'edit')", name="ck_invites_level"),
    )
    op.create_table(
        "live_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sqlite_autoincrement=True,  # ids never reused (server/db.py)
    )
    op.create_index("ix_live_events_created", "live_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_live_events_created", table_name="live_events")
    op.drop_table("live_events")
    op.drop_table("invites")
    op.drop_index("ix_plan_members_member", table_name="plan_members")
    op.drop_table("plan_members")
    op.drop_index("ix_sync_rows_user_plan_seq", table_name="sync_rows")
    op.drop_column("sync_rows", "plan_id")

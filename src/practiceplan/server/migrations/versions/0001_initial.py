"""Initial schema: users (roles, hashed tokens, per-user change counter), sync rows with tombstones,
idempotency keys, template adoptions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32), nullable=True),
        sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("purged_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sync_token", sa.String(64), nullable=True),
        sa.Column("last_sync_time", sa.String(32), nullable=True),
        sa.CheckConstraint("role IN ('learner', 'tutor', 'admin')", name="ck_users_role"),
    )
    op.create_table(
        "sync_rows",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("entity_type", sa.String(32), primary_key=True),
        sa.Column("entity_id", sa.String(255), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_sync_rows_user_seq", "sync_rows", ["user_id", "change_seq"])
    op.create_index("ix_sync_rows_type_id", "sync_rows", ["entity_type", "entity_id"])
    op.create_table(
        "idempotency",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "adoptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("template_owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("template_id", sa.String(255), nullable=False),
        sa.Column("adopter_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("plan_id", sa.String(255), nullable=False),
        sa.Column("adopted_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_adoptions_template", "adoptions", ["template_owner_id", "template_id"])


def downgrade() -> None:
    op.drop_table("adoptions")
    op.drop_table("idempotency")
    op.drop_table("sync_rows")
    op.drop_table("users")

"""Rollbacks in ``promotions``: a row has a ``kind`` (promotion or rollback) and an ``event_id`` (empty for a
promotion, whose rerun replaces it; a rollback's stamp, so two rollbacks of one date are two rows), both in the
primary key.

Revision ID: 0005
Revises: 0004
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_KEY = ["symbol", "timeframe", "as_of"]
NEW_KEY = [*OLD_KEY, "kind", "event_id"]


def upgrade() -> None:
    # the table is rebuilt (SQLite cannot change a primary key in place); the rows are copied. SQLAlchemy warns
    # that the reflected key differs from the new one: that is the change.
    with warnings.catch_warnings(), op.batch_alter_table("promotions", recreate="always") as batch:
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="promotion"))
        batch.add_column(sa.Column("event_id", sa.String(32), nullable=False, server_default=""))
        batch.create_primary_key("promotions_pkey", NEW_KEY)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM promotions WHERE kind <> 'promotion'"))  # the old key holds promotions only
    with warnings.catch_warnings(), op.batch_alter_table("promotions", recreate="always") as batch:
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        batch.create_primary_key("promotions_pkey", OLD_KEY)
        batch.drop_column("event_id")
        batch.drop_column("kind")

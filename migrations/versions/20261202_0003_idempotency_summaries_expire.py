"""Idempotency records keep the answer's summary, not its per-row report, and expire.

The stored answers held whole per-row reports (5.9 MB for 60,000 rows) and never expired. They
are retry caches only, so the upgrade drops them rather than cutting each down: a retry that
spans the upgrade imports again, which changes nothing (imports match on natural keys) and
reports its rows as unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.coltypes

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text('DELETE FROM idempotency_record'))
    with op.batch_alter_table('idempotency_record') as batch_op:
        batch_op.alter_column('response_body', new_column_name='response_summary')
        batch_op.add_column(
            sa.Column('expires_at', app.coltypes.UTCDateTime(timezone=True), nullable=False)
        )


def downgrade() -> None:
    # The summaries left behind are valid answers of the older schema too.
    with op.batch_alter_table('idempotency_record') as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.alter_column('response_summary', new_column_name='response_body')

"""An index for "the latest revision of each series recorded at or before T" (as_of reads).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('observation_revision', schema=None) as batch_op:
        batch_op.create_index(
            'ix_observation_revision_as_of',
            ['indicator_id', 'region_id', 'year', 'revision', 'recorded_at'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('observation_revision', schema=None) as batch_op:
        batch_op.drop_index('ix_observation_revision_as_of')

"""A change sequence: every revision numbered in commit order, for sync by cursor (`since`).

Timestamps come from the clocks of the app servers and are taken before commit, so a poller
asking for what changed after a time can miss a write; a sequence number handed out inside the
serialised write transaction cannot be missed. Existing revisions are numbered in the order they
were recorded (then by id), each observation takes its latest revision's number, and the
counter in `data_version` starts after the highest.

Revision ID: 0007
Revises: 0004 (re-chained at merge after 0005 and 0006)
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("observation_revision", "observation", "data_version")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("change_seq", sa.Integer(), server_default="0", nullable=False)
            )
    op.execute(
        sa.text(
            "UPDATE observation_revision SET change_seq = numbered.seq FROM ("
            " SELECT id, row_number() OVER (ORDER BY recorded_at, id) AS seq"
            " FROM observation_revision) AS numbered"
            " WHERE observation_revision.id = numbered.id"
        )
    )
    op.execute(
        sa.text(
            "UPDATE observation SET change_seq = COALESCE(("
            " SELECT r.change_seq FROM observation_revision r"
            " WHERE r.indicator_id = observation.indicator_id"
            " AND r.region_id = observation.region_id AND r.year = observation.year"
            " AND r.revision = observation.revision), 0)"
        )
    )
    op.execute(
        sa.text(
            "UPDATE data_version SET change_seq ="
            " (SELECT COALESCE(MAX(change_seq), 0) FROM observation_revision)"
        )
    )
    with op.batch_alter_table("observation_revision", schema=None) as batch_op:
        batch_op.create_index("ix_observation_revision_change_seq", ["change_seq"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("observation_revision", schema=None) as batch_op:
        batch_op.drop_index("ix_observation_revision_change_seq")
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("change_seq")

"""Initial schema: categories, units, regions, indicators, sources, observations and revisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:36:39.700113
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.coltypes

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=True),
    sa.Column('description_en', sa.Text(), nullable=True),
    sa.Column('display_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_category')),
    sa.UniqueConstraint('code', name=op.f('uq_category_code'))
    )
    op.create_table('data_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', app.coltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_version'))
    )
    op.create_table('region',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("level IN ('prefecture', 'district', 'county_city')", name=op.f('ck_region_level_valid')),
    sa.ForeignKeyConstraint(['parent_id'], ['region.id'], name=op.f('fk_region_parent_id_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region')),
    sa.UniqueConstraint('code', name=op.f('uq_region_code'))
    )
    op.create_table('source',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('title_zh', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('title_en', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('publisher_zh', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('publisher_en', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('published_on', sa.Date(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('year_covered', sa.Integer(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('text_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source')),
    sa.UniqueConstraint('code', name=op.f('uq_source_code'))
    )
    op.create_table('unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit')),
    sa.UniqueConstraint('code', name=op.f('uq_unit_code'))
    )
    op.create_table('indicator',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('name_zh', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('name_en', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('measure_type', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=True),
    sa.Column('description_en', sa.Text(), nullable=True),
    sa.Column('display_order', sa.Integer(), nullable=False),
    sa.CheckConstraint("measure_type IN ('flow', 'stock', 'rate', 'ratio')", name=op.f('ck_indicator_measure_type_valid')),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_indicator_category_id_category')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_indicator_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicator')),
    sa.UniqueConstraint('code', name=op.f('uq_indicator_code'))
    )
    with op.batch_alter_table('indicator', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_indicator_category_id'), ['category_id'], unique=False)

    op.create_table('observation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('indicator_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('value', app.coltypes.ExactDecimal(precision=21, scale=6), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('qualifier', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('quote', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', app.coltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', app.coltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint("qualifier IN ('exact', 'at_least', 'approximate', 'at_most')", name=op.f('ck_observation_qualifier_valid')),
    sa.ForeignKeyConstraint(['indicator_id'], ['indicator.id'], name=op.f('fk_observation_indicator_id_indicator')),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_observation_region_id_region')),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_observation_source_id_source')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_observation_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observation')),
    sa.UniqueConstraint('indicator_id', 'region_id', 'year', name='uq_observation_series_year')
    )
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.create_index('ix_observation_year_region', ['year', 'region_id'], unique=False)

    op.create_table('observation_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('indicator_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('value', app.coltypes.ExactDecimal(precision=21, scale=6), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('qualifier', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('quote', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_at', app.coltypes.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.CheckConstraint("action IN ('create', 'update', 'delete')", name=op.f('ck_observation_revision_action_valid')),
    sa.CheckConstraint("qualifier IN ('exact', 'at_least', 'approximate', 'at_most')", name=op.f('ck_observation_revision_qualifier_valid')),
    sa.ForeignKeyConstraint(['indicator_id'], ['indicator.id'], name=op.f('fk_observation_revision_indicator_id_indicator')),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_observation_revision_region_id_region')),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_observation_revision_source_id_source')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_observation_revision_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observation_revision')),
    sa.UniqueConstraint('indicator_id', 'region_id', 'year', 'revision', name='uq_observation_revision_number')
    )
    with op.batch_alter_table('observation_revision', schema=None) as batch_op:
        batch_op.create_index('ix_observation_revision_recorded_at', ['recorded_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('observation_revision', schema=None) as batch_op:
        batch_op.drop_index('ix_observation_revision_recorded_at')

    op.drop_table('observation_revision')
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.drop_index('ix_observation_year_region')

    op.drop_table('observation')
    with op.batch_alter_table('indicator', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_indicator_category_id'))

    op.drop_table('indicator')
    op.drop_table('unit')
    op.drop_table('source')
    op.drop_table('region')
    op.drop_table('data_version')
    op.drop_table('category')

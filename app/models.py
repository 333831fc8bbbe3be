"""Tables. Alembic (migrations/) is the only thing that creates them.

Natural keys (`code`) are what the API shows; integer ids exist only for joins.
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from app.coltypes import ExactDecimal, UTCDateTime

# Named constraints before the first migration, so that later migrations can refer to them.
SQLModel.metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> Column[datetime]:
    return Column(UTCDateTime(), nullable=False, default=utcnow)


def _change_seq() -> Column[int]:
    """The change sequence: assigned by app/writes.py inside the write transaction, from the
    counter in `data_version` (the server default only stands for rows from before it)."""
    return Column(Integer(), nullable=False, server_default="0")


class MeasureType(StrEnum):
    """What kind of quantity an indicator is: flow, stock, rate or ratio."""

    flow = "flow"  # counted within the year (people trained in 2023)
    stock = "stock"  # a level at year end (cards issued so far)
    rate = "rate"  # a percentage (share of officers placed)
    ratio = "ratio"  # x to 1 (posts per soldier)


class Qualifier(StrEnum):
    """How the published text states a value: exactly, as a floor, nearly, or as a ceiling."""

    exact = "exact"  # 608人次, 达到96.6%
    at_least = "at_least"  # 余, 多, 超, 超过, +
    approximate = "approximate"  # 近, 约
    at_most = "at_most"  # 不到, 以下 (none in the 2023 review)


class RegionLevel(StrEnum):
    """The administrative level of a region."""

    prefecture = "prefecture"  # 地级市: 常州市
    district = "district"  # 市辖区
    county_city = "county_city"  # 县级市: 溧阳市


class RevisionAction(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"


def _enum_check(column: str, enum: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


class Category(SQLModel, table=True):
    __tablename__ = "category"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    description_zh: str | None = Field(default=None, sa_type=Text)
    description_en: str | None = Field(default=None, sa_type=Text)
    display_order: int = Field(default=0)


class Unit(SQLModel, table=True):
    __tablename__ = "unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name_zh: str = Field(max_length=50)
    name_en: str = Field(max_length=100)


class Region(SQLModel, table=True):
    __tablename__ = "region"
    __table_args__ = (_enum_check("level", RegionLevel),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=12, unique=True)  # GB/T 2260
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    level: str = Field(max_length=20)
    parent_id: int | None = Field(default=None, foreign_key="region.id")


class Indicator(SQLModel, table=True):
    __tablename__ = "indicator"
    __table_args__ = (_enum_check("measure_type", MeasureType),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=100, unique=True)
    category_id: int = Field(foreign_key="category.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=300)
    measure_type: str = Field(max_length=10)
    description_zh: str | None = Field(default=None, sa_type=Text)
    description_en: str | None = Field(default=None, sa_type=Text)
    display_order: int = Field(default=0)
    # A single event (one family's claim), not a quantity measured every year: comparisons
    # and series answer `not_a_series` rather than a change (app/comparisons.py).
    single_event: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Source(SQLModel, table=True):
    __tablename__ = "source"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=100, unique=True)
    title_zh: str = Field(max_length=300)
    title_en: str = Field(max_length=300)
    publisher_zh: str = Field(max_length=200)
    publisher_en: str = Field(max_length=200)
    published_on: date
    url: str | None = Field(default=None, max_length=1000)
    year_covered: int
    language: str = Field(default="zh-Hans", max_length=20)
    text_sha256: str | None = Field(default=None, max_length=64)
    # The full text, byte-identical to seed/sources/: several app servers share one database,
    # so the text lives where every server can read it.
    text: str | None = Field(default=None, sa_type=Text)


class Observation(SQLModel, table=True):
    """The published value of one indicator, in one region, for one year."""

    __tablename__ = "observation"
    __table_args__ = (
        UniqueConstraint("indicator_id", "region_id", "year", name="uq_observation_series_year"),
        _enum_check("qualifier", Qualifier),
        Index("ix_observation_year_region", "year", "region_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    indicator_id: int = Field(foreign_key="indicator.id")
    region_id: int = Field(foreign_key="region.id")
    year: int
    value: Decimal = Field(sa_type=ExactDecimal)
    # The unit the value was published in; normally the indicator's. Comparisons refuse to
    # compare two years whose units differ (`unit_changed`) rather than mix them.
    unit_id: int = Field(foreign_key="unit.id")
    qualifier: str = Field(default=Qualifier.exact.value, max_length=12)
    source_id: int = Field(foreign_key="source.id")
    quote: str = Field(sa_type=Text)
    note: str | None = Field(default=None, sa_type=Text)
    # Computed by the bureau (a sum, a rate) rather than stated: the note says how, and the
    # provenance check does not look for the value in the quote (app/provenance.py).
    derived: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    revision: int = Field(default=1)  # how many states it has had; part of its ETag
    change_seq: int = Field(sa_column=_change_seq())  # that of its latest revision
    created_at: datetime = Field(sa_column=_timestamp())
    updated_at: datetime = Field(sa_column=_timestamp())


class ObservationRevision(SQLModel, table=True):
    """Every state an observation has had, kept when it changes or is deleted.

    One row per change, holding the state *after* the change (a delete holds the last state),
    so the history of a series is complete and "as the data stood at time T" is the latest row
    recorded at or before T.
    """

    __tablename__ = "observation_revision"
    __table_args__ = (
        _enum_check("action", RevisionAction),
        _enum_check("qualifier", Qualifier),
        UniqueConstraint(
            "indicator_id", "region_id", "year", "revision", name="uq_observation_revision_number"
        ),
        Index("ix_observation_revision_recorded_at", "recorded_at"),
        # "As the data stood at T": whether a series has a later revision recorded by T is one
        # probe of this index, read alone (app/queries.py `observation_states`).
        Index(
            "ix_observation_revision_as_of",
            "indicator_id",
            "region_id",
            "year",
            "revision",
            "recorded_at",
        ),
        # Sync by cursor (`since`): the changes after a sequence number, in order.
        Index("ix_observation_revision_change_seq", "change_seq", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    indicator_id: int = Field(foreign_key="indicator.id")
    region_id: int = Field(foreign_key="region.id")
    year: int
    revision: int
    action: str = Field(max_length=10)
    value: Decimal = Field(sa_type=ExactDecimal)
    unit_id: int = Field(foreign_key="unit.id")
    qualifier: str = Field(max_length=12)
    source_id: int = Field(foreign_key="source.id")
    quote: str = Field(sa_type=Text)
    note: str | None = Field(default=None, sa_type=Text)
    # Computed by the bureau (a sum, a rate) rather than stated: the note says how, and the
    # provenance check does not look for the value in the quote (app/provenance.py).
    derived: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    recorded_at: datetime = Field(sa_column=_timestamp())
    recorded_by: str = Field(max_length=100)  # "seed:<file>", or an API key's name
    # Strictly increasing in commit order, one per revision: a client that asks for the
    # changes after the last one it saw (`since`) misses none, whatever the clocks say.
    change_seq: int = Field(sa_column=_change_seq())


class DataVersion(SQLModel, table=True):
    """One row: a counter bumped by every write; ETags and Last-Modified derive from it.

    `change_seq` is the last change sequence number handed out (app/writes.py)."""

    __tablename__ = "data_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0)
    change_seq: int = Field(sa_column=_change_seq())
    changed_at: datetime = Field(sa_column=_timestamp())


# The Core tables, for queries that select columns rather than build model objects.
category_table = SQLModel.metadata.tables["category"]
unit_table = SQLModel.metadata.tables["unit"]
region_table = SQLModel.metadata.tables["region"]
indicator_table = SQLModel.metadata.tables["indicator"]
source_table = SQLModel.metadata.tables["source"]
observation_table = SQLModel.metadata.tables["observation"]
revision_table = SQLModel.metadata.tables["observation_revision"]
data_version_table = SQLModel.metadata.tables["data_version"]


class ApiKey(SQLModel, table=True):
    """A key for the write API. Only the SHA-256 of the token is kept; the token is shown once."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_sha256: str = Field(max_length=64, unique=True)
    scopes: str = Field(max_length=200)  # space-separated, as in OAuth: "write admin"
    created_at: datetime = Field(sa_column=_timestamp())
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a POST with an Idempotency-Key, replayed when it is retried.

    Only the answer's summary is kept (never its per-row report), until `expires_at`
    (setting `idempotency_ttl_hours`); expired records of a key are deleted when that key
    stores its next answer."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_idempotency_record_key"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id")
    key: str = Field(max_length=200)
    request_sha256: str = Field(max_length=64)
    status_code: int
    response_summary: str = Field(sa_type=Text)  # the JSON answer without `rows`
    created_at: datetime = Field(sa_column=_timestamp())
    expires_at: datetime = Field(sa_type=UTCDateTime)


api_key_table = SQLModel.metadata.tables["api_key"]
idempotency_table = SQLModel.metadata.tables["idempotency_record"]

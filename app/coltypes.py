"""Column types that behave the same on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from app.decimals import MAX_DECIMAL_PLACES, normalize


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(21, 6) that hands back normalized Decimals on both databases."""

    impl = Numeric(21, MAX_DECIMAL_PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            # Take the raw double and convert it ourselves (SQLAlchemy's own conversion warns).
            return dialect.type_descriptor(Numeric(21, MAX_DECIMAL_PLACES, asdecimal=False))
        return dialect.type_descriptor(Numeric(21, MAX_DECIMAL_PLACES))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return float(value)  # exact for <= 15 significant digits, see module docstring
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):
            if value.is_integer():
                return Decimal(int(value))  # 120000.0 -> 120000, and -0.0 -> 0
            text = repr(value)  # the shortest text that reads back as this double
            return normalize(Decimal(text)) if "e" in text else Decimal(text)
        return normalize(Decimal(value))


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

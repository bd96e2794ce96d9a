"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

UTC = dt.timezone.utc


class UTCDateTime(sa.types.TypeDecorator):
    """An aware UTC timestamp.

    PostgreSQL stores ``timestamptz``. SQLite stores seconds since the epoch as a REAL, so
    comparisons and arithmetic are numeric, never string comparisons of formatted dates
    (query them with ``datetime(col, 'unixepoch')``). Naive datetimes are refused.
    """

    impl = sa.Float
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(sa.Float())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (int, float)):
            value = dt.datetime.fromtimestamp(value, UTC)
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC timestamp is required")
        if dialect.name == "postgresql":
            return value.astimezone(UTC)
        return value.timestamp()

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.astimezone(UTC)
        return dt.datetime.fromtimestamp(float(value), UTC)


#: JSON documents: JSONB on PostgreSQL, JSON text on SQLite
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

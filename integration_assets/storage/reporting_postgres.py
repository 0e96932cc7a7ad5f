"""Publish a reporting mart to PostgreSQL: one transaction, a COPY into staging, an upsert, a delete.

A mart is a table whose rows are all derived (DuckDB builds it from core); PostgreSQL holds a copy for
the people and tools that read reports there. `publish_mart` makes the PostgreSQL table equal to the
mart, idempotently, inside ONE transaction (a failure anywhere leaves the table as it was):

1. `reporting.<table>` is created if missing (primary key on the mart's key columns); a column the
   mart gained is added (`ALTER TABLE ... ADD COLUMN`); a column whose type changed, or a different
   key, fails with an error naming the table and the column, and changes nothing;
2. every row is bulk-loaded with `COPY ... FROM STDIN` (CSV) into a temporary staging table;
3. `INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE <row> IS DISTINCT FROM <new row>`:
   a row equal to what is there is not written at all, so an identical re-run changes nothing;
4. the rows whose key is no longer in the mart are deleted: all of them for a mart rebuilt whole, or
   only those inside the partition window being replaced (`PartitionWindow`).

Every row is accounted for: copied = inserted + updated + unchanged, returned as `PublishCounts`.
Errors name the table and `postgres://host/db`, never the URL's user or password.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pandas as pd
import psycopg2
from psycopg2 import sql

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")
DEFAULT_PORT = 5432
CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "integration_assets reporting"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

BIGINT = "BIGINT"
DOUBLE = "DOUBLE PRECISION"
NUMERIC = "NUMERIC"
TEXT = "TEXT"
DATE = "DATE"
TIMESTAMP = "TIMESTAMP"
TIMESTAMPTZ = "TIMESTAMPTZ"
BOOLEAN = "BOOLEAN"

# How PostgreSQL's information_schema names each type we create (to compare with an existing table).
CATALOG_NAMES = {
    BIGINT: "bigint",
    DOUBLE: "double precision",
    NUMERIC: "numeric",
    TEXT: "text",
    DATE: "date",
    TIMESTAMP: "timestamp without time zone",
    TIMESTAMPTZ: "timestamp with time zone",
    BOOLEAN: "boolean",
}

# DuckDB type id -> PostgreSQL type. Every integer width becomes BIGINT (a HUGEINT sum of minor units
# that did not fit would fail the COPY loudly, never wrap); sub-second precision beyond microseconds
# (TIMESTAMP_NS) is dropped, as PostgreSQL keeps microseconds.
DUCKDB_TYPES = {
    **dict.fromkeys(
        (
            "tinyint",
            "smallint",
            "integer",
            "bigint",
            "hugeint",
            "utinyint",
            "usmallint",
            "uinteger",
            "ubigint",
            "uhugeint",
        ),
        BIGINT,
    ),
    "float": DOUBLE,
    "double": DOUBLE,
    "decimal": NUMERIC,
    "varchar": TEXT,
    "json": TEXT,
    "date": DATE,
    **dict.fromkeys(("timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"), TIMESTAMP),
    "timestamp with time zone": TIMESTAMPTZ,
    "boolean": BOOLEAN,
}


class ReportingDatabaseError(RuntimeError):
    """Publishing to the reporting database failed; the message names no credential."""


class ReportingSchemaError(ReportingDatabaseError):
    """The mart and the PostgreSQL table disagree in a way an added column cannot fix."""


class ReportingLoadError(ReportingDatabaseError):
    """PostgreSQL refused the load (connection, a value, a constraint): nothing was changed."""


@dataclass(frozen=True)
class ReportingTarget:
    """Where marts are published. `dsn` holds the password: never print it, use `location`."""

    dsn: str = field(repr=False)
    location: str

    def connect(self):
        try:
            return psycopg2.connect(
                self.dsn,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=APPLICATION_NAME,
            )
        except psycopg2.Error as error:
            raise ReportingLoadError(
                f"cannot connect to the reporting database {self.location}: "
                f"{_redacted(error, self.dsn)}"
            ) from None


def safe_location(url: str) -> str:
    """`postgres://host/db` (port only when not 5432): what logs, errors and metadata may show."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port
    except ValueError:
        port = None
    where = host if port in (None, DEFAULT_PORT) else f"{host}:{port}"
    return f"postgres://{where}/{parts.path.lstrip('/')}"


def reporting_target(url: str) -> ReportingTarget | None:
    """The target a URL names; None for an empty one (DuckDB only). Accepts `postgresql://`,
    `postgres://` and SQLAlchemy's `postgresql+psycopg2://` (as the Dagster instance's URLs)."""
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ACCEPTED_SCHEMES:
        raise ReportingDatabaseError(
            f"the reporting database URL must start with postgresql:// (or postgresql+psycopg2://), "
            f"not {parts.scheme or '(no scheme)'}://"
        )
    if not parts.path.strip("/"):
        raise ReportingDatabaseError(
            f"the reporting database URL names no database ({safe_location(url)})"
        )
    return ReportingTarget(
        dsn=urlunsplit(parts._replace(scheme="postgresql")), location=safe_location(url)
    )


@dataclass(frozen=True)
class Mart:
    """A mart's rows (plain Python values), its columns with their PostgreSQL types, and its key."""

    table: str  # schema.table, e.g. reporting.orders_per_day
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    key: tuple[str, ...]
    rows: list[tuple]

    def __post_init__(self) -> None:
        schema, _, name = self.table.partition(".")
        names = [column for column, _ in self.columns]
        for identifier in (schema, name, *names):
            if not IDENTIFIER.match(identifier):
                raise ReportingSchemaError(
                    f"{self.table}: {identifier!r} is not a plain lower-case SQL name"
                )
        if len(set(names)) != len(names):
            raise ReportingSchemaError(f"{self.table}: a column name repeats in {names}")
        if not self.key or any(column not in names for column in self.key):
            raise ReportingSchemaError(
                f"{self.table}: the key {list(self.key)} must name columns of the mart {names}"
            )
        for column, pg_type in self.columns:
            if pg_type not in CATALOG_NAMES:
                raise ReportingSchemaError(f"{self.table}.{column}: unknown type {pg_type}")

    @property
    def schema(self) -> str:
        return self.table.partition(".")[0]

    @property
    def name(self) -> str:
        return self.table.partition(".")[2]

    @property
    def column_names(self) -> list[str]:
        return [column for column, _ in self.columns]


@dataclass(frozen=True)
class PartitionWindow:
    """The rows of a partitioned mart being replaced: `start <= column < end` (naive UTC)."""

    column: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class PublishCounts:
    rows_copied: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    rows_deleted: int
    rows_in_table: int
    columns_added: tuple[str, ...] = ()

    def as_metadata(self) -> dict[str, int | str]:
        return {
            "postgres_rows_copied": self.rows_copied,
            "postgres_rows_inserted": self.rows_inserted,
            "postgres_rows_updated": self.rows_updated,
            "postgres_rows_unchanged": self.rows_unchanged,
            "postgres_rows_deleted": self.rows_deleted,
            "postgres_rows_in_table": self.rows_in_table,
            "postgres_columns_added": ", ".join(self.columns_added) or "none",
        }


def duckdb_type_to_postgres(table: str, column: str, duckdb_type: str) -> str:
    found = DUCKDB_TYPES.get(duckdb_type.lower())
    if found is None:
        raise ReportingSchemaError(
            f"{table}.{column}: DuckDB type {duckdb_type} has no PostgreSQL mapping here "
            f"(known: {', '.join(sorted(DUCKDB_TYPES))})"
        )
    return found


def mart_from_duckdb(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: Sequence[str],
    where: str = "",
    params: Sequence = (),
) -> Mart:
    """The rows of DuckDB table `table` (optionally `WHERE <where>`), typed from DuckDB's own types.
    Reads on `con` itself, so inside a transaction it sees what the transaction wrote."""
    result = con.execute(f"SELECT * FROM {table}{f' WHERE {where}' if where else ''}", list(params))
    columns = tuple(
        (name, duckdb_type_to_postgres(table, name, _duckdb_type_id(duckdb_type)))
        for name, duckdb_type, *_ in result.description
    )
    return Mart(table, columns, tuple(key), result.fetchall())


def _duckdb_type_id(duckdb_type) -> str:
    """`bigint`, `decimal`, `timestamp with time zone`: the type without its parameters."""
    return getattr(duckdb_type, "id", None) or str(duckdb_type).split("(")[0].lower()


def _python_value(value):
    """numpy scalars as Python values; pandas' missing markers (NaN, NaT, NA) as None."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (pd.Timestamp, datetime, date)):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def csv_field(value, pg_type: str) -> str:
    """One value as a CSV field PostgreSQL reads back exactly. NULL is the only unquoted empty
    field; text is always quoted, so an empty string, quotes, commas, newlines and a leading `=`
    arrive verbatim."""
    value = _python_value(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None and pg_type != TIMESTAMPTZ:
            # a TIMESTAMP column holds naive UTC (as the warehouse does); PostgreSQL would drop the offset
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    raise ReportingSchemaError(f"cannot write a {type(value).__name__} into a {pg_type} column")


def csv_rows(mart: Mart) -> io.StringIO:
    types = [pg_type for _, pg_type in mart.columns]
    buffer = io.StringIO()
    for row in mart.rows:
        buffer.write(",".join(csv_field(v, t) for v, t in zip(row, types, strict=True)))
        buffer.write("\n")
    buffer.seek(0)
    return buffer


def _redacted(error: BaseException, dsn: str) -> str:
    text = " ".join(str(error).split())
    password = urlsplit(dsn).password
    if password:
        text = text.replace(password, "***")
    return f"{type(error).__name__}: {text}"


def publish_mart(
    target: ReportingTarget, mart: Mart, window: PartitionWindow | None = None
) -> PublishCounts:
    """Make PostgreSQL's `mart.table` equal to the mart (within `window` for a partitioned one), in
    one transaction. Returns what happened to every row."""
    if window is not None and window.column not in mart.column_names:
        raise ReportingSchemaError(f"{mart.table}: no column {window.column} for the window")
    connection = target.connect()
    try:
        with connection, connection.cursor() as cursor:
            return _publish(cursor, mart, window)
    except psycopg2.Error as error:
        raise ReportingLoadError(
            f"publishing {mart.table} to {target.location} failed and was rolled back "
            f"(the table is as it was): {_redacted(error, target.dsn)}"
        ) from None
    finally:
        connection.close()


def _publish(cursor, mart: Mart, window: PartitionWindow | None) -> PublishCounts:
    table = sql.Identifier(mart.schema, mart.name)
    stage = sql.Identifier(f"{mart.name}_stage")
    names = mart.column_names
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in names)
    key = sql.SQL(", ").join(sql.Identifier(c) for c in mart.key)
    key_matches = sql.SQL(" AND ").join(
        sql.SQL("staged.{c} = target.{c}").format(c=sql.Identifier(c)) for c in mart.key
    )

    # Publishers of the same table wait for each other: two would otherwise race on CREATE TABLE and
    # each delete what the other just wrote.
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [mart.table])
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(mart.schema)))
    columns_added = _create_or_evolve(cursor, mart, table)

    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in mart.columns
    )
    cursor.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(stage, definitions)
    )
    cursor.copy_expert(
        sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)")
        .format(stage, columns)
        .as_string(cursor.connection),
        csv_rows(mart),
    )
    copied = cursor.rowcount
    _refuse_bad_keys(cursor, mart, stage, key)
    if window is not None:
        _refuse_rows_outside(cursor, mart, stage, window)

    value_columns = [c for c in names if c not in mart.key]
    if value_columns:
        changed = sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(
            sql.SQL(", ").join(
                sql.SQL("target.{}").format(sql.Identifier(c)) for c in value_columns
            ),
            sql.SQL(", ").join(
                sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in value_columns
            ),
        )
        on_conflict = sql.SQL("DO UPDATE SET {} WHERE {}").format(
            sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in value_columns
            ),
            changed,
        )
    else:
        on_conflict = sql.SQL("DO NOTHING")
    # xmax = 0 on a row version this statement inserted; an updated row carries the updater's xid.
    cursor.execute(
        sql.SQL(
            "WITH written AS (INSERT INTO {table} AS target ({columns}) "
            "SELECT {columns} FROM {stage} ORDER BY {key} ON CONFLICT ({key}) {on_conflict} "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
        ).format(table=table, columns=columns, stage=stage, key=key, on_conflict=on_conflict)
    )
    inserted, updated = cursor.fetchone()

    in_window = sql.SQL("")
    params: list = []
    if window is not None:
        in_window = sql.SQL("target.{c} >= %s AND target.{c} < %s AND ").format(
            c=sql.Identifier(window.column)
        )
        params = [window.start, window.end]
    cursor.execute(
        sql.SQL(
            "WITH gone AS (DELETE FROM {table} AS target WHERE {in_window}"
            "NOT EXISTS (SELECT 1 FROM {stage} AS staged WHERE {key_matches}) RETURNING 1) "
            "SELECT count(*) FROM gone"
        ).format(table=table, in_window=in_window, stage=stage, key_matches=key_matches),
        params,
    )
    deleted = cursor.fetchone()[0]
    cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
    in_table = cursor.fetchone()[0]
    return PublishCounts(
        rows_copied=copied,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_unchanged=copied - inserted - updated,
        rows_deleted=deleted,
        rows_in_table=in_table,
        columns_added=tuple(columns_added),
    )


def _create_or_evolve(cursor, mart: Mart, table) -> list[str]:
    """Create the table, or add the mart's new columns to it; refuse a changed type or key."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [mart.schema, mart.name],
    )
    existing = dict(cursor.fetchall())
    if not existing:
        cursor.execute(
            sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in mart.columns
                ),
                sql.SQL(", ").join(sql.Identifier(c) for c in mart.key),
            )
        )
        return []
    for column, pg_type in mart.columns:
        if column in existing and existing[column] != CATALOG_NAMES[pg_type]:
            raise ReportingSchemaError(
                f"{mart.table}.{column} is {existing[column]} in PostgreSQL but the mart now makes it "
                f"{CATALOG_NAMES[pg_type]}: a type change is not applied automatically (migrate the "
                f"column, or drop the table to have it rebuilt); nothing was published"
            )
    primary_key = _primary_key(cursor, mart)
    if primary_key != list(mart.key):
        raise ReportingSchemaError(
            f"{mart.table} has the primary key {primary_key or 'none'} in PostgreSQL but the mart's key "
            f"is {list(mart.key)}; nothing was published"
        )
    added = [column for column, _ in mart.columns if column not in existing]
    for column in added:
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                table, sql.Identifier(column), sql.SQL(dict(mart.columns)[column])
            )
        )
    return added


def _primary_key(cursor, mart: Mart) -> list[str]:
    cursor.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        [sql.Identifier(mart.schema, mart.name).as_string(cursor.connection)],
    )
    return [name for (name,) in cursor.fetchall()]


def _refuse_bad_keys(cursor, mart: Mart, stage, key) -> None:
    no_key = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in mart.key)
    cursor.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(stage, no_key))
    missing = cursor.fetchone()[0]
    if missing:
        raise ReportingSchemaError(
            f"{mart.table}: {missing} row(s) have no key (NULL in {', '.join(mart.key)}); nothing was published"
        )
    cursor.execute(
        sql.SQL(
            "SELECT {key}, count(*) FROM {stage} GROUP BY {key} HAVING count(*) > 1 ORDER BY {key} LIMIT 3"
        ).format(key=key, stage=stage)
    )
    repeated = cursor.fetchall()
    if repeated:
        raise ReportingSchemaError(
            f"{mart.table}: the key {list(mart.key)} repeats in the mart, e.g. "
            f"{[tuple(row[:-1]) for row in repeated]}; nothing was published"
        )


def _refuse_rows_outside(cursor, mart: Mart, stage, window: PartitionWindow) -> None:
    cursor.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {c} IS NULL OR NOT ({c} >= %s AND {c} < %s)").format(
            stage, c=sql.Identifier(window.column)
        ),
        [window.start, window.end],
    )
    outside = cursor.fetchone()[0]
    if outside:
        raise ReportingSchemaError(
            f"{mart.table}: {outside} row(s) fall outside the window {window.column} in "
            f"[{window.start}, {window.end}) being replaced; nothing was published"
        )

"""publish_mart against the real PostgreSQL server, each test in its own database."""

from datetime import date, datetime
from urllib.parse import urlsplit, urlunsplit

import pytest

from integration_assets.storage.reporting_postgres import (
    BIGINT,
    DATE,
    DOUBLE,
    TEXT,
    TIMESTAMP,
    Mart,
    PartitionWindow,
    ReportingLoadError,
    ReportingSchemaError,
    publish_mart,
    reporting_target,
)

PASSWORD = "s3cret-reporting-pw"
TABLE = "reporting.sales"
COLUMNS = (("day", DATE), ("currency", TEXT), ("orders", BIGINT), ("note", TEXT))
KEY = ("day", "currency")
FIRST_ROWS = [
    (date(2026, 11, 20), "USD", 3, "first"),
    (date(2026, 11, 20), "EUR", 1, None),
    (date(2026, 11, 21), "USD", 2, ""),
]


def with_password(url: str) -> str:
    """The same database, with a password in the URL (the trust-auth server ignores it)."""
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=f"{parts.username}:{PASSWORD}@{parts.hostname}:{parts.port}")
    )


@pytest.fixture
def target(postgres_database):
    return reporting_target(with_password(postgres_database.url))


def table_rows(database, table: str = TABLE, order_by: str = "day, currency") -> list[tuple]:
    with database.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
        return cursor.fetchall()


def duplicate_keys(database, table: str = TABLE, key: str = "day, currency") -> list[tuple]:
    with database.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, count(*) FROM {table} GROUP BY {key} HAVING count(*) > 1")
        return cursor.fetchall()


def sales(rows, columns=COLUMNS) -> Mart:
    return Mart(TABLE, columns, KEY, list(rows))


def test_a_first_load_inserts_and_an_identical_rerun_changes_nothing(target, postgres_database):
    first = publish_mart(target, sales(FIRST_ROWS))
    assert (first.rows_copied, first.rows_inserted, first.rows_updated, first.rows_deleted) == (
        3,
        3,
        0,
        0,
    )
    before = table_rows(postgres_database)
    again = publish_mart(target, sales(FIRST_ROWS))
    assert (again.rows_inserted, again.rows_updated, again.rows_deleted) == (0, 0, 0)
    assert again.rows_unchanged == again.rows_copied == again.rows_in_table == 3
    assert table_rows(postgres_database) == before == sorted(FIRST_ROWS, key=lambda r: (r[0], r[1]))
    assert duplicate_keys(postgres_database) == []


def test_a_changed_row_is_updated_and_a_vanished_key_deleted(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    changed = [
        (date(2026, 11, 20), "USD", 4, "first, corrected"),
        (date(2026, 11, 21), "USD", 2, ""),
        (date(2026, 11, 22), "USD", 1, "new"),
    ]
    counts = publish_mart(target, sales(changed))
    assert counts.rows_inserted == 1 and counts.rows_updated == 1 and counts.rows_unchanged == 1
    assert counts.rows_deleted == 1 and counts.rows_in_table == 3
    assert table_rows(postgres_database) == sorted(changed, key=lambda r: (r[0], r[1]))


def test_an_empty_mart_empties_the_table(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    counts = publish_mart(target, sales([]))
    assert counts.rows_deleted == 3 and table_rows(postgres_database) == []


HOSTILE = [
    'He said "hi", then left',
    "line one\nline two\r\nline three",
    '=HYPERLINK("http://evil.example/?q=1,2","click me")',
    "+SUM(A1:A9)",
    "@cmd",
    "",
    " ",
    "NULL",
    "\\N",
    "tab\there",
    '"',
    '""',
    "trailing backslash\\",
    "ünïcødé ✓ 注文",
    None,
]


def test_hostile_text_and_nulls_survive_verbatim(target, postgres_database):
    columns = (
        ("id", BIGINT),
        ("note", TEXT),
        ("amount", DOUBLE),
        ("at", TIMESTAMP),
    )
    rows = [
        (
            index,
            text,
            None if text is None else index / 10,
            None if text is None else datetime(2026, 11, 20, 14, 0, 0, index),
        )
        for index, text in enumerate(HOSTILE)
    ]
    publish_mart(target, Mart("reporting.notes", columns, ("id",), rows))
    assert table_rows(postgres_database, "reporting.notes", "id") == rows
    # an empty string and NULL stay apart
    by_id = dict((row[0], row[1]) for row in rows)
    assert by_id[HOSTILE.index("")] == "" and by_id[len(HOSTILE) - 1] is None
    again = publish_mart(target, Mart("reporting.notes", columns, ("id",), rows))
    assert again.rows_unchanged == len(rows)  # every value compares equal after the round trip


def test_a_new_column_is_added_and_filled(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    wider = COLUMNS + (("refunded_minor", BIGINT),)
    rows = [(*row, 10 * index) for index, row in enumerate(FIRST_ROWS)]
    counts = publish_mart(target, sales(rows, wider))
    assert counts.columns_added == ("refunded_minor",)
    assert counts.rows_updated == 3  # every row gained a value
    assert table_rows(postgres_database) == sorted(rows, key=lambda r: (r[0], r[1]))


def test_a_type_change_fails_naming_table_and_column_and_changes_nothing(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    before = table_rows(postgres_database)
    retyped = (("day", DATE), ("currency", TEXT), ("orders", DOUBLE), ("note", TEXT))
    with pytest.raises(ReportingSchemaError) as refused:
        publish_mart(target, sales([(date(2026, 11, 20), "USD", 9.5, "x")], retyped))
    assert "reporting.sales.orders" in str(refused.value)
    assert "bigint" in str(refused.value) and "double precision" in str(refused.value)
    assert table_rows(postgres_database) == before


def test_a_different_key_is_refused(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    with pytest.raises(ReportingSchemaError, match="primary key"):
        publish_mart(target, Mart(TABLE, COLUMNS, ("day",), FIRST_ROWS[:1]))


def test_a_failed_load_rolls_back_whole_and_names_no_password(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    before = table_rows(postgres_database)
    wider = COLUMNS + (("extra", TEXT),)
    broken = [
        (date(2026, 11, 20), "USD", 5, "changed", "x"),
        (date(2026, 11, 23), "USD", "twelve", "not a number", "y"),  # violates BIGINT
    ]
    with pytest.raises(ReportingLoadError) as failed:
        publish_mart(target, sales(broken, wider))
    message = str(failed.value)
    assert "rolled back" in message and "reporting.sales" in message
    assert postgres_database.name in message and "bigint" in message
    assert PASSWORD not in message and PASSWORD not in repr(failed.value.__cause__)
    assert table_rows(postgres_database) == before  # no update, no delete, no new column
    with postgres_database.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'sales' AND column_name = 'extra'"
        )
        assert cursor.fetchone()[0] == 0


def test_an_unreachable_server_is_reported_without_the_password(postgres_database):
    unreachable = reporting_target(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/reporting")
    with pytest.raises(ReportingLoadError) as failed:
        publish_mart(unreachable, sales(FIRST_ROWS))
    assert "postgres://127.0.0.1:1/reporting" in str(failed.value)
    assert PASSWORD not in str(failed.value)


def test_repeated_or_missing_keys_are_refused_before_anything_is_written(target, postgres_database):
    publish_mart(target, sales(FIRST_ROWS))
    with pytest.raises(ReportingSchemaError, match="repeats"):
        publish_mart(target, sales([FIRST_ROWS[0], FIRST_ROWS[0]]))
    with pytest.raises(ReportingSchemaError, match="no key"):
        publish_mart(target, sales([(None, "USD", 1, "x")]))
    assert table_rows(postgres_database) == sorted(FIRST_ROWS, key=lambda r: (r[0], r[1]))


HOURLY = (("hour", TIMESTAMP), ("currency", TEXT), ("orders", BIGINT))


def hours(day: int, *counts: tuple[int, int]) -> list[tuple]:
    return [(datetime(2026, 11, day, hour), "USD", orders) for hour, orders in counts]


def day_window(day: int) -> PartitionWindow:
    return PartitionWindow("hour", datetime(2026, 11, day), datetime(2026, 11, day + 1))


def test_a_window_replaces_only_its_own_rows(target, postgres_database):
    mart = "reporting.hourly"
    publish_mart(
        target,
        Mart(mart, HOURLY, ("hour", "currency"), hours(20, (14, 2), (15, 1))),
        day_window(20),
    )
    publish_mart(
        target, Mart(mart, HOURLY, ("hour", "currency"), hours(21, (9, 5))), day_window(21)
    )
    # the 20th again: 15:00 is gone, 14:00 changed; the 21st is outside the window and stays
    counts = publish_mart(
        target, Mart(mart, HOURLY, ("hour", "currency"), hours(20, (14, 3))), day_window(20)
    )
    assert (counts.rows_updated, counts.rows_deleted, counts.rows_in_table) == (1, 1, 2)
    assert table_rows(postgres_database, mart, "hour") == [*hours(20, (14, 3)), *hours(21, (9, 5))]
    with pytest.raises(ReportingSchemaError, match="outside the window"):
        publish_mart(
            target, Mart(mart, HOURLY, ("hour", "currency"), hours(22, (1, 1))), day_window(20)
        )

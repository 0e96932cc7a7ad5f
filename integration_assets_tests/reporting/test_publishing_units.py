"""The publishing module's pure parts, without a server: URLs, CSV fields, types, open exception keys."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from integration_assets.defs.reporting.exceptions import exception_key, open_exceptions_mart
from integration_assets.defs.reporting.hourly import refresh_range
from integration_assets.storage.reporting_postgres import (
    BIGINT,
    BOOLEAN,
    DATE,
    DOUBLE,
    NUMERIC,
    TEXT,
    TIMESTAMP,
    TIMESTAMPTZ,
    Mart,
    ReportingDatabaseError,
    ReportingSchemaError,
    csv_field,
    reporting_target,
    safe_location,
)
from integration_assets.storage.resources import ReportingDatabaseResource

PASSWORD = "pa55-w0rd-never-shown"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://alice:{PASSWORD}@db.example.com:5432/reporting",
        f"postgresql+psycopg2://alice:{PASSWORD}@db.example.com/reporting",
        f"postgres://alice:{PASSWORD}@db.example.com/reporting",
    ],
)
def test_a_url_becomes_a_target_that_shows_host_and_database_only(url):
    target = reporting_target(url)
    assert target.location == "postgres://db.example.com/reporting"
    assert target.dsn.startswith("postgresql://")  # libpq does not know the +psycopg2 dialect
    assert PASSWORD not in repr(target) and "alice" not in target.location


def test_an_empty_url_means_duckdb_only_and_a_wrong_one_is_refused_without_its_password():
    assert reporting_target("") is None and reporting_target("   ") is None
    with pytest.raises(ReportingDatabaseError) as refused:
        reporting_target(f"mysql://alice:{PASSWORD}@db.example.com/reporting")
    assert "mysql://" in str(refused.value) and PASSWORD not in str(refused.value)
    with pytest.raises(ReportingDatabaseError, match="names no database"):
        reporting_target(f"postgresql://alice:{PASSWORD}@db.example.com")


def test_a_port_other_than_the_default_is_shown():
    assert safe_location("postgresql://u:p@h:6543/db") == "postgres://h:6543/db"


def test_the_resource_reads_the_environment_at_run_time_unless_told_not_to(monkeypatch):
    monkeypatch.delenv("REPORTING_DATABASE_URL", raising=False)
    resource = ReportingDatabaseResource()
    assert resource.target() is None
    assert resource.publish(Mart("reporting.t", (("k", BIGINT),), ("k",), [(1,)])) == {
        "published_to": "duckdb only"
    }
    monkeypatch.setenv("REPORTING_DATABASE_URL", f"postgresql://u:{PASSWORD}@h/db")
    assert resource.target().location == "postgres://h/db"  # the same object, read again
    assert ReportingDatabaseResource(read_environment=False).target() is None
    assert ReportingDatabaseResource(url="postgresql://h2/other").target().location == (
        "postgres://h2/other"
    )


@pytest.mark.parametrize(
    ("value", "pg_type", "field"),
    [
        (None, TEXT, ""),
        ("", TEXT, '""'),
        ('say "hi", then\nleave', TEXT, '"say ""hi"", then\nleave"'),
        ('=HYPERLINK("http://x","y")', TEXT, '"=HYPERLINK(""http://x"",""y"")"'),
        ("\\N", TEXT, '"\\N"'),
        (True, BOOLEAN, "true"),
        (np.int64(7), BIGINT, "7"),
        (float("nan"), DOUBLE, ""),
        (pd.NaT, TIMESTAMP, ""),
        (0.1, DOUBLE, "0.1"),
        (float("-inf"), DOUBLE, "-Infinity"),
        (Decimal("1.25"), NUMERIC, "1.25"),
        (date(2026, 11, 20), DATE, "2026-11-20"),
        (datetime(2026, 11, 20, 14, 0, 0, 123), TIMESTAMP, "2026-11-20 14:00:00.000123"),
        # an offset is turned into naive UTC for a TIMESTAMP column (PostgreSQL would drop it)
        (
            datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
            TIMESTAMP,
            "2026-11-20 14:00:00",
        ),
        (datetime(2026, 11, 20, 14, 0, tzinfo=UTC), TIMESTAMPTZ, "2026-11-20 14:00:00+00:00"),
    ],
)
def test_each_value_becomes_the_csv_field_postgresql_reads_back(value, pg_type, field):
    assert csv_field(value, pg_type) == field


def test_a_value_of_no_known_kind_is_refused():
    with pytest.raises(ReportingSchemaError, match="dict"):
        csv_field({"a": 1}, TEXT)


def test_a_mart_whose_key_or_names_are_wrong_is_refused_before_any_connection():
    with pytest.raises(ReportingSchemaError, match="key"):
        Mart("reporting.t", (("a", BIGINT),), ("b",), [])
    with pytest.raises(ReportingSchemaError, match="plain lower-case"):
        Mart("reporting.t; DROP TABLE x", (("a", BIGINT),), ("a",), [])


def _exception(kind, ref=None, entity=None, entity_id=None, detail="d", since=None):
    return {
        "kind": kind,
        "entity": entity,
        "entity_id": entity_id,
        "detail": detail,
        "ref": ref,
        "since": since,
        "command": None,
    }


def test_an_exception_with_a_reference_keeps_its_key_when_its_detail_changes():
    before = _exception("stuck_return", ref="RET-1", detail="3.0 h in requested")
    after = _exception("stuck_return", ref="RET-1", detail="4.0 h in requested")
    assert exception_key(before) == exception_key(after)
    unreferenced = _exception("oversell", entity="sku", entity_id="A", detail="available -1")
    changed = _exception("oversell", entity="sku", entity_id="A", detail="available -2")
    assert exception_key(unreferenced) != exception_key(changed)


def test_open_exceptions_rows_have_unique_keys_even_when_a_reference_repeats():
    exceptions = [
        _exception("mapping_quarantine", ref="core/order_heads:1@x", detail="erp"),
        _exception("mapping_quarantine", ref="core/order_heads:1@x", detail="wms"),
        _exception("quarantine", ref="raw/a#1", since="2026-11-20T14:00:00Z"),
    ]
    mart = open_exceptions_mart(exceptions)
    keys = [row[0] for row in mart.rows]
    assert len(set(keys)) == 3 and keys[1].endswith(" [2]")
    assert mart.rows[2][6] == datetime(2026, 11, 20, 14, 0)  # since as a naive UTC timestamp


def test_the_schedule_rebuilds_the_last_24_closed_hours():
    assert refresh_range(datetime(2026, 11, 21, 0, 15, tzinfo=UTC)) == (
        "2026-11-20-00:00",
        "2026-11-20-23:00",
    )
    assert refresh_range(datetime(2026, 11, 1, 2, 15, tzinfo=UTC)) == (
        "2026-11-01-00:00",
        "2026-11-01-01:00",
    )
    assert refresh_range(datetime(2026, 11, 1, 0, 15, tzinfo=UTC)) is None

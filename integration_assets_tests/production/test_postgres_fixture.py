"""The PostgreSQL fixture gives each test its own database on the real server, and drops it."""

import socket

import psycopg2
import pytest

from integration_assets_tests.postgres import create_test_database, drop_test_database


def test_each_test_database_is_created_empty_and_dropped_afterwards():
    database = create_test_database()
    with database.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_database(), count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        assert cursor.fetchone() == (database.name, 0)
    connection.close()
    drop_test_database(database)
    try:
        psycopg2.connect(database.url, connect_timeout=5).close()
    except psycopg2.OperationalError as error:
        assert "does not exist" in str(error)
    else:
        raise AssertionError(f"database {database.name} still exists after the drop")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv(
        "INTEGRATION_ASSETS_TEST_PG_URL",
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres",
    )
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI the PostgreSQL tests must run"):
        create_test_database()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        create_test_database()

"""The real PostgreSQL server on this machine, for the tests that need it: each gets its own database.

Where the server is: `INTEGRATION_ASSETS_TEST_PG_URL` (default
`postgresql://postgres@127.0.0.1:5432/postgres`, the machine's trust-auth server). When it cannot be
reached the test is skipped, except under CI (`CI=true`), where that is a failure: CI must run them.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class TestDatabase:
    """A database created for one test (dropped after it)."""

    __test__ = False

    host: str
    port: int
    user: str
    password: str
    name: str

    @property
    def url(self) -> str:
        """A libpq URL (psycopg2.connect accepts it)."""
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.name}"

    def dagster_env(self) -> dict[str, str]:
        """The variables deploy/production/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.name,
        }

    def connect(self):
        return psycopg2.connect(self.url)


def server_url() -> str:
    return os.environ.get("INTEGRATION_ASSETS_TEST_PG_URL", DEFAULT_SERVER_URL)


def _admin_connection():
    try:
        connection = psycopg2.connect(server_url(), connect_timeout=5)
    except psycopg2.OperationalError as error:
        message = f"PostgreSQL at {urlsplit(server_url()).hostname} is unreachable: {error}".strip()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (under CI the PostgreSQL tests must run)")
        pytest.skip(message)
    connection.autocommit = True
    return connection


def create_test_database(prefix: str = "ia_test") -> TestDatabase:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_connection()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    parts = urlsplit(server_url())
    return TestDatabase(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or "",
        name=name,
    )


def drop_test_database(database: TestDatabase) -> None:
    admin = _admin_connection()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture
def postgres_database() -> Iterator[TestDatabase]:
    """A fresh database on the real server, dropped afterwards."""
    database = create_test_database()
    try:
        yield database
    finally:
        drop_test_database(database)


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))

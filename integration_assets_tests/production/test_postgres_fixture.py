"""The PostgreSQL fixture gives each test its own database on the real server, and drops it."""

import psycopg2

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

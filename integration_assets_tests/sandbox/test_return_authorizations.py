"""The sandbox WMS's return authorizations (`warehouse.returns`): RMA rows as the RMA advances, its
receipt in the return receipts files, validation with paths."""

from datetime import timedelta

import pytest

from integration_assets.sandbox import load_scenario
from integration_assets.sandbox.scenario import ScenarioError
from integration_assets.sandbox.warehouse_files import files_at
from integration_assets.streams.warehouse_files import ParsedFile, read_warehouse_file
from integration_assets_tests.pipeline.conftest import SCENARIOS


def test_rma_rows_are_resent_as_they_advance_and_the_receipt_carries_the_rma_id():
    scenario = load_scenario(SCENARIOS / "returns.yaml")
    files = dict(files_at(scenario, scenario.clock.start + timedelta(hours=72)))
    rma_rows = [
        row
        for name in sorted(files)
        if name.startswith("return_authorizations_")
        for row in read_warehouse_file(name, files[name]).rows  # type: ignore[union-attr]
    ]
    completed = [row for row in rma_rows if row["rma_id"] == "RMA-5100001000-1"]
    assert [(r["approved_at"] is not None, r["shipped_at"] is not None) for r in completed] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    receipts = [
        row
        for name in sorted(files)
        if name.startswith("return_receipts_")
        for row in read_warehouse_file(name, files[name]).rows  # type: ignore[union-attr]
    ]
    assert {(r["return_id"], r["condition"]) for r in receipts} == {
        ("RMA-5100001000-1", "sellable"),
        ("RMA-5100002000-2", "damaged"),
    }
    assert all(isinstance(read_warehouse_file(n, d), ParsedFile) for n, d in files.items())


def test_default_rma_receipt_replaces_the_return_delay_one():
    scenario = load_scenario(SCENARIOS / "default.yaml")
    files = dict(files_at(scenario, scenario.clock.start + timedelta(hours=48)))
    receipts = [
        row
        for name in sorted(files)
        if name.startswith("return_receipts_")
        for row in read_warehouse_file(name, files[name]).rows  # type: ignore[union-attr]
    ]
    of_order = [r["return_id"] for r in receipts if r["order_id"] == 5100041000]
    assert of_order == ["RMA-5100041000-1"]


@pytest.mark.parametrize(
    ("original", "replacement", "message"),
    [
        (
            "order: returned_and_refunded, sku: WIDGET",
            "order: nobody, sku: WIDGET",
            "warehouse.returns[0].order: no story is named 'nobody'",
        ),
        (
            'approved_at: "+5h", shipped_at: "+8h"',
            'approved_at: "+5h", shipped_at: "+1h"',
            "warehouse.returns[0].shipped_at: must not be before the stage before it",
        ),
        (
            "condition: sellable}",
            "condition: broken}",
            "warehouse.returns[0].condition: expected one of sellable, damaged",
        ),
    ],
)
def test_invalid_returns_are_refused_with_their_path(tmp_path, original, replacement, message):
    text = (SCENARIOS / "returns.yaml").read_text()
    assert original in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(original, replacement, 1))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert message in str(error.value), str(error.value)

"""`catalog_changes`: parsed with clear paths, and turned into product versions over scenario time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from integration_assets.sandbox.scenario import SCENARIOS_DIR, ScenarioError, load_scenario
from integration_assets.sandbox.storefront_products import ProductCatalog

DEFAULT = SCENARIOS_DIR / "default.yaml"


def _with_changes(tmp_path: Path, changes) -> Path:
    data = yaml.safe_load(DEFAULT.read_text())
    data["catalog_changes"] = changes
    path = tmp_path / "changes.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "where", "what"),
    [
        ([{"at": "+1h", "sku": "NOPE", "price": "1.00"}], "catalog_changes[0].sku", "unknown SKU"),
        ([{"sku": "CASE-SLIM", "price": "1.00"}], "catalog_changes[0].at", "required"),
        (
            [{"at": "+1h", "sku": "CASE-SLIM", "price": "1,00"}],
            "catalog_changes[0].price",
            "money amount",
        ),
        (
            [{"at": "+1h", "sku": "CASE-SLIM", "price": "1.00", "available": False}],
            "catalog_changes[0]",
            "exactly one of",
        ),
        (
            [{"at": "+1h", "sku": "CASE-SLIM", "available": "no"}],
            "catalog_changes[0].available",
            "true or false",
        ),
        (
            [{"at": "+1h", "sku": "CASE-SLIM", "category": "X"}],
            "catalog_changes[0].sku",
            "names its product_id",
        ),
        (
            [{"at": "+1h", "product_id": 42, "category": "X"}],
            "catalog_changes[0].product_id",
            "unknown product 42",
        ),
        (
            [{"at": "+1h", "product_id": 921728736, "bundle": [{"sku": "IPOD2009BLACK"}]}],
            "catalog_changes[0].bundle[0].sku",
            "belongs to the bundle product itself",
        ),
        (
            [
                {
                    "at": "+1h",
                    "product_id": 921728736,
                    "bundle": [{"sku": "GIFTWRAP", "quantity": 0}],
                }
            ],
            "catalog_changes[0].bundle[0].quantity",
            "must be >= 1",
        ),
        (
            [{"at": "+1h", "sku": "CASE-SLIM", "price": "1.00", "colour": "red"}],
            "catalog_changes[0].colour",
            "unknown key",
        ),
    ],
)
def test_catalog_changes_validation_names_path_and_problem(
    tmp_path: Path, changes, where: str, what: str
) -> None:
    path = _with_changes(tmp_path, changes)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert what in message


def test_default_catalog_changes_make_product_versions() -> None:
    scenario = load_scenario(DEFAULT)
    catalog = ProductCatalog(scenario)
    start = scenario.clock.start
    versions = {pid: catalog.versions(pid) for pid in {i.product_id for i in scenario.catalog}}
    assert len(versions[700000001]) == 2  # the price cut
    assert len(versions[700000003]) == 3  # sold out and back
    assert len(versions[700000002]) == 2  # the category
    assert len(versions[921728736]) == 2  # the bundle
    assert len(versions[632910392]) == len(versions[700000004]) == 1
    assert [v.updated_at - start for v in versions[700000003][1:]] == [
        timedelta(hours=9),
        timedelta(hours=15),
    ]
    earbuds = [v.body["variants"][0]["inventory_quantity"] for v in versions[700000003]]
    assert earbuds == [100, 0, 100]


def test_changes_at_the_same_second_make_one_version(tmp_path: Path) -> None:
    path = _with_changes(
        tmp_path,
        [
            {"at": "+1h", "sku": "CASE-SLIM", "price": "18.00"},
            {"at": "+1h", "sku": "CASE-SLIM", "price": "17.00"},
        ],
    )
    versions = ProductCatalog(load_scenario(path)).versions(700000001)
    assert [v.body["variants"][0]["price"] for v in versions] == ["19.90", "17.00"]

"""`integration-assets report` counts order webhooks landed beside the polls, since staging counts both."""

from integration_assets.report import build_report
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.warehouse import Warehouse

from .conftest import deliver_shopify, fixture_order, polled_batch, webhook_app


def test_the_report_counts_polled_orders_and_order_webhooks_separately(tmp_path):
    raw_root = tmp_path / "raw"
    log = RawLog(raw_root)
    polled_batch(log, "storefront/orders", [fixture_order(), fixture_order(id=2)])
    app = webhook_app(raw_root)
    deliver_shopify(app, fixture_order(id=3), "orders/create", "wh-1")
    deliver_shopify(app, fixture_order(id=4), "orders/updated", "wh-2")
    deliver_shopify(app, {"id": 5}, "orders/delete", "wh-3")  # not staged as an order

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.connect():  # the first connection creates the schemas, empty
        pass

    counts = build_report(log, warehouse, include_instance=False)["counts"]

    assert counts["raw/storefront/orders"] == 2
    assert counts["raw/webhooks/orders"] == 2

"""The order stream end to end over HTTP: what the storefront says is what core holds, nothing doubled."""

import requests

from integration_assets.defs.orders.names import GATING_CHECKS
from integration_assets.streams.money import to_minor_units
from integration_assets_tests.pipeline.conftest import check_outcomes, materialized, pipeline_for

EVERY_ASSET = {
    "raw/storefront/orders",
    "staging/storefront/orders",
    "core/order_events",
    "core/orders_current",
    "reporting/orders_per_day",
    "reporting/order_lifecycle",
}


def storefront_orders(pipeline) -> dict[int, dict]:
    """The sandbox's own answer (status=any), page by page: the ground truth to compare with."""
    orders, url, params = (
        {},
        f"{pipeline.sandbox.url}/admin/api/{pipeline.scenario.shop.api_version}/orders.json",
        {"status": "any", "limit": 250},
    )
    headers = {"X-Shopify-Access-Token": pipeline.scenario.shop.access_token}
    while url:
        response = requests.get(url, params=params, headers=headers, timeout=10)
        response.raise_for_status()
        orders.update({order["id"]: order for order in response.json()["orders"]})
        url, params = response.links.get("next", {}).get("url"), None
    return orders


def poll_through_the_story(pipeline, polls: int = 4, hours: int = 6) -> list:
    results = []
    for _ in range(polls):
        pipeline.advance(hours=hours)
        results.append(pipeline.run())
    return results


def test_every_asset_materializes_and_every_gate_passes(tiny):
    results = poll_through_the_story(tiny)
    for result in results:
        assert result.success
        assert materialized(result) == EVERY_ASSET
        outcomes = check_outcomes(result)
        assert all(outcomes[name] for name in GATING_CHECKS), outcomes


def test_core_state_equals_what_the_storefront_says_now(tiny):
    poll_through_the_story(tiny)
    truth = storefront_orders(tiny)
    current = {
        row[0]: row[1:]
        for row in tiny.sql(
            "SELECT order_id, financial_status, fulfillment_status, cancelled_at IS NOT NULL, total_price_minor FROM core.orders_current"
        )
    }
    assert set(current) == set(truth)
    for order_id, order in truth.items():
        assert current[order_id] == (
            order["financial_status"],
            order["fulfillment_status"],
            order["cancelled_at"] is not None,
            to_minor_units(order["total_price"], order["currency"]),
        ), order_id


def test_orders_evolve_into_ordered_events(tiny):
    poll_through_the_story(tiny)
    sequences = tiny.sql(
        "SELECT order_id, list(sequence ORDER BY sequence) FROM core.order_events GROUP BY 1"
    )
    for order_id, sequence in sequences:
        assert sequence == list(range(1, len(sequence) + 1)), order_id
    first = dict(tiny.sql("SELECT order_id, event_type FROM core.order_events WHERE sequence = 1"))
    assert set(first.values()) == {"order_created"}
    types = {row[0] for row in tiny.sql("SELECT DISTINCT event_type FROM core.order_events")}
    assert {"order_created", "order_paid", "order_fulfilled"} <= types


def test_rerunning_the_same_window_doubles_nothing(tiny):
    poll_through_the_story(tiny, polls=2)
    before = tiny.sql(
        "SELECT (SELECT count(*) FROM staging.storefront_orders), (SELECT count(*) FROM core.order_events), (SELECT sum(orders) FROM reporting.orders_per_day)"
    )
    again = tiny.run()  # same clock: the lookback window re-reads the newest orders
    assert again.success
    after = tiny.sql(
        "SELECT (SELECT count(*) FROM staging.storefront_orders), (SELECT count(*) FROM core.order_events), (SELECT sum(orders) FROM reporting.orders_per_day)"
    )
    assert after == before
    read, staged, duplicates = tiny.sql(
        "SELECT records_read, staged, duplicates FROM staging.batches ORDER BY batch_id DESC LIMIT 1"
    )[0]
    assert staged == 0 and duplicates == read


def test_rematerializing_core_and_marts_alone_is_idempotent(tiny):
    poll_through_the_story(tiny, polls=2)
    snapshot = tiny.sql("SELECT * FROM reporting.orders_per_day ORDER BY ALL")
    events = tiny.scalar("SELECT count(*) FROM core.order_events")
    result = tiny.run(
        selection=["core/order_events", "core/orders_current", "reporting/orders_per_day"]
    )
    assert result.success
    assert tiny.sql("SELECT * FROM reporting.orders_per_day ORDER BY ALL") == snapshot
    assert tiny.scalar("SELECT count(*) FROM core.order_events") == events


def test_every_count_balance_holds(tiny):
    poll_through_the_story(tiny)
    balances = tiny.sql("SELECT asset_key, scope, holds, text FROM ops.count_balances")
    assert {row[0] for row in balances} >= {
        "staging/storefront/orders",
        "core/order_events",
        "reporting/orders_per_day",
    }
    assert all(row[2] for row in balances), [row for row in balances if not row[2]]
    read, staged, quarantined, duplicates = tiny.sql(
        "SELECT sum(records_read), sum(staged), sum(quarantined), sum(duplicates) FROM staging.batches"
    )[0]
    assert read == staged + quarantined + duplicates
    assert read == sum(m.records for m in tiny.raw_log.batches("storefront", "orders"))


def test_every_raw_record_carries_its_provenance(tiny):
    poll_through_the_story(tiny, polls=1)
    manifest = tiny.raw_log.latest("storefront", "orders")
    record = next(tiny.raw_log.read_records(manifest))
    assert {
        "source_system",
        "endpoint",
        "request_params",
        "page",
        "fetched_at",
        "http_status",
        "payload_hash",
        "batch_id",
        "run_id",
        "payload",
    } <= set(record)
    assert record["request_params"]["status"] == "any"
    assert manifest.details["http_requests"] >= 1
    assert manifest.details["records_from_pages"] == manifest.records
    assert manifest.details["cursor_after"] >= manifest.details["cursor_before"]
    assert tiny.scenario.shop.access_token not in manifest.path.read_text()
    assert (
        tiny.scenario.shop.access_token
        not in manifest.path.with_suffix(".manifest.json").read_text()
    )


def test_a_poll_landed_as_several_batches_gives_the_same_orders_and_events(tmp_path):
    """A peak poll is cut into batches (`orders_per_batch`); staging, the gates and promotion take
    them one by one and end where one batch per poll does."""

    def story(directory, run_config):
        with pipeline_for(directory, "tiny") as pipeline:
            pipeline.resources["storefront"] = pipeline.client(page_limit=1)  # a page per order
            for _ in range(3):
                pipeline.advance(hours=8)
                assert pipeline.run(run_config=run_config).success
            batches = pipeline.raw_log.batches("storefront", "orders")
            events = pipeline.sql(
                "SELECT order_id, sequence, event_type, attribute, before, after, occurred_at "
                "FROM core.order_events ORDER BY ALL"
            )
            current = pipeline.sql(
                "SELECT order_id, name, financial_status, total_price_minor, refunded_minor "
                "FROM core.orders_current ORDER BY ALL"
            )
            return len(batches), events, current

    split = {"ops": {"raw__storefront__orders": {"config": {"orders_per_batch": 2}}}}
    polls, events, current = story(tmp_path / "split", split)
    whole_polls, whole_events, whole_current = story(tmp_path / "whole", None)
    assert whole_polls == 3 and polls > whole_polls
    assert (events, current) == (whole_events, whole_current)

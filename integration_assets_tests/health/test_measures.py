"""Each success metric computed on a scenario whose values were worked out by hand (scenario.py)."""

from __future__ import annotations

import pytest

from integration_assets.health.measures import landed_at, measure_all, percentile
from integration_assets_tests.health.scenario import NOW, build_health_warehouse

STREAMS = ["storefront/orders", "payments/charges", "warehouse/files", "payments/disputes"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[tuple[str, str], object]:
    warehouse = build_health_warehouse(tmp_path_factory.mktemp("health") / "warehouse.duckdb")
    with warehouse.connect(read_only=True) as con:
        return {(m.metric, m.scope): m for m in measure_all(con, STREAMS, NOW, window_hours=24)}


def value(measured, metric: str, scope: str):
    return measured[(metric, scope)].value


def test_freshness_is_the_age_of_the_newest_promotion(measured):
    # Orders: promoted to core 15 min ago (a later staging than the promotion would not count).
    assert value(measured, "freshness_hours", "source:storefront/orders") == 0.25
    # Charges: the 30-minute-old poll staged nothing; the one before staged 40 records 3 h ago.
    assert value(measured, "freshness_hours", "source:payments/charges") == 3.0
    assert value(measured, "freshness_hours", "source:warehouse/files") == 1.0
    never = measured[("freshness_hours", "source:payments/disputes")]
    assert never.value is None and never.detail == "no record promoted yet"


def test_error_rate_counts_failed_attempts_and_keeps_throttling_apart(measured):
    # 20 reads in the window: 16 answered, 2 throttled (429), a 503 and a timeout; the 503 of 36 h
    # ago is outside it. A stream shares its system's rate.
    orders = measured[("error_rate", "source:storefront/orders")]
    assert orders.value == 0.1
    assert orders.detail == "2 failed of 20 read attempts to storefront (2 throttled: 429)"
    # ERP writes: one 500 of ten; the token request (direction auth) is not a write.
    assert value(measured, "error_rate", "target:erp") == 0.1
    assert value(measured, "error_rate", "target:crm") is None
    # The warehouse inbox: three files landed and a duplicate drop recognised, none failed.
    assert measured[("error_rate", "source:warehouse/files")].detail == (
        "0 failed of 4 read attempts to warehouse"
    )


def test_quarantine_rate_for_sources_and_targets(measured):
    # 2 + 3 quarantined of 100 + 50 read in the window (the 1,000 read 30 h ago are outside it).
    assert value(measured, "quarantine_rate", "source:storefront/orders") == round(5 / 150, 6)
    # Files: one quarantined of four read (the duplicate drop is not read again).
    assert value(measured, "quarantine_rate", "source:warehouse/files") == 0.25
    # CRM: one write not built, three enqueued in the window.
    assert value(measured, "quarantine_rate", "target:crm") == 0.25
    assert value(measured, "quarantine_rate", "target:erp") == 0.0


def test_latency_from_landing_to_confirmation(measured):
    latency = measured[("latency_p95_minutes", "target:erp")]
    # Ten order writes confirmed 10, 20 ... 100 min after their batch landed; a golden-record write
    # 5 min after it was enqueued. p95 of the eleven (nearest rank 11) is 100, p50 (rank 6) is 50.
    assert latency.value == 100.0
    assert "p50 50.0 min" in latency.detail
    assert "1 timed from enqueue" in latency.detail
    assert value(measured, "latency_p95_minutes", "target:wms") is None


def test_dead_letters_open_and_their_age(measured):
    # Two open (dead 5 h and 1 h ago), one resolved.
    assert value(measured, "dead_letters_open", "target:crm") == 2.0
    assert value(measured, "dead_letter_age_hours", "target:crm") == 5.0
    assert value(measured, "dead_letters_open", "target:erp") == 0.0
    assert value(measured, "dead_letter_age_hours", "target:erp") == 0.0


def test_manual_interventions_in_the_window(measured):
    crm = measured[("manual_interventions", "target:crm")]
    assert crm.value == 2.0  # a retry and a resolve; the approval 30 h ago is outside the window
    assert crm.detail == "resolve 1, retry 1"
    assert value(measured, "manual_interventions", "target:erp") == 0.0


def test_reconciliation_match_rate(measured):
    # Orders 1-3 agree or are explained (order 1's fee is a rule), order 4 has an unexplained difference.
    assert value(measured, "reconciliation_match_rate", "source:payments/charges") == 0.75
    # One count agrees with the ledger, one is 3 short with no rule explaining it.
    assert value(measured, "reconciliation_match_rate", "source:warehouse/files") == 0.5


def test_records_per_run(measured):
    orders = measured[("records_per_run", "source:storefront/orders")]
    assert (
        orders.value == 100.0 and "2 run(s)" in orders.detail and "75.0 on average" in orders.detail
    )
    assert (
        value(measured, "records_per_run", "source:warehouse/files") == 30.0
    )  # 10 + 20 in one run
    assert (
        value(measured, "records_per_run", "target:erp") == 7.0
    )  # run d2: six order writes and a customer


def test_an_empty_warehouse_has_no_data_and_no_error(tmp_path):
    from integration_assets.storage.warehouse import Warehouse

    with Warehouse(tmp_path / "empty.duckdb").connect() as con:
        measures = measure_all(con, ["storefront/orders"], NOW, window_hours=24)
    judged = {m.metric for m in measures if m.value is not None}
    # Only the counts that are zero by definition have a value: no dead letters, no interventions.
    assert judged == {"dead_letters_open", "dead_letter_age_hours", "manual_interventions"}


def test_landed_at_and_percentile():
    assert landed_at(
        "core/order_heads:1@2 (raw/storefront/orders/20261130T131758690616Z-3d433bb6#0)"
    ).isoformat() == ("2026-11-30T13:17:58.690616")
    assert landed_at("core/customers:7") is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0] * 19 + [50.0], 0.95) == 1.0  # rank 19 of 20
    assert percentile([1.0] * 19 + [50.0], 0.96) == 50.0

"""Bad input: quarantined with reasons, batch failures block promotion, real quirks flagged not crashing."""

from integration_assets.defs.orders.names import (
    CHECK_KNOWN_QUIRKS,
    CHECK_REQUIRED_FIELDS,
    CHECK_TOTALS,
    GATING_CHECKS,
)
from integration_assets_tests.pipeline.conftest import (
    check_description,
    check_outcomes,
    materialized,
    pipeline_for,
)


def run_all_polls(pipeline, polls=4, hours=6):
    results = []
    for _ in range(polls):
        pipeline.advance(hours=hours)
        results.append(pipeline.run())
    return results


def test_malformed_orders_are_quarantined_with_reasons_and_good_ones_promoted(tmp_path):
    with pipeline_for(tmp_path, "malformed") as pipeline:
        results = run_all_polls(pipeline)
        assert all(all(check_outcomes(r)[name] for name in GATING_CHECKS) for r in results)
        reasons = pipeline.sql("SELECT DISTINCT rule, field FROM ops.quarantine ORDER BY 1, 2")
        rules = {rule for rule, _ in reasons}
        assert {"bad_money", "bad_currency"} <= rules, reasons
        quarantined_ids = {
            row[0]
            for row in pipeline.sql(
                "SELECT DISTINCT record_key FROM ops.quarantine WHERE record_key IS NOT NULL"
            )
        }
        current_ids = {
            str(row[0]) for row in pipeline.sql("SELECT order_id FROM core.orders_current")
        }
        assert current_ids, "good orders are promoted"
        # raw references lead back to the exact record in the raw log
        raw_ref = pipeline.scalar("SELECT raw_ref FROM ops.quarantine LIMIT 1")
        batch_id, index = raw_ref.split("/")[-1].split("#")
        manifest = next(
            m for m in pipeline.raw_log.batches("storefront", "orders") if m.batch_id == batch_id
        )
        assert next(
            r for r in pipeline.raw_log.read_records(manifest) if r["record_index"] == int(index)
        )
        assert quarantined_ids - current_ids, "an order that was never valid is not in core"


def test_totals_that_do_not_add_up_block_promotion(tmp_path):
    with pipeline_for(tmp_path, "totals_mismatch") as pipeline:
        result = run_all_polls(pipeline, polls=1, hours=48)[0]
        outcomes = check_outcomes(result)
        assert outcomes[CHECK_TOTALS] is False
        assert "do not add up" in check_description(result, CHECK_TOTALS)
        assert "staging/storefront/orders" in materialized(result)
        assert "core/order_events" not in materialized(result)
        assert pipeline.scalar("SELECT count(*) FROM core.promoted_batches") == 0
        # A later run must not promote the blocked batch either.
        later = pipeline.run()
        assert "core/order_events" in materialized(later)
        blocked = pipeline.scalar("SELECT min(batch_id) FROM ops.batch_gates WHERE NOT passed")
        assert blocked not in {
            row[0] for row in pipeline.sql("SELECT batch_id FROM core.promoted_batches")
        }


def test_a_renamed_required_field_is_schema_drift_that_names_the_field(tmp_path):
    with pipeline_for(tmp_path, "schema_drift") as pipeline:
        results = run_all_polls(pipeline, polls=4, hours=12)
        failing = [r for r in results if check_outcomes(r)[CHECK_REQUIRED_FIELDS] is False]
        assert failing, "the rename is detected"
        description = check_description(failing[0], CHECK_REQUIRED_FIELDS)
        assert "total_price" in description and "storefront_orders v1" in description
        assert "core/order_events" not in materialized(failing[0])


def test_real_fixture_orders_flow_through_with_their_quirks_flagged(tmp_path):
    with pipeline_for(tmp_path, "real_fixtures") as pipeline:
        results = run_all_polls(pipeline, polls=3, hours=2)
        assert all(r.success for r in results)
        assert any(check_outcomes(r).get(CHECK_KNOWN_QUIRKS) is False for r in results), (
            "quirks are surfaced"
        )
        ids = {row[0] for row in pipeline.sql("SELECT order_id FROM core.orders_current")}
        assert {450789469, 1073459962} <= ids
        flags = {
            flag
            for (flags,) in pipeline.sql("SELECT quality_flags FROM staging.storefront_orders")
            for flag in flags
        }
        assert {
            "subtotal_excludes_discounts",
            "discount_codes_disagree_with_total_discounts",
        } <= flags
        versions, applied, duplicates, stale = pipeline.sql(
            "SELECT sum(versions), sum(applied), sum(duplicates), sum(stale) FROM core.promoted_batches"
        )[0]
        assert versions == applied + duplicates + stale
        # order.json/orders.json/get.json: the same order and updated_at with different content
        conflicts = pipeline.sql("SELECT order_id, resolution FROM core.version_conflicts")
        assert conflicts and {order_id for order_id, _ in conflicts} == {450789469}


def test_an_order_appearing_below_the_cursor_is_caught_and_a_full_sweep_recovers_it(tmp_path):
    """Incremental polling cannot see an order that shows up later with an old updated_at; the
    completeness check compares the storefront's count with what we know, and says how to recover."""
    import dagster as dg
    import yaml

    from integration_assets.defs.orders.names import CHECK_NO_ORDER_MISSING
    from integration_assets.sandbox import start_storefront
    from integration_assets.sandbox.scenario import parse_scenario
    from integration_assets_tests.pipeline.conftest import ALL_ASSETS, SCENARIOS, Pipeline

    raw = yaml.safe_load((SCENARIOS / "tiny.yaml").read_text())
    raw["fixture_orders"] = [
        {"file": "monei_shopify_api_node/order/res/create.json", "appears_at": "+8h"}
    ]
    scenario = parse_scenario(raw, SCENARIOS / "tiny.yaml")
    with start_storefront(scenario) as sandbox:
        pipeline = Pipeline(tmp_path, sandbox, scenario)
        pipeline.advance(hours=6)
        assert check_outcomes(pipeline.run())[CHECK_NO_ORDER_MISSING]
        pipeline.advance(hours=6)  # the 2015 order appears now, far below the cursor
        late = pipeline.run()
        assert check_outcomes(late)[CHECK_NO_ORDER_MISSING] is False
        assert "1 never seen" in check_description(late, CHECK_NO_ORDER_MISSING)
        sweep = dg.materialize(
            ALL_ASSETS,
            resources=pipeline.resources,
            instance=pipeline.instance,
            run_config={"ops": {"raw__storefront__orders": {"config": {"full_sweep": True}}}},
        )
        assert check_outcomes(sweep)[CHECK_NO_ORDER_MISSING]
        assert (
            pipeline.scalar("SELECT count(*) FROM core.orders_current WHERE order_id = 1073459962")
            == 1
        )

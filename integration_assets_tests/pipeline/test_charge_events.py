"""Charges after the first poll come from Stripe's event log, not from re-listing a lookback: each poll
lands only the events of its window, and staging still ends where the provider is."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import requests

from integration_assets.defs.payments.extract import events_usable
from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets_tests.stream_harness import PAYMENTS_ASSETS, Stream

# What the pipeline reads of a charge, and what a refund changes. (`disputed` is left out: Stripe
# tells of a dispute with a `charge.dispute.*` event, whose object is the dispute, read from
# /v1/disputes.)
COMPARED = ("amount", "amount_captured", "amount_refunded", "refunded", "status", "currency")
POLLS_AFTER_THE_FIRST = 10


def listed_charges(systems, scenario) -> dict[str, dict]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {scenario.payments.secret_key}"
    found, cursor = {}, None
    while True:
        params = {"limit": 100, **({"starting_after": cursor} if cursor else {})}
        body = session.get(f"{systems.payments.url}/v1/charges", params=params, timeout=10).json()
        found |= {charge["id"]: charge for charge in body["data"]}
        if not body["has_more"]:
            return found
        cursor = body["data"][-1]["id"]


def test_after_the_first_listing_charges_follow_the_event_log(tmp_path):
    scenario = load_scenario(SCENARIOS_DIR / "payments.yaml")
    with start_sandbox_systems(scenario) as systems:
        stream = Stream(tmp_path, systems, scenario, PAYMENTS_ASSETS)
        stream.advance(hours=4)
        results = [stream.run()]
        for _ in range(POLLS_AFTER_THE_FIRST):
            stream.advance(hours=12)
            results.append(stream.run())
        assert all(result.success for result in results)
        charges_now = listed_charges(systems, scenario)
        staged = stream.sql(
            "SELECT object_id, payload FROM staging.payments_objects WHERE resource = 'charges' "
            "QUALIFY row_number() OVER (PARTITION BY object_id ORDER BY batch_id DESC, record_index DESC) = 1"
        )

    batches = RawLog(tmp_path / "raw").batches("payments", "charges")  # oldest first
    assert [b.details["read_from"] for b in batches] == ["list"] + [
        "events"
    ] * POLLS_AFTER_THE_FIRST
    assert all(b.details["endpoint"] == "/v1/events" for b in batches[1:])
    # Each poll read its window's changes, not every charge again.
    assert sum(b.records for b in batches[1:]) < len(charges_now) * 2
    assert max(b.records for b in batches[1:]) < len(charges_now)
    # Refunds made after the first poll reached staging through their events.
    log = RawLog(tmp_path / "raw")
    event_types = {r["payload"]["type"] for b in batches[1:] for r in log.read_records(b)}
    assert event_types == {"charge.succeeded", "charge.refunded"}
    newest = {object_id: orjson.loads(payload) for object_id, payload in staged}
    assert newest.keys() == charges_now.keys()
    assert any(charge["amount_refunded"] for charge in charges_now.values())
    assert {i: [c[k] for k in COMPARED] for i, c in newest.items()} == {
        i: [c[k] for k in COMPARED] for i, c in charges_now.items()
    }


def test_a_stream_away_longer_than_stripe_keeps_events_lists_again():
    now = datetime(2026, 12, 24, 12, tzinfo=UTC)

    def landed(ago: timedelta) -> BatchManifest:
        details = {"extracted_at": (now - ago).isoformat()}
        return BatchManifest("payments", "charges", "b", Path("x"), 0, "", 0, details)

    assert not events_usable(None, now)  # the first poll lists
    assert events_usable(landed(timedelta(hours=1)), now)
    assert events_usable(landed(timedelta(days=28)), now)
    assert not events_usable(landed(timedelta(days=29, minutes=1)), now)

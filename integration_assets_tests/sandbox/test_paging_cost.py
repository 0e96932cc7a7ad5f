"""What a sandbox list page costs: the same answers as before, without rescanning history per page.

The cursor arithmetic (binary search) is checked against the plain definitions it replaces; the
servers are checked to select once per walk, and start-up to replay the stories once.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.sandbox.erp_store import ErpStore
from integration_assets.sandbox.payments_app import PaymentsApp, newest_first_page
from integration_assets.sandbox.payments_ledger import PaymentsLedger
from integration_assets.sandbox.scenario import RateLimitConfig
from integration_assets.sandbox.server import start_storefront
from integration_assets.sandbox.storefront_app import StorefrontApp, keyset_page
from integration_assets.sandbox.storefront_orders import OrderBook

GENEROUS = RateLimitConfig(bucket_size=100_000, leak_per_second=1000.0, retry_after=0.1)
ascending_ids = st.lists(st.integers(0, 60), unique=True).map(sorted)


# ---- the cursor arithmetic against the definitions it replaces -------------------------------------
@given(ids=ascending_ids, limit=st.integers(1, 8), after=st.none() | st.integers(-1, 61))
def test_keyset_page_after_is_the_first_limit_greater(ids, limit, after):
    start, stop, has_next, has_previous = keyset_page(ids, limit, after=after)
    later = [i for i in ids if after is None or i > after]
    assert ids[start:stop] == later[:limit]
    assert has_next == (len(later) > limit)
    assert has_previous == (after is not None and any(i <= after for i in ids))


@given(ids=ascending_ids, limit=st.integers(1, 8), before=st.integers(-1, 61))
def test_keyset_page_before_is_the_last_limit_smaller(ids, limit, before):
    start, stop, has_next, has_previous = keyset_page(ids, limit, before=before)
    earlier = [i for i in ids if i < before]
    assert ids[start:stop] == earlier[-limit:]
    assert has_previous == (len(earlier) > limit)
    assert has_next == any(i >= before for i in ids)


stripe_keys = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from("abcdef")), unique=True, max_size=30
).map(sorted)


@given(
    keys=stripe_keys,
    limit=st.integers(1, 8),
    cursor=st.tuples(st.integers(-1, 6), st.sampled_from("0abcdefz")),
    direction=st.sampled_from(["starting_after", "ending_before", "none"]),
)
def test_newest_first_page_matches_stripes_definition(keys, limit, cursor, direction):
    newest_first = list(reversed(keys))
    start, stop, has_more = newest_first_page(
        keys,
        limit,
        starting_after=cursor if direction == "starting_after" else None,
        ending_before=cursor if direction == "ending_before" else None,
    )
    if direction == "starting_after":
        rest = [key for key in newest_first if key < cursor]
        expected, expected_more = rest[:limit], len(rest) > limit
    elif direction == "ending_before":
        newer = [key for key in newest_first if key > cursor]
        expected, expected_more = newer[-limit:], len(newer) > limit
    else:
        expected, expected_more = newest_first[:limit], len(newest_first) > limit
    assert newest_first[start:stop] == expected
    assert has_more == expected_more


# ---- a walk selects once ------------------------------------------------------------------------------
def test_a_storefront_walk_filters_the_order_book_once_per_clock_time(monkeypatch):
    calls: list[dict[str, str]] = []
    original = StorefrontApp._filter

    def counting(self, filters, now):
        calls.append(dict(filters))
        return original(self, filters, now)

    monkeypatch.setattr(StorefrontApp, "_filter", counting)
    scenario = load_scenario(SCENARIOS_DIR / "default.yaml")
    with start_storefront(dataclasses.replace(scenario, faults=(), rate_limit=GENEROUS)) as shop:
        shop.clock.advance(timedelta(hours=30))
        headers = {"X-Shopify-Access-Token": shop.access_token}
        expected = [o.id for o in shop.app.orders.orders_at(shop.clock.now())]
        url = shop.api_url("orders.json")
        params: dict[str, object] | None = {"status": "any", "limit": 3}
        seen, pages = [], 0
        while url:
            response = requests.get(url, params=params, headers=headers, timeout=10)
            assert response.status_code == 200, response.text
            seen += [order["id"] for order in response.json()["orders"]]
            pages += 1
            url = requests.utils.parse_header_links(response.headers.get("Link", ""))
            url = next((link["url"] for link in url if link.get("rel") == "next"), None)
            params = None
        count = requests.get(
            shop.api_url("orders/count.json"), params={"status": "any"}, headers=headers, timeout=10
        )
        assert seen == expected and pages > 3
        assert count.json() == {"count": len(expected)}
        assert calls == [{"status": "any"}]  # every page and the count: one selection
        shop.clock.advance(timedelta(hours=1))  # another clock time: selected afresh
        again = requests.get(
            shop.api_url("orders.json"), params={"status": "any"}, headers=headers, timeout=10
        )
        assert again.status_code == 200 and calls == [{"status": "any"}] * 2


def test_a_payments_walk_matches_each_object_once(monkeypatch):
    scenario = load_scenario(SCENARIOS_DIR / "payments.yaml")
    matched: list[str] = []
    original = PaymentsApp._matches

    def counting(self, obj, args, resource, snapshot):
        matched.append(obj["id"])
        return original(self, obj, args, resource, snapshot)

    monkeypatch.setattr(PaymentsApp, "_matches", counting)
    with start_sandbox_systems(scenario) as systems:
        systems.clock.set(scenario.clock.start + timedelta(days=6))
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {scenario.payments.secret_key}"
        url = f"{systems.payments.url}/v1/balance_transactions"
        total = len(
            systems.payments.ledger.snapshot(systems.clock.now()).lists["balance_transactions"]
        )
        since = {"created[gte]": "0"}
        ids, cursor = [], None
        while True:
            page = session.get(
                url, params={**since, "limit": 2, **({"starting_after": cursor} if cursor else {})}
            ).json()
            ids += [obj["id"] for obj in page["data"]]
            if not page["has_more"]:
                break
            cursor = ids[-1]
        assert len(ids) == len(set(ids)) == total > 4
        assert len(matched) == total  # one pass over the snapshot for the whole walk
        back = session.get(url, params={**since, "limit": 2, "ending_before": ids[-1]}).json()
        assert [obj["id"] for obj in back["data"]] == ids[-3:-1] and back["has_more"]
        assert len(matched) == total
        session.close()


# ---- start-up replays every story once ------------------------------------------------------------------
def test_starting_from_a_path_replays_the_stories_once(monkeypatch, tmp_path):
    replays = []
    original = OrderBook._build_stories

    def counting(self):
        replays.append(self.scenario.name)
        return original(self)

    monkeypatch.setattr(OrderBook, "_build_stories", counting)
    path = SCENARIOS_DIR / "payments.yaml"
    with start_sandbox_systems(path, warehouse_inbox=tmp_path / "inbox") as systems:
        assert systems.storefront.app.orders is systems.payments.ledger.order_book
    assert len(replays) == 1
    with start_storefront(path):
        pass
    assert len(replays) == 2


def test_a_ledger_must_come_with_the_scenario_it_was_built_from():
    path = SCENARIOS_DIR / "payments.yaml"
    ledger = PaymentsLedger(load_scenario(path))
    with pytest.raises(ValueError, match="another scenario"):
        start_sandbox_systems(load_scenario(path), ledger=ledger)
    with pytest.raises(ValueError, match="not with a path"):
        start_sandbox_systems(path, ledger=ledger)


# ---- the ERP keeps its indexes in step with its records ---------------------------------------------------
CUSTOMER = {"name": "Ada", "email": "ada@example.com", "is_company": False}
ORDER = {"customer_eid": "c-1", "currency": "USD", "total": "10.00"}


def _store_with_orders(now: datetime) -> ErpStore:
    store = ErpStore()
    store.upsert("customer", "c-1", CUSTOMER, now)
    for external_id in ("o-1", "o-2"):
        store.upsert("sales_order", external_id, {**ORDER, "order_number": external_id}, now)
    return store


def test_an_invoice_moved_to_another_order_leaves_the_first_one_uninvoiced():
    now = datetime(2026, 11, 20, tzinfo=UTC)
    store = _store_with_orders(now)
    invoice = {
        "sales_order_eid": "o-1",
        "customer_eid": "c-1",
        "currency": "USD",
        "amount": "10.00",
    }
    store.upsert("invoice", "i-1", invoice, now)
    assert store._is_invoiced("o-1") and not store._is_invoiced("o-2")
    store.upsert("invoice", "i-1", {**invoice, "sales_order_eid": "o-2"}, now)
    assert not store._is_invoiced("o-1") and store._is_invoiced("o-2")
    store.upsert("sales_order", "o-1", {**ORDER, "order_number": "o-1", "total": "11.00"}, now)


def test_erp_pages_are_the_sorted_filtered_records_and_follow_writes():
    start = datetime(2026, 11, 20, tzinfo=UTC)
    store = ErpStore()
    for number in range(7):
        email = f"c{number}@example.com"
        store.upsert("customer", f"c-{number}", {**CUSTOMER, "email": email}, start)
    later = start + timedelta(hours=1)

    def expected(since):
        return [
            r.external_id
            for r in store.records("customer")
            if since is None or r.updated_at >= since
        ]

    def paged(since, limit):
        listed, offset, totals = [], 0, set()
        while True:
            page, total = store.page("customer", since, offset, limit)
            totals.add(total)
            listed += [r.external_id for r in page]
            offset += limit
            if offset >= total:
                return listed, totals

    assert paged(None, 3) == (expected(None), {7})
    store.upsert("customer", "c-2", {**CUSTOMER, "email": "c2@example.com", "phone": "1"}, later)
    assert paged(None, 3) == (expected(None), {7}) and expected(None)[-1] == "c-2"
    assert paged(later, 3) == (["c-2"], {1})
    page, _ = store.page("customer", None, 0, 1)
    page[0].record["name"] = "changed by the reader"  # a copy: the store is untouched
    assert store.get("customer", page[0].external_id).record["name"] == "Ada"

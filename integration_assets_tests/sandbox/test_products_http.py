"""The sandbox storefront's products.json over real HTTP, spoken to as a Shopify client would."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from integration_assets.sandbox.scenario import PACKAGE_FIXTURES_DIR, SCENARIOS_DIR, load_scenario
from integration_assets.sandbox.server import RunningSandbox, start_storefront
from integration_assets.systems.storefront import StorefrontAuthError, StorefrontClient
from integration_assets_tests.sandbox.test_storefront_http import GENEROUS, _get, parse_link_header

DEFAULT = load_scenario(SCENARIOS_DIR / "default.yaml")
START = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


@pytest.fixture
def shop() -> Iterator[RunningSandbox]:
    with start_storefront(dataclasses.replace(DEFAULT, faults=(), rate_limit=GENEROUS)) as sandbox:
        yield sandbox


def _follow(sandbox: RunningSandbox, **params) -> tuple[list[dict], list[requests.Response]]:
    responses = [_get(sandbox, "products.json", **params)]
    while True:
        assert responses[-1].status_code == 200, responses[-1].text
        next_url = parse_link_header(responses[-1].headers.get("Link")).get("next")
        if not next_url:
            break
        responses.append(
            requests.get(
                next_url, headers={"X-Shopify-Access-Token": sandbox.access_token}, timeout=10
            )
        )
    return [p for r in responses for p in r.json()["products"]], responses


def test_products_are_the_catalog_grouped_by_product(shop: RunningSandbox) -> None:
    products, _ = _follow(shop, limit=250)
    assert [p["id"] for p in products] == sorted({i.product_id for i in DEFAULT.catalog})
    nano = next(p for p in products if p["id"] == 632910392)
    assert [v["sku"] for v in nano["variants"]] == ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"]
    variant = nano["variants"][0]
    assert (variant["price"], variant["product_id"], variant["id"]) == (
        "199.00",
        632910392,
        39072856,
    )
    assert nano["status"] == "active" and nano["updated_at"] == "2026-11-13T06:00:00-05:00"


def test_every_emitted_key_exists_in_the_real_product_fixture(shop: RunningSandbox) -> None:
    real = json.loads((PACKAGE_FIXTURES_DIR / "shopify_python_api" / "product.json").read_text())
    product_keys = set(real["product"]) | {"status", "bundle_components"}  # documented additions
    variant_keys = set(real["product"]["variants"][0])
    shop.clock.advance(timedelta(hours=12))  # after the bundle definition
    products, _ = _follow(shop)
    assert any("bundle_components" in p for p in products)
    for product in products:
        assert set(product) <= product_keys, set(product) - product_keys
        for variant in product["variants"]:
            assert set(variant) <= variant_keys, set(variant) - variant_keys


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_link_pagination_visits_every_product_once(shop: RunningSandbox, limit: int) -> None:
    products, responses = _follow(shop, limit=limit)
    assert [p["id"] for p in products] == sorted({i.product_id for i in DEFAULT.catalog})
    assert len(responses) == -(-len(products) // limit)
    if len(responses) > 1:
        next_url = parse_link_header(responses[0].headers["Link"])["next"]
        assert next_url.startswith(
            f"{shop.url}/admin/api/2025-07/products.json?limit={limit}&page_info="
        )
        assert "previous" in parse_link_header(responses[1].headers["Link"])


def test_filters_limit_and_page_info_rules(shop: RunningSandbox) -> None:
    assert _get(shop, "products.json", limit=251).status_code == 400
    first = _get(shop, "products.json", limit=1)
    next_url = parse_link_header(first.headers["Link"])["next"]
    rejected = requests.get(
        next_url + "&updated_at_min=2026-01-01T00:00:00Z",
        headers={"X-Shopify-Access-Token": shop.access_token},
        timeout=10,
    )
    assert rejected.status_code == 400 and "page_info" in rejected.json()["errors"]
    assert [
        p["id"] for p in _get(shop, "products.json", since_id=700000002).json()["products"]
    ] == [
        700000003,
        700000004,
        700000005,
        921728736,
    ]
    ids = _get(shop, "products.json", ids="700000001,921728736").json()["products"]
    assert [p["id"] for p in ids] == [700000001, 921728736]
    only_ids = _get(shop, "products.json", fields="id,updated_at", limit=1).json()["products"]
    assert set(only_ids[0]) == {"id", "updated_at"}
    assert len(_get(shop, "products.json", status="active").json()["products"]) == 7
    assert _get(shop, "products.json", status="archived").json()["products"] == []
    assert _get(shop, "products.json", status="deleted").status_code == 400
    assert _get(shop, "products/count.json").json() == {"count": 7}
    one = _get(shop, "products/700000001.json").json()["product"]
    assert one["variants"][0]["sku"] == "CASE-SLIM"
    assert _get(shop, "products/123.json").status_code == 404


def test_updated_at_min_picks_up_the_mid_day_price_change(shop: RunningSandbox) -> None:
    since = (START + timedelta(hours=6)).isoformat()
    shop.clock.advance(timedelta(hours=7, minutes=59))
    assert _get(shop, "products.json", updated_at_min=since).json()["products"] == []
    shop.clock.advance(timedelta(minutes=1))  # +8h: CASE-SLIM 19.90 -> 17.90
    changed = _get(shop, "products.json", updated_at_min=since).json()["products"]
    assert [p["id"] for p in changed] == [700000001]
    assert changed[0]["updated_at"] == "2026-11-20T14:00:00-05:00"
    assert changed[0]["variants"][0]["price"] == "17.90"
    assert changed[0]["variants"][0]["updated_at"] == "2026-11-20T14:00:00-05:00"
    # Inclusive lower bound at one-second resolution, any offset.
    exact = _get(shop, "products.json", updated_at_min="2026-11-20T19:00:00+00:00").json()
    assert [p["id"] for p in exact["products"]] == [700000001]
    later = _get(shop, "products.json", updated_at_min="2026-11-20T14:00:01-05:00").json()
    assert later["products"] == []


def test_availability_category_and_bundle_over_time(shop: RunningSandbox) -> None:
    def product(product_id: int) -> dict:
        return _get(shop, f"products/{product_id}.json").json()["product"]

    shop.clock.advance(timedelta(hours=9))
    assert product(700000003)["variants"][0]["inventory_quantity"] == 0
    shop.clock.advance(timedelta(hours=2))
    assert product(700000002)["product_type"] == "Cables & Adapters"
    kit = product(921728736)
    assert kit["tags"] == "bundle"
    assert kit["bundle_components"] == [
        {"sku": "CASE-SLIM", "quantity": 1},
        {"sku": "CABLE-USB-C", "quantity": 1},
    ]
    shop.clock.advance(timedelta(hours=4))
    assert product(700000003)["variants"][0]["inventory_quantity"] == 100


def test_products_need_the_access_token(shop: RunningSandbox) -> None:
    assert _get(shop, "products.json", token=None).status_code == 401
    assert _get(shop, "products.json", token="shpat_wrong").status_code == 401
    client = StorefrontClient(shop_url=shop.url, access_token="shpat_wrong")
    with pytest.raises(StorefrontAuthError):
        list(client.iter_product_pages(datetime(2000, 1, 1, tzinfo=UTC)))


def test_client_follows_product_pages(shop: RunningSandbox) -> None:
    client = StorefrontClient(
        shop_url=shop.url, access_token=shop.access_token, page_limit=2, backoff_base_seconds=0.01
    )
    pages = list(client.iter_product_pages(datetime(2000, 1, 1, tzinfo=UTC)))
    assert [len(p.records) for p in pages] == [2, 2, 2, 1]
    assert pages[0].params["limit"] == "2" and "status" not in pages[0].params
    assert set(pages[1].params) == {"limit", "page_info"}
    assert pages[0].url.endswith("/admin/api/2025-07/products.json")

"""The product history (SCD2) and the staging of one product version: pure functions, no Dagster."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.contracts import load_contract
from integration_assets.streams.contract_rules import Violation
from integration_assets.streams.product_history import SkuVersion, build_history
from integration_assets.streams.product_records import stage_product

T0 = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
REAL_PRODUCT = (
    Path(__file__).resolve().parents[2]
    / "integration_assets/sandbox/fixtures/shopify/shopify_python_api/product.json"
)


def version(hours: float, price: int = 1990, available: bool = True, **kw) -> SkuVersion:
    fields = {
        "sku": "CASE-SLIM",
        "updated_at": T0 + timedelta(hours=hours),
        "payload_hash": f"h{hours:08.2f}{price}{available}{kw.get('category', '')}",
        "price_minor": price,
        "currency": "USD",
        "available": available,
        "category": "",
        "bundle": None,
        "raw_ref": f"raw/storefront/products/b#{hours}",
    }
    return SkuVersion(**{**fields, **kw})


def spans(rows) -> list[tuple]:
    return [(r.sku, r.price_minor, r.available, r.valid_from, r.valid_to) for r in rows]


def test_unchanged_versions_collapse_into_one_row() -> None:
    rows, stats = build_history([version(0), version(2), version(5)])
    assert spans(rows) == [("CASE-SLIM", 1990, True, T0, None)]
    assert (stats.versions, stats.unchanged, stats.rows) == (3, 2, 1)


def test_a_change_closes_the_previous_row_at_the_new_versions_updated_at() -> None:
    rows, _ = build_history(
        [version(0), version(3), version(8, price=1790), version(9, price=1790)]
    )
    assert spans(rows) == [
        ("CASE-SLIM", 1990, True, T0, T0 + timedelta(hours=8)),
        ("CASE-SLIM", 1790, True, T0 + timedelta(hours=8), None),
    ]
    assert rows[1].raw_ref.endswith("#8") and rows[1].source_version.startswith("2026-11-20T19:00")


def test_unavailable_then_available_again_is_three_rows() -> None:
    rows, _ = build_history([version(0), version(9, available=False), version(15)])
    assert [(r.available, r.valid_from, r.valid_to) for r in rows] == [
        (True, T0, T0 + timedelta(hours=9)),
        (False, T0 + timedelta(hours=9), T0 + timedelta(hours=15)),
        (True, T0 + timedelta(hours=15), None),
    ]


def test_duplicates_count_once_and_conflicts_resolve_by_payload_hash() -> None:
    a = version(1, price=1000, payload_hash="aaa")
    b = version(1, price=2000, payload_hash="bbb")  # same updated_at, other content
    rows, stats = build_history([version(0), a, a, b, version(0)])
    assert [(r.price_minor, r.valid_from) for r in rows] == [
        (1990, T0),
        (2000, T0 + timedelta(hours=1)),
    ]
    assert (stats.duplicates, stats.conflicts) == (2, 1)
    assert stats.versions == stats.duplicates + stats.conflicts + stats.unchanged + stats.rows


def test_skus_are_independent_and_category_and_bundle_are_attributes() -> None:
    rows, _ = build_history(
        [
            version(0, sku="B"),
            version(2, sku="B", category="Cables"),
            version(0, sku="A"),
            version(4, sku="A", bundle='[{"quantity":1,"sku":"B"}]'),
        ]
    )
    assert [(r.sku, r.category, r.bundle, r.valid_to is None) for r in rows] == [
        ("A", "", None, False),
        ("A", "", '[{"quantity":1,"sku":"B"}]', True),
        ("B", "", None, False),
        ("B", "Cables", None, True),
    ]


SKUS = st.sampled_from(["A", "B", "C"])
VERSIONS = st.lists(
    st.builds(
        lambda sku, hour, price, available, category, tie: version(
            hour,
            price=price,
            available=available,
            sku=sku,
            category=category,
            payload_hash=f"{sku}{hour}{price}{available}{category}{tie}",
        ),
        SKUS,
        st.integers(0, 12),
        st.sampled_from([990, 1990]),
        st.booleans(),
        st.sampled_from(["", "Cables"]),
        st.integers(0, 1),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(VERSIONS, st.randoms(use_true_random=False), st.data())
def test_arrival_order_and_duplicates_never_change_the_history(versions, rng, data) -> None:
    expected, stats = build_history(versions)
    repeated = versions + data.draw(
        st.lists(st.sampled_from(versions), max_size=10) if versions else st.just([])
    )
    shuffled = list(repeated)
    rng.shuffle(shuffled)
    again, again_stats = build_history(shuffled)
    assert again == expected
    assert again_stats.rows == stats.rows
    assert (
        again_stats.versions
        == again_stats.duplicates + again_stats.conflicts + again_stats.unchanged + again_stats.rows
    )
    # Well formed: per SKU, periods chain without gaps or overlaps, exactly one current row,
    # and consecutive rows always differ in their attributes.
    for sku in {r.sku for r in expected}:
        mine = [r for r in expected if r.sku == sku]
        assert [r.valid_to for r in mine[:-1]] == [r.valid_from for r in mine[1:]]
        assert mine[-1].valid_to is None
        assert all(r.valid_from < r.valid_to for r in mine[:-1])
        attributes = [(r.price_minor, r.currency, r.available, r.category, r.bundle) for r in mine]
        assert all(x != y for x, y in zip(attributes, attributes[1:], strict=False))


# ---- one product version -> variant rows --------------------------------------------------

CONTRACT = load_contract("storefront_products")


def real_product() -> dict:
    return json.loads(REAL_PRODUCT.read_text())["product"]


def test_the_real_fixture_product_stages_one_row_per_variant() -> None:
    rows = stage_product(real_product(), CONTRACT, "USD")
    assert [r.sku for r in rows] == [
        "IPOD2008PINK",
        "IPOD2008RED",
        "IPOD2008GREEN",
        "IPOD2008BLACK",
    ]
    assert {(r.price_minor, r.currency, r.category, r.available) for r in rows} == {
        (19900, "USD", "Cult Products", True)
    }
    assert rows[0].updated_at == datetime(2011, 10, 20, 18, 5, 13, tzinfo=UTC)


def test_availability_status_and_bundle_are_read_from_the_product() -> None:
    product = real_product()
    product["variants"][0].update(inventory_quantity=0, inventory_policy="deny")
    product["variants"][1].update(inventory_quantity=0, inventory_policy="continue")
    product["tags"] = "Music, bundle"
    product["bundle_components"] = [{"sku": "Z", "quantity": 2}, {"sku": "A", "quantity": 1}]
    rows = stage_product(product, CONTRACT, "USD")
    assert [r.available for r in rows] == [False, True, True, True]
    assert rows[0].bundle == '[{"quantity":1,"sku":"A"},{"quantity":2,"sku":"Z"}]'
    product["status"] = "archived"
    assert not any(r.available for r in stage_product(product, CONTRACT, "USD"))


def test_a_broken_product_breaks_a_named_rule() -> None:
    cases = [
        (lambda p: p["variants"][2].update(price="12,50"), "bad_money", "variants[2].price"),
        (lambda p: p["variants"][0].pop("sku"), "required_field_missing", "variants[0].sku"),
        (lambda p: p.update(variants=[]), "required_field_empty", "variants"),
        (lambda p: p.update(updated_at="2011-10-20 14:05"), "bad_timestamp", "updated_at"),
        (lambda p: p.update(tags="bundle"), "bundle_without_components", "bundle_components"),
        (lambda p: p["variants"][1].update(sku="IPOD2008PINK"), "duplicate_sku", "variants[1].sku"),
    ]
    for mutate, rule, field in cases:
        product = copy.deepcopy(real_product())
        mutate(product)
        result = stage_product(product, CONTRACT, "USD")
        assert isinstance(result, Violation), rule
        assert (result.rule, result.field) == (rule, field)

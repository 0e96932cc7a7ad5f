import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REAL_FIXTURES = (
    Path(__file__).resolve().parents[1] / "integration_assets" / "sandbox" / "fixtures" / "shopify"
)


def load_fixture_order(relative: str) -> dict:
    body = json.loads((REAL_FIXTURES / relative).read_text())
    return body["order"] if "order" in body else body["orders"][0]


@pytest.fixture
def real_order() -> dict:
    return load_fixture_order("monei_shopify_api_node/order/res/get.json")

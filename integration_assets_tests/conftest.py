import json
import os
from pathlib import Path

import pytest

from integration_assets_tests.postgres import postgres_database  # noqa: F401  (a shared fixture)

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


@pytest.fixture(scope="session", autouse=True)
def audit_files_outside_the_repo(tmp_path_factory):
    """Every client writes each HTTP attempt to `<data dir>/audit/`; a test that names no data dir
    must not write into the repository's `data/`. Session-wide, so fixtures that run the pipeline
    once per session are covered too; a test that wants the files sets its own directory."""
    if os.environ.get("INTEGRATION_ASSETS_DATA_DIR") or os.environ.get(
        "INTEGRATION_ASSETS_AUDIT_DIR"
    ):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(tmp_path_factory.getbasetemp() / "audit"))
        yield

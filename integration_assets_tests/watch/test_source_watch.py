"""Watching the sources end to end: the sandbox storefront injects each source change over HTTP, the
real client reads it (every answer lands in the audit trail with the source's notices), and
ops/audit_log then ops/source_signals run in process against a temporary DuckDB. Each signal is
asserted in ops.source_signals, as an alert in alerts.log to its owner, and in the audit trail."""

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pytest
import yaml

from integration_assets.defs.alerts.sensors import alert_on_schema_drift
from integration_assets.defs.delivery.ops_assets import ops_audit_log
from integration_assets.defs.orders.extract import raw_storefront_orders
from integration_assets.defs.orders.staging import staging_storefront_orders
from integration_assets.defs.watch.assets import ops_source_signals
from integration_assets.defs.watch.names import CHECK_NO_OPEN_SOURCE_SIGNALS
from integration_assets.sandbox import start_storefront
from integration_assets.sandbox.scenario import parse_scenario
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.source_signals import open_source_signals
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.alert_sink import AlertSinkResource, read_alert_log
from integration_assets.systems.storefront import (
    StorefrontAuthError,
    StorefrontClient,
    StorefrontError,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "integration_assets" / "sandbox" / "scenarios"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ORDERS = "GET /admin/api/2025-07/orders.json"
SHOP_OWNER = "ecommerce-ops@example.com"


def jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


class Watch:
    """The tiny shop with the injected changes, its client, and the watch's assets and files."""

    def __init__(self, tmp_path: Path, sandbox, scenario, api_version: str) -> None:
        self.tmp_path = tmp_path
        self.sandbox = sandbox
        self.scenario = scenario
        self.api_version = api_version
        self.warehouse = Warehouse(tmp_path / "warehouse.duckdb")
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
            "alert_sink": AlertSinkResource(log_path=str(tmp_path / "alerts.log")),
            "raw_log": RawLogResource(root=str(tmp_path / "raw")),
            "storefront": self.client(),
        }

    def client(self) -> StorefrontClient:
        return StorefrontClient(
            shop_url=self.sandbox.url,
            access_token=self.scenario.shop.access_token,
            api_version=self.api_version,
            backoff_base_seconds=0.01,
            backoff_max_seconds=0.05,
            max_retries=1,
        )

    def read_orders(self) -> int:
        """One poll of the orders by a fresh client (as a run would); raises what the client raises."""
        return sum(len(page.records) for page in self.client().iter_order_pages(EPOCH))

    def advance(self, **delta) -> None:
        self.sandbox.clock.advance(timedelta(**delta))

    def run(self, assets=()) -> dg.ExecuteInProcessResult:
        """The watch (ops/audit_log then ops/source_signals), after `assets` when given."""
        if assets:
            dg.materialize(list(assets), resources=self.resources, instance=self.instance)
        result = dg.materialize(
            [ops_audit_log, ops_source_signals], resources=self.resources, instance=self.instance
        )
        assert result.success
        return result

    def check(self, result: dg.ExecuteInProcessResult):
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.check_name == CHECK_NO_OPEN_SOURCE_SIGNALS
        return evaluation

    def open_signals(self) -> list[dict]:
        with self.warehouse.connect(read_only=True) as con:
            return open_source_signals(con)

    def stored(self, key: str) -> dict:
        with self.warehouse.connect(read_only=True) as con:
            cursor = con.execute("SELECT * FROM ops.source_signals WHERE signal_key = ?", [key])
            names = [column[0] for column in cursor.description]
            return dict(zip(names, cursor.fetchone(), strict=True))

    def alerts(self) -> list[dict]:
        return [
            line
            for line in read_alert_log(self.tmp_path / "alerts.log")
            if line["event"] == "alert"
        ]

    def audit_lines(self) -> list[dict]:
        return [
            orjson.loads(line)
            for path in sorted((self.tmp_path / "audit").glob("*.jsonl"))
            for line in path.read_bytes().splitlines()
        ]

    def signal_lines(self) -> list[dict]:
        """The watch's own audit lines, oldest first (each run writes a file of its own)."""
        lines = [line for line in self.audit_lines() if line["direction"] == "signal"]
        return sorted(lines, key=lambda line: line["at"])

    def everything_written(self) -> str:
        """Every alert, audit line and stored signal, as text: where no secret may be."""
        with self.warehouse.connect(read_only=True) as con:
            rows = con.execute("SELECT * FROM ops.source_signals").fetchall()
            audit = con.execute("SELECT * FROM ops.audit_log").fetchall()
        return "\n".join(
            [
                (self.tmp_path / "alerts.log").read_text()
                if (self.tmp_path / "alerts.log").exists()
                else "",
                *(path.read_text() for path in (self.tmp_path / "audit").glob("*.jsonl")),
                repr(rows),
                repr(audit),
            ]
        )


@pytest.fixture
def audit_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(tmp_path / "audit"))
    for setting in ("STOREFRONT", "PAYMENTS", "ERP", "CRM", "WMS"):
        monkeypatch.delenv(f"{setting}_CREDENTIAL_EXPIRES_AT", raising=False)
    return tmp_path / "audit"


@contextmanager
def watching(
    tmp_path: Path, faults=(), shop: dict | None = None, api_version: str = "2025-07"
) -> Iterator[Watch]:
    raw = yaml.safe_load((SCENARIOS / "tiny.yaml").read_text())
    raw["faults"] = list(faults)
    raw["shop"].update(shop or {})
    scenario = parse_scenario(raw, SCENARIOS / "tiny.yaml")
    with start_storefront(scenario) as sandbox:
        watch = Watch(tmp_path, sandbox, scenario, api_version)
        watch.advance(hours=5, minutes=30)
        yield watch


def assert_raised(watch: Watch, key: str, kind: str, subject: str, owner: str, severity: str):
    (signal,) = [s for s in watch.open_signals() if s["key"] == key]
    assert (signal["kind"], signal["subject"], signal["owner"]) == (kind, subject, owner)
    (alert,) = [a for a in watch.alerts() if a["key"] == key]
    assert alert["owner"] == owner and alert["severity"] == severity
    (line,) = [
        line
        for line in watch.signal_lines()
        if line["method"] == "RAISED" and line["status"] == kind and line["endpoint"] == subject
    ]
    assert line["system"] == signal["system"] and line["run_id"]
    return signal, alert


def test_a_403_on_a_resource_that_answered_is_raised_once_and_clears_when_it_answers_again(
    tmp_path, audit_dir
):
    faults = [{"kind": "forbidden", "resource": "orders", "at": "+6h", "until": "+8h"}]
    with watching(tmp_path, faults) as watch:
        assert watch.read_orders() > 0
        assert watch.check(watch.run()).passed
        watch.advance(hours=1)
        with pytest.raises(StorefrontAuthError):
            watch.read_orders()
        first = watch.run()
        key = f"permission_lost:storefront:{ORDERS}"
        signal, alert = assert_raised(watch, key, "permission_lost", ORDERS, SHOP_OWNER, "error")
        assert "read_orders scope" in signal["detail"]
        check = watch.check(first)
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert f"permission_lost storefront {ORDERS} -> {SHOP_OWNER}" in check.description
        # The check names whose signal it is: `integration-assets owners` lists it under them.
        assert check.metadata["owners"].value == SHOP_OWNER
        assert "permission_lost" in check.metadata["broken_by_owner"].value[SHOP_OWNER]

        # Still refused an hour later: the same signal, not a second alert.
        watch.advance(hours=1)
        with pytest.raises(StorefrontAuthError):
            watch.read_orders()
        watch.run()
        assert [a["key"] for a in watch.alerts()] == [key]
        assert watch.stored(key)["alerted_at"] is not None

        # The scope is granted again: the endpoint answers, the signal clears, the trail says so.
        watch.advance(hours=1)
        assert watch.read_orders() > 0
        last = watch.run()
        assert watch.open_signals() == [] and watch.check(last).passed
        assert watch.stored(key)["cleared_at"] is not None
        assert [line["method"] for line in watch.signal_lines()] == ["RAISED", "CLEARED"]
        assert len(watch.alerts()) == 1


def test_a_404_where_there_was_data_is_an_endpoint_moved(tmp_path, audit_dir):
    with watching(tmp_path, [{"kind": "not_found", "resource": "orders", "at": "+6h"}]) as watch:
        watch.read_orders()
        watch.advance(hours=1)
        with pytest.raises(StorefrontError, match="answered 404"):
            watch.read_orders()
        watch.run()
        signal, _ = assert_raised(
            watch,
            f"endpoint_moved:storefront:{ORDERS}",
            "endpoint_moved",
            ORDERS,
            SHOP_OWNER,
            "error",
        )
        assert "answered 404" in signal["detail"]


def test_a_301_is_an_endpoint_moved_naming_where_and_the_data_still_arrives(tmp_path, audit_dir):
    faults = [{"kind": "moved", "resource": "orders", "at": "+6h", "to_version": "2025-10"}]
    with watching(tmp_path, faults) as watch:
        before = watch.read_orders()
        watch.advance(hours=1)
        assert watch.read_orders() >= before  # the read followed the redirect
        watch.run()
        signal, _ = assert_raised(
            watch,
            f"endpoint_moved:storefront:{ORDERS}",
            "endpoint_moved",
            ORDERS,
            SHOP_OWNER,
            "error",
        )
        assert (
            "redirected 301" in signal["detail"]
            and "/admin/api/2025-10/orders.json" in signal["detail"]
        )
        (line,) = [
            line
            for line in watch.audit_lines()
            if line["direction"] == "inbound" and (line.get("notices") or {}).get("redirects")
        ][:1]
        assert line["notices"]["redirects"][0]["status"] == 301


def test_a_deprecated_version_with_a_sunset_is_raised_with_its_date(tmp_path, audit_dir):
    with watching(tmp_path, shop={"deprecated_versions": {"2025-07": "2026-07-01"}}) as watch:
        watch.read_orders()
        watch.run()
        key = "api_version_retiring:storefront:API version 2025-07"
        signal, alert = assert_raised(
            watch, key, "api_version_retiring", "API version 2025-07", SHOP_OWNER, "warning"
        )
        assert "2026-07-01" in signal["detail"] and "deprecated" in signal["detail"]
        assert "shopify.dev/api/usage/versioning" in alert["text"]


def test_a_pinned_version_the_shop_no_longer_serves_is_raised(tmp_path, audit_dir):
    # Shopify falls forward to the oldest supported version (2025-01) for a retired one.
    with watching(tmp_path, api_version="2024-07") as watch:
        assert watch.read_orders() > 0
        watch.run()
        signal, _ = assert_raised(
            watch,
            "api_version_retiring:storefront:API version 2024-07",
            "api_version_retiring",
            "API version 2024-07",
            SHOP_OWNER,
            "warning",
        )
        assert "served version 2025-01 when asked for 2024-07" in signal["detail"]


@pytest.mark.parametrize(
    ("days", "kind", "severity"),
    [(5, "credential_expiring", "warning"), (-1, "credential_expired", "error")],
)
def test_a_configured_expiry_date_is_raised_inside_the_window_and_louder_once_past(
    tmp_path, audit_dir, monkeypatch, days, kind, severity
):
    expires = (datetime.now(UTC) + timedelta(days=days)).date().isoformat()
    monkeypatch.setenv("STOREFRONT_CREDENTIAL_EXPIRES_AT", expires)
    monkeypatch.setenv("ERP_CREDENTIAL_EXPIRES_AT", "2999-01-01")  # far off: nothing to say
    with watching(tmp_path) as watch:
        watch.read_orders()
        watch.run()
        signal, _ = assert_raised(
            watch,
            f"{kind}:storefront:STOREFRONT_ACCESS_TOKEN",
            kind,
            "STOREFRONT_ACCESS_TOKEN",
            SHOP_OWNER,
            severity,
        )
        assert (
            "STOREFRONT_CREDENTIAL_EXPIRES_AT" in signal["detail"] and expires in signal["detail"]
        )
        assert [s["kind"] for s in watch.open_signals()] == [kind]


def test_a_jwt_tokens_own_expiry_is_raised_and_the_token_is_written_nowhere(tmp_path, audit_dir):
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    token = jwt({"sub": "tiny-sandbox", "exp": int(expires.timestamp())})
    with watching(tmp_path, shop={"access_token": token}) as watch:
        assert watch.read_orders() > 0
        watch.run()
        signal, _ = assert_raised(
            watch,
            "credential_expiring:storefront:STOREFRONT_ACCESS_TOKEN",
            "credential_expiring",
            "STOREFRONT_ACCESS_TOKEN",
            SHOP_OWNER,
            "warning",
        )
        assert "the token's own expiry" in signal["detail"]
        assert f"{expires:%Y-%m-%d %H:%M}" in signal["detail"]
        written = watch.everything_written()
        assert token not in written and token.split(".")[2] not in written
        assert token.split(".")[1] not in written


def test_a_renamed_field_is_a_data_model_change_for_the_contracts_owner(tmp_path, audit_dir):
    faults = [
        {"kind": "schema_change", "at": "+6h", "rename": {"total_price": "total_price_amount"}}
    ]
    with watching(tmp_path, faults) as watch:
        stream = [raw_storefront_orders, staging_storefront_orders]
        watch.run(stream)
        watch.advance(hours=6)
        watch.run(stream)
        key = "schema_drift:storefront/orders:v1:renamed:total_price"
        (signal,) = watch.open_signals()
        assert (signal["key"], signal["kind"], signal["owner"]) == (
            key,
            "data_model_change",
            SHOP_OWNER,
        )
        assert signal["subject"] == "storefront_orders.total_price"
        assert "total_price_amount" in signal["detail"]
        (line,) = watch.signal_lines()
        assert (line["method"], line["status"], line["endpoint"]) == (
            "RAISED",
            "data_model_change",
            "storefront_orders.total_price",
        )
        # Its alert is the drift sensor's, under the same key, to the contract's owner: once.
        assert watch.alerts() == []
        context = dg.build_sensor_context(
            resources={
                "alert_sink": watch.resources["alert_sink"],
                "warehouse": watch.resources["warehouse"],
            }
        )
        alert_on_schema_drift(context)
        (alert,) = watch.alerts()
        assert (alert["key"], alert["owner"], alert["severity"]) == (key, SHOP_OWNER, "error")
        watch.run()
        assert watch.stored(key)["alerted_at"] is not None
        assert len(watch.alerts()) == 1

"""The shared client machinery: the readers' GETs land in the audit trail under their system's name,
and a WriteOutcome says only what the outbox can act on."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.systems.payments import PaymentsClient
from integration_assets.systems.storefront import StorefrontAuthError, StorefrontClient
from integration_assets.systems.write_outcome import (
    TargetUnavailableError,
    WriteOutcome,
)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def audit_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "audit"
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(directory))
    return directory


def audit_lines(directory: Path) -> list[dict]:
    return [
        orjson.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def test_the_readers_gets_are_audited_under_their_system_without_their_keys(audit_dir):
    scenario = load_scenario(SCENARIOS_DIR / "payments.yaml")
    with start_sandbox_systems(scenario) as systems:
        systems.clock.advance(timedelta(days=2))
        storefront = StorefrontClient(
            shop_url=systems.storefront.url,
            access_token=scenario.shop.access_token,
            api_version=scenario.shop.api_version,
        )
        payments = PaymentsClient(
            base_url=systems.payments.url, secret_key=scenario.payments.secret_key
        )
        order_pages = list(storefront.iter_order_pages(EPOCH))
        charge_pages = list(payments.iter_pages("charges"))
        wrong = StorefrontClient(
            shop_url=systems.storefront.url,
            access_token="shpat_wrong_token_value",
            api_version=scenario.shop.api_version,
        )
        with pytest.raises(StorefrontAuthError):
            wrong.count_orders()
    lines = audit_lines(audit_dir)
    by_system = {
        system: [line for line in lines if line["system"] == system]
        for system in ("storefront", "payments")
    }
    assert len(by_system["storefront"]) == len(order_pages) + 1
    assert len(by_system["payments"]) == len(charge_pages)
    assert len(lines) == len(order_pages) + len(charge_pages) + 1
    first = by_system["storefront"][0]
    assert (first["direction"], first["method"], first["status"], first["attempt"]) == (
        "inbound",
        "GET",
        "200",
        1,
    )
    assert "status=any" in first["endpoint"] and "updated_at_min=" in first["endpoint"]
    assert by_system["storefront"][-1]["status"] == "401"
    text = "".join(path.read_text() for path in audit_dir.glob("*.jsonl"))
    for secret in (
        scenario.shop.access_token,
        scenario.payments.secret_key,
        "shpat_wrong_token_value",
    ):
        assert secret not in text


def test_only_unavailable_and_missing_reference_are_worth_retrying():
    def outcome(kind: str, error_class: str | None) -> WriteOutcome:
        return WriteOutcome(kind, 400, "x", error_class=error_class)

    assert outcome("unavailable", "server_error").retryable
    assert outcome("missing_reference", "missing_reference").retryable
    assert not outcome("rejected", "validation").retryable
    assert not outcome("conflict", "conflict").retryable
    assert not WriteOutcome("delivered", 201, "created", created=True).retryable


def test_a_write_outcome_refuses_what_the_outbox_could_not_act_on():
    with pytest.raises(ValueError, match="unknown write outcome 'lost'"):
        WriteOutcome("lost", None, "x", error_class="server_error")
    with pytest.raises(ValueError, match="unknown error class 'oops'"):
        WriteOutcome("rejected", 400, "x", error_class="oops")
    with pytest.raises(ValueError, match="a delivered write has no error class"):
        WriteOutcome("delivered", 200, "x", error_class="validation")
    with pytest.raises(ValueError, match="every other outcome has one"):
        WriteOutcome("rejected", 400, "x")
    long = WriteOutcome("rejected", 400, "y" * 2000, error_class="validation")
    assert len(long.message) == 500 and long.message.endswith("…")


def test_an_exhausted_retry_becomes_an_unavailable_outcome_with_its_cause():
    error = TargetUnavailableError(
        "PUT /x still answered 429", error_class="rate_limited", http_status=429
    )
    outcome = WriteOutcome.unavailable(error)
    assert (outcome.outcome, outcome.http_status, outcome.error_class) == (
        "unavailable",
        429,
        "rate_limited",
    )
    assert outcome.message == "PUT /x still answered 429"

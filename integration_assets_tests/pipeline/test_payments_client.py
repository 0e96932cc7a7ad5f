"""The payments client (Stripe API) against the payments sandbox over real HTTP."""

import dataclasses
from datetime import timedelta

import pytest

from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.sandbox.scenario import Fault
from integration_assets.systems.payments import (
    PaymentsAuthError,
    PaymentsClient,
    PaymentsError,
    PaymentsPage,
)

PAYMENTS = load_scenario(SCENARIOS_DIR / "payments.yaml")
LATE = PAYMENTS.clock.start + timedelta(days=6)


def client_for(running, **overrides) -> PaymentsClient:
    settings = {
        "base_url": running.payments.url,
        "secret_key": running.payments.secret_key,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
    }
    return PaymentsClient(**{**settings, **overrides})


@pytest.fixture(scope="module")
def running():
    with start_sandbox_systems(PAYMENTS) as systems:
        systems.clock.set(LATE)
        yield systems


@pytest.mark.parametrize(
    "resource", ["charges", "refunds", "balance_transactions", "disputes", "payouts"]
)
def test_iter_pages_reads_every_object_once(running, resource):
    expected = [obj["id"] for obj in running.payments.ledger.snapshot(LATE).lists[resource]]
    client = client_for(running, page_limit=4)
    pages = list(client.iter_pages(resource))
    assert all(isinstance(page, PaymentsPage) for page in pages)
    assert [obj["id"] for page in pages for obj in page.records] == expected
    assert [page.page_number for page in pages] == list(range(len(pages)))
    assert len(pages) == max(1, -(-len(expected) // 4))
    assert [page.has_more for page in pages] == [True] * (len(pages) - 1) + [False]
    first, *rest = pages
    assert first.url == f"{running.payments.url}/v1/{resource}"
    assert first.params == {"limit": "4"} and first.http_status == 200
    for previous, page in zip(pages, rest, strict=False):
        assert page.params["starting_after"] == previous.records[-1]["id"]
    assert client.stats.requests == len(pages)


def test_created_gte_and_extra_params(running):
    ledger = running.payments.ledger
    snapshot = ledger.snapshot(LATE)
    since = sorted(t["created"] for t in snapshot.lists["balance_transactions"])[20]
    client = client_for(running)
    records = [
        r for p in client.iter_pages("balance_transactions", created_gte=since) for r in p.records
    ]
    assert records and all(r["created"] >= since for r in records)
    assert len(records) == sum(
        1 for t in snapshot.lists["balance_transactions"] if t["created"] >= since
    )
    payout = snapshot.lists["payouts"][0]
    members = [
        r
        for page in client.iter_pages("balance_transactions", extra_params={"payout": payout["id"]})
        for r in page.records
    ]
    assert sum(r["net"] for r in members) == payout["amount"]
    (page,) = list(client.iter_pages("payouts", created_gte=since, extra_params={"status": "paid"}))
    assert page.params == {"limit": "100", "created[gte]": str(since), "status": "paid"}


def test_rate_limited_requests_are_retried():
    scenario = dataclasses.replace(
        PAYMENTS,
        payments=dataclasses.replace(
            PAYMENTS.payments,
            faults=(Fault(kind="payments_rate_limit", after_requests=1, count=3),),
        ),
    )
    with start_sandbox_systems(scenario) as systems:
        systems.clock.set(LATE)
        client = client_for(systems, page_limit=10)
        records = [r for page in client.iter_pages("charges") for r in page.records]
        expected = [c["id"] for c in systems.payments.ledger.snapshot(LATE).lists["charges"]]
        assert [r["id"] for r in records] == expected
        assert client.stats.retries_rate_limited == 3
        assert client.stats.waited_seconds > 0
        assert systems.payments.stats()["api_by_status"]["429"] == 3


def test_retries_are_bounded():
    scenario = dataclasses.replace(
        PAYMENTS,
        payments=dataclasses.replace(
            PAYMENTS.payments,
            faults=(Fault(kind="payments_rate_limit", after_requests=0, count=100),),
        ),
    )
    with start_sandbox_systems(scenario) as systems:
        client = client_for(systems, max_retries=2)
        with pytest.raises(PaymentsError, match="still answered 429 after 3 attempts"):
            list(client.iter_pages("charges"))
        assert client.stats.requests == 3


def test_wrong_key_fails_at_once_without_retries_or_the_key(running):
    secret = "sk_test_wrongWrongWrongWrong1234"
    client = client_for(running, secret_key=secret)
    before = running.payments.stats()["by_route"].get("charges", {}).get("401", 0)
    with pytest.raises(PaymentsAuthError) as error:
        list(client.iter_pages("charges"))
    message = str(error.value)
    assert "PAYMENTS_SECRET_KEY" in message and "401" in message
    assert secret not in message and "1234" not in message
    assert running.payments.secret_key not in message
    assert client.stats.requests == 1
    assert running.payments.stats()["by_route"]["charges"]["401"] == before + 1


def test_other_4xx_carries_stripes_message(running):
    client = client_for(running)
    with pytest.raises(PaymentsError, match="Received unknown parameter: colour") as error:
        list(client.iter_pages("charges", extra_params={"colour": "blue"}))
    assert not isinstance(error.value, PaymentsAuthError)
    client_big = client_for(running, page_limit=500)
    with pytest.raises(PaymentsError, match="limit"):
        list(client_big.iter_pages("charges"))
    assert client.stats.requests == 1


def test_unreachable_api_is_retried_then_fails_clearly():
    client = PaymentsClient(
        base_url="http://127.0.0.1:9",
        secret_key="sk_test_unreachable_0000",
        max_retries=1,
        backoff_base_seconds=0.01,
        connect_timeout_seconds=0.5,
    )
    with pytest.raises(PaymentsError, match="no answer after 2 attempts") as error:
        list(client.iter_pages("charges"))
    assert "sk_test_unreachable_0000" not in str(error.value)
    assert client.stats.retries_network == 1

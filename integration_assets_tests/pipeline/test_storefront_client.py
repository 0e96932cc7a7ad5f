"""The storefront client against the sandbox over HTTP: pagination, 429, 5xx, timeouts, 401."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from integration_assets.sandbox import start_storefront
from integration_assets.sandbox.scenario import parse_scenario
from integration_assets.systems.storefront import (
    StorefrontAuthError,
    StorefrontClient,
    StorefrontError,
)
from integration_assets_tests.pipeline.conftest import SCENARIOS

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def scenario_with(faults: list[dict], base: str = "default"):
    raw = yaml.safe_load((SCENARIOS / f"{base}.yaml").read_text())
    raw["faults"] = faults
    return parse_scenario(raw, Path(f"{base}-with-faults.yaml"))


def client_for(sandbox, scenario, **overrides) -> StorefrontClient:
    settings = {
        "shop_url": sandbox.url,
        "access_token": scenario.shop.access_token,
        "api_version": scenario.shop.api_version,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.1,
    }
    return StorefrontClient(**{**settings, **overrides})


def all_ids(client: StorefrontClient) -> list[int]:
    return [order["id"] for page in client.iter_order_pages(EPOCH) for order in page.records]


@pytest.mark.parametrize("page_limit", [7, 250])
def test_pagination_follows_link_headers_and_visits_every_order_once(page_limit):
    scenario = scenario_with([])
    with start_storefront(scenario) as sandbox:
        sandbox.clock.advance(timedelta(days=2))
        client = client_for(sandbox, scenario, page_limit=page_limit)
        pages = list(client.iter_order_pages(EPOCH))
        ids = [order["id"] for page in pages for order in page.records]
        assert len(ids) == len(set(ids)) > 0
        assert all(len(page.records) <= page_limit for page in pages)
        assert pages[0].params["status"] == "any"
        if page_limit == 7:
            assert len(pages) == -(-len(ids) // 7)
            assert (
                "page_info" not in pages[0].params
                and all(p.next_url for p in pages[:-1])
                and pages[-1].next_url is None
            )


def test_rate_limit_429_is_retried_after_retry_after():
    scenario = scenario_with(
        [{"kind": "rate_limit_burst", "after_requests": 0, "count": 3, "retry_after": 0.05}]
    )
    with start_storefront(scenario) as sandbox:
        client = client_for(sandbox, scenario)
        ids = all_ids(client)
        assert ids
        assert client.stats.retries_rate_limited == 3
        assert client.stats.waited_seconds >= 3 * 0.05


def test_server_errors_are_retried_with_backoff():
    scenario = scenario_with(
        [{"kind": "server_error", "after_requests": 0, "count": 2, "status": 503}]
    )
    with start_storefront(scenario) as sandbox:
        client = client_for(sandbox, scenario)
        assert all_ids(client)
        assert client.stats.retries_server_error == 2


def test_persistent_server_errors_give_up_with_a_clear_message():
    scenario = scenario_with(
        [{"kind": "server_error", "after_requests": 0, "count": 50, "status": 502}]
    )
    with start_storefront(scenario) as sandbox:
        client = client_for(sandbox, scenario, max_retries=2)
        with pytest.raises(StorefrontError, match="502 after 3 attempts"):
            all_ids(client)


def test_a_slow_answer_times_out_and_is_retried():
    scenario = scenario_with(
        [{"kind": "slow_response", "after_requests": 0, "count": 1, "delay_seconds": 1.5}]
    )
    with start_storefront(scenario) as sandbox:
        client = client_for(sandbox, scenario, read_timeout_seconds=0.3)
        assert all_ids(client)
        assert client.stats.retries_network >= 1


def test_a_wrong_token_fails_at_once_without_retries_and_without_the_token_in_the_message():
    scenario = scenario_with([])
    with start_storefront(scenario) as sandbox:
        secret = "shpat_wrong_secret_value_123"
        client = client_for(sandbox, scenario, access_token=secret)
        with pytest.raises(StorefrontAuthError) as raised:
            all_ids(client)
        assert client.stats.requests == 1
        assert secret not in str(raised.value)
        assert "STOREFRONT_ACCESS_TOKEN" in str(raised.value)


@pytest.mark.parametrize("kind", ["truncated_body", "invalid_json"])
def test_a_page_whose_body_is_not_json_is_asked_again(kind):
    scenario = scenario_with([{"kind": kind, "after_requests": 1, "count": 2}])
    with start_storefront(scenario) as sandbox:
        sandbox.clock.advance(timedelta(days=2))
        client = client_for(sandbox, scenario, page_limit=7)
        ids = all_ids(client)
        assert sandbox.app.stats.snapshot()["faults_fired"] == {kind: 2}
    clean = scenario_with([])
    with start_storefront(clean) as sandbox:
        sandbox.clock.advance(timedelta(days=2))
        assert ids == all_ids(client_for(sandbox, clean, page_limit=7))
    assert client.stats.retries_invalid_body == 2


def test_a_body_that_stays_unreadable_gives_up_naming_what_came_back():
    scenario = scenario_with([{"kind": "invalid_json", "after_requests": 0, "count": 10}])
    with start_storefront(scenario) as sandbox:
        sandbox.clock.advance(timedelta(days=2))
        client = client_for(sandbox, scenario, max_retries=2)
        with pytest.raises(StorefrontError, match="not JSON 3 times .*Bad Gateway") as error:
            all_ids(client)
        assert scenario.shop.access_token not in str(error.value)


def test_a_refused_cursor_lists_again_from_the_first_page_and_misses_nothing():
    scenario = scenario_with([{"kind": "expired_cursor", "after_requests": 3}])
    with start_storefront(scenario) as sandbox:
        sandbox.clock.advance(timedelta(days=2))
        client = client_for(sandbox, scenario, page_limit=7)
        ids = all_ids(client)
        assert sandbox.app.stats.snapshot()["faults_fired"] == {"expired_cursor": 1}
    assert client.stats.cursor_restarts == 1
    # The pages before the refusal come again (staging counts them as duplicates): nothing missing.
    assert len(ids) > len(set(ids)) and len(set(ids)) > 21


def test_a_cursor_refused_again_and_again_fails_clearly():
    scenario = scenario_with([{"kind": "expired_cursor", "after_requests": 1, "count": 50}])
    with start_storefront(scenario) as sandbox:
        sandbox.clock.advance(timedelta(days=2))
        client = client_for(sandbox, scenario, page_limit=7)
        with pytest.raises(StorefrontError, match="answered 400: .*page_info.*after 2 restarts"):
            all_ids(client)

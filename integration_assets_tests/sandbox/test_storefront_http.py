"""The sandbox storefront over real HTTP on 127.0.0.1, spoken to as a Shopify client would."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integration_assets.sandbox.scenario import (
    PACKAGE_FIXTURES_DIR,
    SCENARIOS_DIR,
    Fault,
    RateLimitConfig,
    load_scenario,
)
from integration_assets.sandbox.server import RunningSandbox, start_storefront

# The regex Shopify's own JS client parses the Link header with (PROTOCOL_NOTES.md 1.2).
LINK_RE = re.compile(r'<([^<]+)>; rel="([^"]+)"')
TINY = load_scenario(SCENARIOS_DIR / "tiny.yaml")
DEFAULT = load_scenario(SCENARIOS_DIR / "default.yaml")
GENEROUS = RateLimitConfig(bucket_size=100_000, leak_per_second=1000.0, retry_after=0.1)


def parse_link_header(header: str | None) -> dict[str, str]:
    return {rel: url for url, rel in LINK_RE.findall(header or "")}


def _get(
    sandbox: RunningSandbox, resource: str, token: str | None = "", **params
) -> requests.Response:
    headers = {"X-Shopify-Access-Token": sandbox.access_token if token == "" else token}
    if token is None:
        headers = {}
    return requests.get(sandbox.api_url(resource), params=params, headers=headers, timeout=10)


def _advance(sandbox: RunningSandbox, step: str | float) -> str:
    response = requests.post(f"{sandbox.url}/_sandbox/clock", json={"advance": step}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["now"]


def _follow(sandbox: RunningSandbox, **params) -> tuple[list[int], list[requests.Response]]:
    """Every page, following `rel="next"` exactly as given, as a real client does."""
    first = _get(sandbox, "orders.json", **params)
    responses = [first]
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
    ids = [order["id"] for response in responses for order in response.json()["orders"]]
    return ids, responses


@pytest.fixture(scope="module")
def busy() -> Iterator[RunningSandbox]:
    """The default scenario 30 scenario hours in, without faults and with a bucket that never fills."""
    scenario = dataclasses.replace(DEFAULT, faults=(), rate_limit=GENEROUS)
    with start_storefront(scenario) as sandbox:
        sandbox.clock.advance(timedelta(hours=30))
        yield sandbox


@pytest.fixture
def tiny() -> Iterator[RunningSandbox]:
    with start_storefront(dataclasses.replace(TINY, rate_limit=GENEROUS)) as sandbox:
        yield sandbox


# ---- pagination -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [2, 3, 250])
def test_link_pagination_visits_every_order_exactly_once(busy: RunningSandbox, limit: int) -> None:
    expected = sorted(o.id for o in busy.app.orders.orders_at(busy.clock.now()))
    ids, responses = _follow(busy, status="any", limit=limit)
    assert ids == expected  # ascending, complete, no repeats
    assert len(responses) == -(-len(expected) // limit)
    assert all(len(r.json()["orders"]) <= limit for r in responses)
    assert "previous" not in parse_link_header(responses[0].headers.get("Link"))
    if len(responses) > 1:
        link = responses[1].headers["Link"]
        assert set(parse_link_header(link)) == {"next", "previous"} or len(responses) == 2
        next_url = parse_link_header(responses[0].headers["Link"])["next"]
        assert next_url.startswith(
            f"{busy.url}/admin/api/2025-07/orders.json?limit={limit}&page_info="
        )


def test_link_header_format_and_previous_page(busy: RunningSandbox) -> None:
    first = _get(busy, "orders.json", status="any", limit=5)
    second = requests.get(
        parse_link_header(first.headers["Link"])["next"],
        headers={"X-Shopify-Access-Token": busy.access_token},
        timeout=10,
    )
    link = second.headers["Link"]
    parts = link.split(", ")
    assert parts[0].endswith('>; rel="next"') and parts[1].endswith('>; rel="previous"')
    assert parts[0].startswith(f"<{busy.url}/admin/api/2025-07/orders.json?limit=5&page_info=")
    back = requests.get(
        parse_link_header(link)["previous"],
        headers={"X-Shopify-Access-Token": busy.access_token},
        timeout=10,
    )
    assert [o["id"] for o in back.json()["orders"]] == [o["id"] for o in first.json()["orders"]]


def test_page_info_keeps_the_filters_and_survives_a_clock_advance(tiny: RunningSandbox) -> None:
    tiny.clock.advance(timedelta(hours=3))
    first = _get(tiny, "orders.json", status="any", limit=2)
    assert [o["id"] for o in first.json()["orders"]] == sorted(tiny.app.orders.order_ids())[:2]
    _advance(tiny, "10h")  # orders change between pages
    next_url = parse_link_header(first.headers["Link"])["next"]
    query = parse_qs(urlsplit(next_url).query)
    assert set(query) == {"limit", "page_info"}  # the filters travel inside the opaque token
    second = requests.get(
        next_url, headers={"X-Shopify-Access-Token": tiny.access_token}, timeout=10
    )
    ids = [o["id"] for o in first.json()["orders"]] + [o["id"] for o in second.json()["orders"]]
    assert ids == sorted(tiny.app.orders.order_ids())


def test_page_info_with_another_filter_is_rejected(busy: RunningSandbox) -> None:
    first = _get(busy, "orders.json", status="any", limit=5)
    token = parse_qs(urlsplit(parse_link_header(first.headers["Link"])["next"]).query)["page_info"][
        0
    ]
    refused = _get(busy, "orders.json", page_info=token, updated_at_min="2026-11-20T00:00:00Z")
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": {"page_info": "updated_at_min cannot be passed when page_info is present"}
    }
    allowed = _get(busy, "orders.json", page_info=token, limit=3, fields="id,name")
    assert allowed.status_code == 200
    assert all(set(order) == {"id", "name"} for order in allowed.json()["orders"])
    garbled = _get(busy, "orders.json", page_info="not-a-cursor!!")
    assert garbled.status_code == 400 and "page_info" in garbled.json()["errors"]


def test_limit_above_250_is_rejected(busy: RunningSandbox) -> None:
    response = _get(busy, "orders.json", limit=251)
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]
    default_page = _get(busy, "orders.json", status="any")
    assert len(default_page.json()["orders"]) == 50


# ---- filters --------------------------------------------------------------------------------


def test_status_defaults_to_open(busy: RunningSandbox) -> None:
    served = busy.app.orders.orders_at(busy.clock.now())
    ids_open, _ = _follow(busy, limit=250)
    ids_any, _ = _follow(busy, status="any", limit=250)
    ids_cancelled, _ = _follow(busy, status="cancelled", limit=250)
    ids_closed, _ = _follow(busy, status="closed", limit=250)
    assert ids_open == [o.id for o in served if not o.cancelled and not o.closed]
    assert len(ids_any) == len(served) > len(ids_open)
    assert ids_cancelled and ids_closed
    assert not set(ids_open) & (set(ids_cancelled) | set(ids_closed))
    count = _get(busy, "orders/count.json", status="any").json()
    assert count == {"count": len(served)}
    assert _get(busy, "orders/count.json").json() == {"count": len(ids_open)}


def test_updated_at_bounds_are_inclusive_and_offset_aware(tiny: RunningSandbox) -> None:
    tiny.clock.advance(timedelta(hours=12))
    happy = tiny.app.orders.ids_by_label["happy_path"]
    updated = "2026-11-20T14:00:00-05:00"  # happy_path's last event (fulfilled at +5h)
    same_instant_in_utc = "2026-11-20T19:00:00Z"
    same_instant_elsewhere = "2026-11-20T20:00:00+01:00"
    for bound in (updated, same_instant_in_utc, same_instant_elsewhere):
        at_min = _follow(tiny, status="any", updated_at_min=bound)[0]
        at_max = _follow(tiny, status="any", updated_at_max=bound)[0]
        assert happy in at_min and happy in at_max, bound
    one_second_later = "2026-11-20T19:00:01Z"
    assert happy not in _follow(tiny, status="any", updated_at_min=one_second_later)[0]
    one_second_earlier = "2026-11-20T13:59:59-05:00"
    assert happy not in _follow(tiny, status="any", updated_at_max=one_second_earlier)[0]
    for order in _get(tiny, "orders.json", status="any", updated_at_min=updated).json()["orders"]:
        served_at = datetime.fromisoformat(order["updated_at"])
        assert served_at >= datetime(2026, 11, 20, 19, tzinfo=UTC)
        assert order["updated_at"].endswith("-05:00")


def test_since_id_ids_and_created_at(tiny: RunningSandbox) -> None:
    tiny.clock.advance(timedelta(hours=12))
    all_ids = sorted(tiny.app.orders.order_ids())
    assert _follow(tiny, status="any", since_id=all_ids[1])[0] == all_ids[2:]
    picked = f"{all_ids[0]},{all_ids[3]}"
    assert _follow(tiny, status="any", ids=picked)[0] == [all_ids[0], all_ids[3]]
    early = _follow(tiny, status="any", created_at_max="2026-11-20T09:30:00-05:00")[0]
    assert early == [
        tiny.app.orders.ids_by_label["happy_path"],
        tiny.app.orders.ids_by_label["edited"],
    ]


# ---- single order, auth, versions -----------------------------------------------------------


def test_single_order_and_404(tiny: RunningSandbox) -> None:
    edited = tiny.app.orders.ids_by_label["edited"]
    before = _get(tiny, f"orders/{edited}.json")
    assert before.status_code == 404 and before.json() == {"errors": "Not Found"}
    tiny.clock.advance(timedelta(hours=1))
    found = _get(tiny, f"orders/{edited}.json")
    assert found.status_code == 200
    assert found.json()["order"]["id"] == edited
    assert _get(tiny, "orders/999.json").status_code == 404
    transactions = _get(tiny, f"orders/{edited}/transactions.json").json()["transactions"]
    assert [(t["kind"], t["status"], t["order_id"]) for t in transactions] == [
        ("sale", "success", edited)
    ]


@pytest.mark.parametrize("token", [None, "shpat_wrong"])
def test_wrong_or_missing_token_is_401(tiny: RunningSandbox, token: str | None) -> None:
    response = _get(tiny, "orders.json", token=token)
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert tiny.stats()["by_route"]["orders"] == {"401": 1}


def test_api_version_header_and_fall_forward(tiny: RunningSandbox) -> None:
    headers = {"X-Shopify-Access-Token": tiny.access_token}
    for asked, served in [("2025-07", "2025-07"), ("2025-10", "2025-10"), ("2023-04", "2025-01")]:
        response = requests.get(
            f"{tiny.url}/admin/api/{asked}/orders.json", headers=headers, timeout=10
        )
        assert response.status_code == 200
        assert response.headers["X-Shopify-API-Version"] == served
    bad = requests.get(f"{tiny.url}/admin/api/latest/orders.json", headers=headers, timeout=10)
    assert bad.status_code == 404


# ---- the clock ------------------------------------------------------------------------------


def test_clock_advance_changes_what_is_served(tiny: RunningSandbox) -> None:
    happy = tiny.app.orders.ids_by_label["happy_path"]
    clock = requests.get(f"{tiny.url}/_sandbox/clock", timeout=10).json()
    assert clock["now"] == "2026-11-20T09:00:00-05:00"
    states = []
    for step in ("10m", "1h", "4h"):
        _advance(tiny, step)
        order = _get(tiny, f"orders/{happy}.json").json()["order"]
        states.append((order["financial_status"], order["fulfillment_status"], order["updated_at"]))
    assert [s[:2] for s in states] == [("pending", None), ("paid", None), ("paid", "fulfilled")]
    assert states[0][2] < states[1][2] < states[2][2]
    response = requests.post(
        f"{tiny.url}/_sandbox/clock", json={"set": "2026-11-20T09:00:00-05:00"}, timeout=10
    )
    assert response.json()["now"] == "2026-11-20T09:00:00-05:00"
    assert _get(tiny, f"orders/{happy}.json").json()["order"]["financial_status"] == "pending"
    assert (
        requests.post(
            f"{tiny.url}/_sandbox/clock", json={"advance": "soon"}, timeout=10
        ).status_code
        == 400
    )


# ---- fixtures, rate limits, faults ----------------------------------------------------------


def test_fixture_orders_are_served_byte_for_byte() -> None:
    scenario = dataclasses.replace(
        load_scenario(SCENARIOS_DIR / "real_fixtures.yaml"), rate_limit=GENEROUS
    )
    with start_storefront(scenario) as sandbox:
        expected = json.loads((PACKAGE_FIXTURES_DIR / "shopify_python_api/order.json").read_text())
        single = _get(sandbox, "orders/450789469.json")
        assert single.json() == expected
        listed = _get(sandbox, "orders.json", status="any").json()["orders"]
        assert listed == [expected["order"]]
        sandbox.clock.advance(timedelta(hours=3))
        later = json.loads((PACKAGE_FIXTURES_DIR / "shopify_python_api/orders.json").read_text())
        created = json.loads(
            (PACKAGE_FIXTURES_DIR / "monei_shopify_api_node/order/res/create.json").read_text()
        )
        listed = _get(sandbox, "orders.json", status="any").json()["orders"]
        assert listed == [later["orders"][0], created["order"]]


def test_leaky_bucket_answers_429_with_retry_after() -> None:
    scenario = dataclasses.replace(
        TINY, rate_limit=RateLimitConfig(bucket_size=5, leak_per_second=2.0, retry_after=0.5)
    )
    with start_storefront(scenario) as sandbox:
        responses = [_get(sandbox, "orders.json") for _ in range(7)]
        statuses = [r.status_code for r in responses]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
        assert [r.headers["X-Shopify-Shop-Api-Call-Limit"] for r in responses[:3]] == [
            "1/5",
            "2/5",
            "3/5",
        ]
        limited = next(r for r in responses if r.status_code == 429)
        assert limited.headers["Retry-After"] == "0.5"
        assert limited.headers["X-Shopify-Shop-Api-Call-Limit"] == "5/5"
        assert limited.json()["errors"].startswith("Exceeded 2 calls per second for api client.")
        time.sleep(float(limited.headers["Retry-After"]) + 0.1)
        assert _get(sandbox, "orders.json").status_code == 200
        assert sandbox.stats()["by_route"]["orders"]["429"] == statuses.count(429)


def test_rate_limit_burst_and_server_error_faults() -> None:
    scenario = dataclasses.replace(
        TINY,
        rate_limit=GENEROUS,
        faults=(
            Fault(kind="rate_limit_burst", after_requests=1, count=2, retry_after=0.2),
            Fault(kind="server_error", after_requests=4, count=1, status=502),
        ),
    )
    with start_storefront(scenario) as sandbox:
        responses = [_get(sandbox, "orders.json") for _ in range(6)]
        assert [r.status_code for r in responses] == [200, 429, 429, 200, 502, 200]
        assert responses[1].headers["Retry-After"] == "0.2"
        assert responses[4].headers["X-Shopify-API-Version"] == "2025-07"
        stats = sandbox.stats()
        assert stats["api_by_status"] == {"200": 3, "429": 2, "502": 1}
        assert stats["faults_fired"] == {"rate_limit_burst": 2, "server_error": 1}


def test_slow_response_fault_makes_a_client_timeout_fire() -> None:
    scenario = dataclasses.replace(
        TINY,
        rate_limit=GENEROUS,
        faults=(Fault(kind="slow_response", after_requests=0, count=1, delay_seconds=1.0),),
    )
    with start_storefront(scenario) as sandbox:
        with pytest.raises(requests.Timeout):
            requests.get(
                sandbox.api_url("orders.json"),
                headers={"X-Shopify-Access-Token": sandbox.access_token},
                timeout=0.3,
            )
        started = time.monotonic()
        assert _get(sandbox, "orders.json").status_code == 200
        assert time.monotonic() - started < 0.5


def test_default_scenario_faults_fire_early_and_a_retrying_client_gets_everything() -> None:
    """The project's own Shopify client against the default scenario: retries absorb the faults."""
    from integration_assets.systems.storefront import StorefrontClient

    with start_storefront(dataclasses.replace(DEFAULT, rate_limit=GENEROUS)) as sandbox:
        sandbox.clock.advance(timedelta(hours=24))
        client = StorefrontClient(
            shop_url=sandbox.url,
            access_token=sandbox.access_token,
            page_limit=25,
            backoff_base_seconds=0.01,
        )
        pages = list(client.iter_order_pages(datetime(2000, 1, 1, tzinfo=UTC)))
        ids = [order["id"] for page in pages for order in page.records]
        assert len(ids) == len(set(ids)) == len(sandbox.app.orders.orders_at(sandbox.clock.now()))
        stats = sandbox.stats()
        assert stats["api_by_status"]["429"] == 2 and stats["api_by_status"]["503"] == 1
        assert client.stats.retries_rate_limited == 2 and client.stats.retries_server_error == 1


def test_python_dash_m_serves_writes_the_ready_file_and_stops_on_sigterm(tmp_path) -> None:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integration_assets.sandbox",
            "--scenario",
            str(SCENARIOS_DIR / "tiny.yaml"),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert process.poll() is None, "the sandbox exited before it was ready"
            assert time.monotonic() < deadline, "no ready file after 20 s"
            time.sleep(0.05)
        systems = json.loads(ready.read_text())
        storefront = systems["storefront"]
        assert storefront["api_version"] == "2025-07"
        assert storefront["access_token"] == TINY.shop.access_token
        response = requests.get(
            f"{storefront['url']}/admin/api/2025-07/orders/count.json",
            headers={"X-Shopify-Access-Token": storefront["access_token"]},
            timeout=10,
        )
        assert response.json() == {"count": 1}  # only happy_path exists at clock start
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        output = process.stdout.read()
        assert output.startswith(f"storefront: {storefront['url']} ")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_python_dash_m_reports_a_broken_scenario(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nclock: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "integration_assets.sandbox", "--scenario", str(broken)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{broken}: clock.start: required" in result.stderr

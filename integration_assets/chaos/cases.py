"""The chaos cases: one kind of fault each, the runs an operator would make, and what must follow.

A case changes the chaos scenario (its faults), drives the stack (hours of hourly syncs, a webhook
storm, an outage and its end, a `kill -9`) and returns its own findings: that the fault really fired,
and what this fault in particular must leave behind. The invariants every case keeps are checked
after it by the suite (`invariants.check_all`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from integration_assets.chaos.invariants import Invariant
from integration_assets.chaos.scenario import SECRETS
from integration_assets.chaos.stack import ChaosStack
from integration_assets.stale_runs import release_orphaned_runs
from integration_assets.streams.outbox import FAILED, PENDING

HOURS = 3  # a case's hours of hourly syncs after its fault


@dataclass(frozen=True)
class Case:
    name: str
    fault: str  # what the table says was done
    changes: dict[str, Any]  # merged into the chaos scenario
    drive: Callable[[ChaosStack], list[Invariant]]
    client_settings: dict[str, Any] = field(default_factory=dict)
    small: bool = False  # part of the small suite that `make test` runs


def _fired(name: str, stats: dict[str, Any], *kinds: str) -> Invariant:
    fired = stats.get("faults_fired", {})
    counts = {kind: int(fired.get(kind, 0)) for kind in kinds}
    return Invariant(
        f"{name}_fired",
        all(counts.values()),
        ", ".join(f"{kind} x{n}" for kind, n in counts.items()),
    )


def _recovered(stack: ChaosStack) -> Invariant:
    """The last hourly run succeeded: whatever failed before was made good by running again."""
    last = [run for run in stack.runs if not run.label.endswith("files")][-1]
    failed = [run for run in stack.runs if not run.success]
    return Invariant(
        "recovered",
        last.success,
        f"{len(failed)} of {len(stack.runs)} runs failed, the last succeeded"
        if last.success
        else f"the last run failed at {', '.join(last.failed_steps)}",
    )


def _all_succeeded(stack: ChaosStack) -> Invariant:
    failed = [
        f"{run.label}: {', '.join(run.failed_steps)}" for run in stack.runs if not run.success
    ]
    return Invariant(
        "absorbed",
        not failed,
        f"all {len(stack.runs)} runs succeeded (retried)" if not failed else "; ".join(failed),
    )


# ---- the sources misbehave -------------------------------------------------------------------
def _storefront_case(stack: ChaosStack, *kinds: str) -> list[Invariant]:
    stack.hours(HOURS)
    assert stack.systems is not None
    return [
        _fired("storefront", stack.systems.storefront.app.stats.snapshot(), *kinds),
        _all_succeeded(stack),
    ]


def rate_limit_storm(stack: ChaosStack) -> list[Invariant]:
    found = _storefront_case(stack, "rate_limit_burst")
    assert stack.systems is not None
    return [*found, _fired("payments", stack.systems.payments.stats(), "payments_rate_limit")]


def server_errors(stack: ChaosStack) -> list[Invariant]:
    found = _storefront_case(stack, "server_error")
    assert stack.systems is not None
    return [
        *found,
        _fired("erp", stack.systems.erp.stats(), "server_error"),
        _fired("crm", stack.systems.crm.stats(), "server_error"),
    ]


def timeouts(stack: ChaosStack) -> list[Invariant]:
    return _storefront_case(stack, "slow_response")


def bad_bodies(stack: ChaosStack) -> list[Invariant]:
    return _storefront_case(stack, "truncated_body", "invalid_json")


def expired_cursor(stack: ChaosStack) -> list[Invariant]:
    return _storefront_case(stack, "expired_cursor")


# ---- the targets misbehave -------------------------------------------------------------------
def token_expiry(stack: ChaosStack) -> list[Invariant]:
    stack.hours(HOURS)
    assert stack.systems is not None
    return [
        _fired("erp", stack.systems.erp.stats(), "expire_tokens"),
        _fired("crm", stack.systems.crm.stats(), "expire_sessions"),
        _all_succeeded(stack),
    ]


def erp_partial_failure(stack: ChaosStack) -> list[Invariant]:
    """The ERP answers 500 to every request for a while (more than the retries): the deliveries that
    meet it leave their writes waiting in the outbox (their runs succeed, `target_reachable` says the
    ERP was not); the next hours deliver what waited."""
    stack.hours(HOURS + 1)
    assert stack.systems is not None
    return [
        _fired("erp", stack.systems.erp.stats(), "server_error"),
        _recovered(stack),
        _nothing_waiting(stack),
    ]


def erp_outage(stack: ChaosStack) -> list[Invariant]:
    """The ERP is down for two hours of runs, then back."""
    assert stack.systems is not None
    stack.systems.erp.app.set_down(True)
    down = stack.hours(2, "ERP down")
    stack.systems.erp.app.set_down(False)
    stack.hours(2, "ERP back")
    refused = Invariant(
        "outage_met",
        all(not run.success for run in down),
        f"{sum(not run.success for run in down)} of {len(down)} runs during the outage failed at "
        f"{', '.join(sorted({s for run in down for s in run.failed_steps}))[:120]}",
    )
    return [refused, _recovered(stack), _nothing_waiting(stack)]


def _nothing_waiting(stack: ChaosStack) -> Invariant:
    """After recovery no message to the ERP, CRM or WMS is left pending or failed (to retry): each
    was sent, superseded, or is a dead letter or awaits a person for a reason of its own (the
    invalid email, the big credit note)."""
    with stack.warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT target || ' ' || status, count(*) FROM ops.outbox GROUP BY 1 ORDER BY 1"
        ).fetchall()
    counts = {key: int(n) for key, n in rows}
    waiting = [key for key in counts if key.split(" ", 1)[1] in (PENDING, FAILED)]
    return Invariant(
        "delivered_after",
        not waiting,
        ", ".join(f"{key} {n}" for key, n in counts.items()),
    )


# ---- the warehouse sends bad files -----------------------------------------------------------
BAD_FILES = [
    {"at": "+1h30m", "kind": "wrong_header", "of": "shipments"},
    {"at": "+1h40m", "kind": "wrong_encoding", "of": "shipments"},
    {"at": "+1h50m", "kind": "truncated", "of": "shipments"},
    {"at": "+2h10m", "kind": "unparseable_row", "of": "shipments"},
]


def bad_warehouse_files(stack: ChaosStack) -> list[Invariant]:
    stack.hours(HOURS)
    with stack.warehouse.connect(read_only=True) as con:
        statuses = dict(
            con.execute(
                "SELECT status, count(*) FROM staging.warehouse_files GROUP BY 1"
            ).fetchall()
        )
        quarantined = con.execute("SELECT count(*) FROM ops.file_quarantine").fetchone()[0]
    return [
        Invariant(
            "bad_files_quarantined",
            int(statuses.get("quarantined", 0)) >= len(BAD_FILES) and quarantined >= len(BAD_FILES),
            f"files by status {dict(sorted(statuses.items()))}; {quarantined} quarantine rows "
            f"for {len(BAD_FILES)} bad files",
        ),
        _all_succeeded(stack),
    ]


# ---- webhooks: duplicates, out of order, forged ----------------------------------------------
def webhooks(stack: ChaosStack) -> list[Invariant]:
    from werkzeug.serving import make_server

    from integration_assets.webhooks.app import WebhookApp
    from integration_assets.webhooks.store import WebhookStore
    from integration_assets.webhooks.verify import shopify_signature, stripe_signature

    stack.hours(1)
    order = _an_order(stack)
    app = WebhookApp(
        WebhookStore(stack.data_dir / "raw", stack.data_dir / "webhooks"),
        shopify_secret=SECRETS["shopify_webhook_secret"],
        stripe_secret=SECRETS["stripe_webhook_secret"],
    )
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_quiet_handler())
    # The receiver logs each refusal as a warning; here the refusals are the point, and the table says so.
    receiver_log = logging.getLogger("integration_assets.webhooks.app")
    level = receiver_log.level
    receiver_log.setLevel(logging.ERROR)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    newer = {**order, "updated_at": _later(order["updated_at"], 2), "note": "webhook: newest"}
    older = {**order, "updated_at": _later(order["updated_at"], 1), "note": "webhook: older"}
    forged = {**order, "updated_at": _later(order["updated_at"], 3), "note": "FORGED"}

    def shopify(payload: dict, delivery: str, secret: str) -> int:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": shopify_signature(body, secret),
            "X-Shopify-Topic": "orders/updated",
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Shop-Domain": "chaos-sandbox.myshopify.com",
        }
        return requests.post(
            f"{url}/webhooks/shopify", data=body, headers=headers, timeout=30
        ).status_code

    try:
        answers = {
            "newer": shopify(newer, "w-2", SECRETS["shopify_webhook_secret"]),
            "older (out of order)": shopify(older, "w-1", SECRETS["shopify_webhook_secret"]),
            "newer again (duplicate)": shopify(newer, "w-2", SECRETS["shopify_webhook_secret"]),
            "forged": shopify(forged, "w-3", "not-the-secret"),
            "unsigned": requests.post(
                f"{url}/webhooks/shopify", data=json.dumps(forged).encode(), timeout=30
            ).status_code,
        }
        body = json.dumps(
            {"id": "evt_forged", "type": "charge.succeeded", "data": {"object": {}}}
        ).encode()
        answers["forged stripe"] = requests.post(
            f"{url}/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": stripe_signature(body, "whsec_wrong", int(time.time()))},
            timeout=30,
        ).status_code
        stats = requests.get(f"{url}/_webhooks/stats", timeout=30).json()
    finally:
        server.shutdown()
        app.store.close()
        receiver_log.setLevel(level)
    stack.hours(HOURS - 1)
    forged_seen = any(
        b"FORGED" in path.read_bytes()
        for path in (stack.data_dir / "raw").rglob("*")
        if path.is_file()
    )
    with stack.warehouse.connect(read_only=True) as con:
        staged_forged = con.execute(
            "SELECT count(*) FROM staging.storefront_orders WHERE json_extract_string(snapshot, '$.note') = 'FORGED'"
        ).fetchone()[0]
        current_note = con.execute(
            "SELECT json_extract_string(snapshot, '$.note') FROM staging.storefront_orders "
            "WHERE order_id = ? ORDER BY updated_at DESC LIMIT 1",
            [order["id"]],
        ).fetchone()
    expected = {"newer": 200, "older (out of order)": 200, "newer again (duplicate)": 200}
    rejected = {"forged": 401, "unsigned": 401, "forged stripe": 401}
    return [
        Invariant(
            "forged_rejected",
            all(answers[k] == v for k, v in rejected.items())
            and not forged_seen
            and not staged_forged,
            f"answers {answers}; forged bytes in raw: {forged_seen}; staged: {staged_forged}",
        ),
        Invariant(
            "duplicates_and_order",
            all(answers[k] == v for k, v in expected.items())
            and current_note is not None
            and current_note[0] == "webhook: newest",
            f"receiver counted {json.dumps({k: v for k, v in stats.items() if isinstance(v, int)})}; "
            f"newest staged note: {current_note[0] if current_note else None!r}",
        ),
        _all_succeeded(stack),
    ]


def _quiet_handler() -> type:
    """werkzeug's request handler without its line per request (the table is the output)."""
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return Quiet


def _an_order(stack: ChaosStack) -> dict[str, Any]:
    """A story order as the storefront serves it now (the happy path's)."""
    assert stack.systems is not None
    storefront = stack.systems.storefront
    response = requests.get(
        storefront.api_url("orders.json"),
        params={"status": "any", "limit": 250},
        headers={"X-Shopify-Access-Token": storefront.access_token},
        timeout=30,
    )
    response.raise_for_status()
    orders = response.json()["orders"]
    return next(o for o in orders if o.get("email") == "bob.norman@example.com")


def _later(timestamp: str, minutes: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(timestamp) + timedelta(minutes=minutes)).isoformat()


# ---- kill -9 in the middle of a load ---------------------------------------------------------
def kill_mid_load(stack: ChaosStack) -> list[Invariant]:
    """An hourly run in a process of its own, killed with SIGKILL while it writes into the ERP (the
    ERP slowed so the writes take a while); the orphaned run is released and the hour run again."""
    assert stack.systems is not None and stack.instance is not None
    stack.advance(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "integration_assets.chaos.stack"],
        env={**os.environ, **stack.environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    killed_at = None
    while time.monotonic() < deadline and process.poll() is None:
        created = int(stack.systems.erp.stats()["writes"].get("creates", 0))
        if created >= 1:
            os.killpg(process.pid, signal.SIGKILL)
            killed_at = created
            break
        time.sleep(0.05)
    process.wait(timeout=30)
    released = release_orphaned_runs(stack.instance, quiet_seconds=0)
    stack.systems.erp.app.faults = ()  # the slowness passes
    stack.hourly("after the kill")
    stack.hours(HOURS - 1)
    return [
        Invariant(
            "killed_mid_load",
            killed_at is not None and process.returncode == -signal.SIGKILL,
            f"killed after {killed_at} ERP documents were created; {len(released)} orphaned run released",
        ),
        _recovered(stack),
        _nothing_waiting(stack),
    ]


CASES = (
    Case(
        "rate_limit_storm",
        "429 storms: storefront bursts, payment provider 429s, CRM bursts",
        {
            "faults": [
                {"kind": "rate_limit_burst", "after_requests": n, "count": 4, "retry_after": 0.05}
                for n in (0, 8, 16)
            ],
            "payments": {
                "faults": [{"kind": "payments_rate_limit", "after_requests": 2, "count": 4}]
            },
            "crm": {"faults": [{"kind": "rate_limit_burst", "after_requests": 3, "count": 3}]},
        },
        rate_limit_storm,
    ),
    Case(
        "server_errors",
        "5xx: storefront 502/503, ERP 500, CRM 500 (fewer than the retries)",
        {
            "faults": [
                {"kind": "server_error", "after_requests": 1, "count": 2, "status": 503},
                {"kind": "server_error", "after_requests": 9, "count": 1, "status": 502},
            ],
            "erp": {
                "faults": [{"kind": "server_error", "after_requests": 3, "count": 2, "status": 500}]
            },
            "crm": {
                "faults": [{"kind": "server_error", "after_requests": 2, "count": 2, "status": 500}]
            },
        },
        server_errors,
    ),
    Case(
        "timeouts",
        "timeouts: storefront answers after 1.5 s, the client gives up at 0.5 s and retries",
        {
            "faults": [
                {"kind": "slow_response", "after_requests": 1, "count": 2, "delay_seconds": 1.5}
            ]
        },
        timeouts,
        client_settings={"read_timeout_seconds": 0.5},
    ),
    Case(
        "bad_bodies",
        "truncated JSON and a proxy's HTML page with status 200",
        {
            "faults": [
                {"kind": "truncated_body", "after_requests": 1, "count": 2},
                {"kind": "invalid_json", "after_requests": 6, "count": 2},
            ]
        },
        bad_bodies,
        small=True,
    ),
    Case(
        "expired_cursor",
        "an expired pagination cursor (400 page_info) mid-listing",
        {"faults": [{"kind": "expired_cursor", "after_requests": 2, "count": 1}]},
        expired_cursor,
        client_settings={"storefront_page_limit": 5},
    ),
    Case(
        "token_expiry",
        "token expiry: ERP OAuth tokens and CRM sessions revoked mid-run",
        {
            "erp": {"faults": [{"kind": "expire_tokens", "after_requests": 4}]},
            "crm": {"faults": [{"kind": "expire_sessions", "after_requests": 3}]},
        },
        token_expiry,
    ),
    Case(
        "webhooks",
        "webhooks: duplicate, out of order, forged and unsigned",
        {},
        webhooks,
        small=True,
    ),
    Case(
        "erp_partial_failure",
        "ERP partial failure: 500s outlast the retries in the middle of delivery",
        {
            "erp": {
                "faults": [{"kind": "server_error", "after_requests": 4, "count": 9, "status": 500}]
            }
        },
        erp_partial_failure,
    ),
    Case("erp_outage", "ERP full outage for two hours, then back", {}, erp_outage),
    Case(
        "bad_warehouse_files",
        "bad warehouse files: wrong header, wrong encoding, truncated, unparseable row",
        {"warehouse": {"bad_files": BAD_FILES}},
        bad_warehouse_files,
    ),
    Case(
        "kill_mid_load",
        "kill -9 of a run in the middle of the ERP load, then a re-run",
        {
            "erp": {
                "faults": [
                    {"kind": "slow", "after_requests": 2, "count": 400, "delay_seconds": 0.3}
                ]
            }
        },
        kill_mid_load,
        small=True,
    ),
)

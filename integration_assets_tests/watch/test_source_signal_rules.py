"""The source-change rules as pure functions: what each piece of evidence raises, and what clears it."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from integration_assets.streams.source_signals import (
    KIND_API_VERSION_RETIRING,
    KIND_CREDENTIAL_EXPIRED,
    KIND_CREDENTIAL_EXPIRING,
    KIND_DATA_MODEL_CHANGE,
    KIND_ENDPOINT_MOVED,
    KIND_PERMISSION_LOST,
    CredentialExpiry,
    DriftSeen,
    ExpirySettingError,
    PathHistory,
    StoredSignal,
    configured_expiries,
    credential_signals,
    drift_signals,
    endpoint_histories,
    endpoint_signals,
    normalise_path,
    plan_changes,
    signal_alert,
    version_signals,
    warning_window,
)
from integration_assets.systems.source_notices import header_moment, jwt_expiry, response_notices

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OWNERS = {"storefront": "ecommerce-ops@example.com", "erp": "finance-ops@example.com"}
ORDERS = "/admin/api/2025-07/orders.json"


def history(
    path=ORDERS, status="200", at=T0, success_at=None, method="GET", system="storefront", **more
):
    return PathHistory(
        system=system,
        method=method,
        path=path,
        last_status=status,
        last_at=at,
        last_audit_id=f"a-{path}-{status}",
        last_success_at=success_at,
        last_success_audit_id="ok-1" if success_at else None,
        **more,
    )


def signals_of(*paths, open_keys=frozenset()):
    return endpoint_signals(endpoint_histories(paths), OWNERS, open_keys)


def jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/admin/api/2025-07/orders/450789469.json", "/admin/api/2025-07/orders/{id}.json"),
        ("/admin/api/2025-07/orders.json?status=any", ORDERS),
        ("/api/v1/records/customer/eid:1001", "/api/v1/records/customer/eid:{id}"),
        (
            "/services/data/v60.0/sobjects/Account/External_Id__c/c-42",
            "/services/data/v60.0/sobjects/Account/External_Id__c/{id}",
        ),
        ("/v1/charges", "/v1/charges"),
    ],
)
def test_an_endpoint_is_its_path_with_ids_and_query_dropped(path, endpoint):
    assert normalise_path(path) == endpoint


def test_a_403_where_there_was_data_is_a_lost_permission_for_the_systems_owner():
    (signal,) = signals_of(
        history(
            status="403",
            at=T0,
            success_at=T0 - timedelta(hours=1),
            streak_since=T0,
            last_response='{"errors":"[API] This action requires merchant approval for read_orders scope."}',
        )
    )
    assert signal.kind == KIND_PERMISSION_LOST
    assert signal.key == f"permission_lost:storefront:GET {ORDERS}"
    assert signal.subject == f"GET {ORDERS}"
    assert signal.owner == "ecommerce-ops@example.com"
    assert signal.severity == "error"
    assert "read_orders" in signal.detail and "STOREFRONT_ACCESS_TOKEN" in signal.detail
    assert signal.evidence == (f"a-{ORDERS}-403", "ok-1")


def test_a_403_that_never_answered_or_is_a_spent_allowance_is_no_lost_permission():
    assert signals_of(history(status="403")) == []
    assert (
        signals_of(
            history(
                status="403",
                success_at=T0 - timedelta(hours=1),
                system="crm",
                last_response='[{"errorCode":"REQUEST_LIMIT_EXCEEDED"}]',
            )
        )
        == []
    )
    # Once open, it stays open while the 403 lasts, though the success fell out of the lookback.
    key = f"permission_lost:storefront:GET {ORDERS}"
    (kept,) = signals_of(history(status="403"), open_keys=frozenset({key}))
    assert kept.key == key


def test_a_404_where_there_was_data_is_a_moved_endpoint_but_not_for_a_records_own_read():
    before = T0 - timedelta(hours=2)
    (moved,) = signals_of(history(status="404", success_at=before))
    assert moved.kind == KIND_ENDPOINT_MOVED and moved.subject == f"GET {ORDERS}"
    # GET of one record: a 404 says the record is absent (the ERP client reads it as None).
    record = "/api/v1/records/customer/eid:2002"
    assert (
        signals_of(
            history(record, status="404", at=T0, system="erp"),
            history(
                "/api/v1/records/customer/eid:1001",
                status="200",
                at=before,
                success_at=before,
                system="erp",
            ),
        )
        == []
    )
    # An upsert does not answer 404 for a record it lacks: the write endpoint moved.
    (write,) = signals_of(
        history(record, status="404", at=T0, system="erp", method="PUT"),
        history(
            "/api/v1/records/customer/eid:1001",
            at=before,
            success_at=before,
            system="erp",
            method="PUT",
        ),
    )
    assert write.subject == "PUT /api/v1/records/customer/eid:{id}"
    assert write.owner == "finance-ops@example.com"


def test_a_permanent_redirect_is_a_moved_endpoint_naming_the_new_place():
    notices = {
        "redirects": [{"status": 301, "location": "http://shop/admin/api/2025-10/orders.json"}]
    }
    (moved,) = signals_of(history(success_at=T0, last_notices=notices))
    assert moved.kind == KIND_ENDPOINT_MOVED
    assert "/admin/api/2025-10/orders.json" in moved.detail
    temporary = {"redirects": [{"status": 302, "location": "http://shop/elsewhere"}]}
    assert signals_of(history(success_at=T0, last_notices=temporary)) == []


def test_a_success_again_clears_what_the_endpoint_had():
    key = f"permission_lost:storefront:GET {ORDERS}"
    assert signals_of(history(status="200", success_at=T0), open_keys=frozenset({key})) == []


def test_the_latest_answer_over_an_endpoints_paths_decides_and_says_since_when():
    early, late = T0 - timedelta(hours=3), T0
    (merged,) = endpoint_histories(
        [
            history("/x/orders/1.json", status="200", at=early, success_at=early),
            history(
                "/x/orders/2.json", status="403", at=late, streak_since=late - timedelta(hours=1)
            ),
            history(
                "/x/orders/3.json",
                status="403",
                at=late - timedelta(minutes=5),
                streak_since=late - timedelta(hours=2),
            ),
        ]
    )
    assert merged.endpoint == "/x/orders/{id}.json"
    assert merged.last_status == "403" and merged.last_at == late
    assert merged.last_success_at == early
    assert merged.failing_since == late - timedelta(hours=2)


def test_deprecation_and_sunset_headers_and_a_fallen_forward_version_are_notices():
    notices = response_notices(
        {
            "X-Shopify-API-Deprecated-Reason": "https://shopify.dev/api/usage/versioning#deprecation-practices",
            "Sunset": "Wed, 01 Jul 2026 00:00:00 GMT",
            "Deprecation": "@1767225600",
            "X-Shopify-API-Version": "2025-10",
        },
        [(301, "http://shop/admin/api/2025-10/orders.json?access_token=shpat_secret")],
        pinned_version="2025-07",
        served_version="2025-10",
    )
    assert notices == {
        "deprecated_reason": "https://shopify.dev/api/usage/versioning#deprecation-practices",
        "deprecation": "2026-01-01T00:00:00+00:00",
        "sunset": "2026-07-01T00:00:00+00:00",
        "served_version": "2025-10",
        "redirects": [
            {
                "status": 301,
                "location": "http://shop/admin/api/2025-10/orders.json?access_token=%5Bredacted%5D",
            }
        ],
        "api_version": "2025-07",
    }
    assert (
        response_notices(
            {"X-Shopify-API-Version": "2025-07"}, pinned_version="2025-07", served_version="2025-07"
        )
        is None
    )
    assert header_moment("next spring") == "next spring"  # kept as said, not dropped


def test_one_retiring_version_is_one_signal_naming_its_endpoints_and_sunset():
    notices = {
        "deprecated_reason": "see changelog",
        "sunset": "2026-07-01T00:00:00+00:00",
        "api_version": "2025-07",
    }
    signals = version_signals(
        endpoint_histories(
            [
                history(ORDERS, success_at=T0, last_notices=notices),
                history("/admin/api/2025-07/products.json", success_at=T0, last_notices=notices),
                history("/admin/api/2025-07/orders/count.json", success_at=T0),
            ]
        ),
        OWNERS,
    )
    (signal,) = signals
    assert signal.kind == KIND_API_VERSION_RETIRING
    assert signal.key == "api_version_retiring:storefront:API version 2025-07"
    assert signal.severity == "warning" and signal.owner == "ecommerce-ops@example.com"
    assert "2026-07-01" in signal.detail and "products.json" in signal.detail
    (fallen,) = version_signals(
        endpoint_histories(
            [
                history(
                    success_at=T0,
                    last_notices={"served_version": "2025-10", "api_version": "2025-01"},
                )
            ]
        ),
        OWNERS,
    )
    assert "served version 2025-10 when asked for 2025-01" in fallen.detail


def test_a_jwt_credential_gives_its_expiry_and_nothing_else():
    expiry = datetime(2026, 12, 1, tzinfo=UTC)
    assert jwt_expiry(jwt({"sub": "shop", "exp": int(expiry.timestamp())})) == expiry
    assert jwt_expiry("shpat_sandbox_token") is None
    assert jwt_expiry("not.a-jwt.at-all") is None
    assert jwt_expiry(jwt({"sub": "no expiry"})) is None


def test_a_credential_warns_inside_the_window_and_errors_once_expired():
    def expiring_in(delta, source="configured"):
        return CredentialExpiry("storefront", "STOREFRONT_ACCESS_TOKEN", T0 + delta, source)

    (soon,) = credential_signals([expiring_in(timedelta(days=5))], OWNERS, T0)
    assert soon.kind == KIND_CREDENTIAL_EXPIRING and soon.severity == "warning"
    assert soon.subject == "STOREFRONT_ACCESS_TOKEN" and soon.owner == "ecommerce-ops@example.com"
    assert "5 days from now" in soon.detail
    (gone,) = credential_signals([expiring_in(-timedelta(days=1))], OWNERS, T0)
    assert gone.kind == KIND_CREDENTIAL_EXPIRED and gone.severity == "error"
    assert credential_signals([expiring_in(timedelta(days=30))], OWNERS, T0) == []
    # The earliest expiry known wins (the token's own, before the configured date).
    (earliest,) = credential_signals(
        [expiring_in(timedelta(days=10)), expiring_in(timedelta(days=2), "the token's own expiry")],
        OWNERS,
        T0,
    )
    assert "the token's own expiry" in earliest.detail


def test_expiry_settings_are_read_from_the_environment_and_a_bad_one_is_named():
    (configured,) = configured_expiries({"STOREFRONT_CREDENTIAL_EXPIRES_AT": "2026-12-01"})
    assert configured.expires_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert configured.credential == "STOREFRONT_ACCESS_TOKEN"
    with pytest.raises(ExpirySettingError, match="^WMS_CREDENTIAL_EXPIRES_AT is not a date"):
        configured_expiries({"WMS_CREDENTIAL_EXPIRES_AT": "next tuesday"})
    assert warning_window({}) == timedelta(days=14)
    assert warning_window({"CREDENTIAL_EXPIRY_WARNING_DAYS": "30"}) == timedelta(days=30)
    with pytest.raises(ExpirySettingError, match="CREDENTIAL_EXPIRY_WARNING_DAYS"):
        warning_window({"CREDENTIAL_EXPIRY_WARNING_DAYS": "soon"})


def test_drift_is_a_data_model_change_until_a_newer_contract_version_is_in_force():
    seen = DriftSeen(
        stream="storefront/orders",
        contract="storefront_orders",
        contract_version=1,
        kind="renamed",
        field="total_price",
        breaking=True,
        owner="ecommerce-ops@example.com",
        detail="required field 'total_price' is missing (renamed to 'total_price_amount'?)",
        batches=2,
        first_seen_at=T0,
        last_seen_at=T0,
    )
    (signal,) = drift_signals([seen], {"storefront_orders": 1})
    assert signal.kind == KIND_DATA_MODEL_CHANGE
    assert signal.key == "schema_drift:storefront/orders:v1:renamed:total_price"
    assert signal.subject == "storefront_orders.total_price"
    assert signal.alerted_by == "alert_on_schema_drift"
    assert drift_signals([seen], {"storefront_orders": 2}) == []


def test_plan_raises_new_keeps_ongoing_and_clears_what_went():
    (a,) = signals_of(history(status="403", success_at=T0 - timedelta(hours=1)))
    (b,) = signals_of(
        history(
            "/admin/api/2025-07/products.json", status="404", success_at=T0 - timedelta(hours=1)
        )
    )
    first = T0 - timedelta(days=1)
    stored = {
        a.key: StoredSignal(a.key, first, None, first),
        "endpoint_moved:storefront:GET /gone": StoredSignal(
            "endpoint_moved:storefront:GET /gone", first, None, first
        ),
        b.key: StoredSignal(b.key, first, first + timedelta(hours=1), first),  # cleared, now back
    }
    plan = plan_changes([a, b], stored)
    assert [s.key for s in plan.raised] == [b.key]
    assert [s.key for s in plan.ongoing] == [a.key] and plan.ongoing[0].first_seen_at == first
    assert plan.cleared == ["endpoint_moved:storefront:GET /gone"]


def test_the_alert_goes_to_the_owner_under_the_signals_key():
    (signal,) = signals_of(history(status="403", success_at=T0 - timedelta(hours=1)))
    alert = signal_alert(signal)
    assert alert.key == signal.key and alert.owner == "ecommerce-ops@example.com"
    assert (
        alert.severity == "error" and alert.title == f"storefront: permission lost on GET {ORDERS}"
    )
    assert alert.fields["kind"] == KIND_PERMISSION_LOST

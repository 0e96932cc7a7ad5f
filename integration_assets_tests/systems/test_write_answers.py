"""The shared write path (`RetryingHttpResource.write`, `WriteOutcome.delivered/refused`): an answer
no write outcome describes fails with the target's words and where to look, against the real
sandboxes over HTTP; a refusal carries the error class the outbox routes it by."""

from pathlib import Path

import pytest

from integration_assets.sandbox.crm_app import parse_crm, start_crm
from integration_assets.sandbox.erp_app import ErpConfig, start_erp
from integration_assets.sandbox.scenario import _Reader
from integration_assets.sandbox.wms_api import parse_wms_api, start_wms_api
from integration_assets.systems.crm import CrmClient
from integration_assets.systems.erp import ErpClient
from integration_assets.systems.wms import WmsClient
from integration_assets.systems.write_outcome import TargetError, WriteOutcome

SCENARIO = Path("scenario.yaml")


@pytest.mark.parametrize(
    ("outcome", "error_class"),
    [
        ("rejected", "validation"),
        ("conflict", "conflict"),
        ("missing_reference", "missing_reference"),
    ],
)
def test_a_refusal_carries_the_error_class_the_outbox_routes_it_by(outcome, error_class):
    refused = WriteOutcome.refused(outcome, 409, "the target's words")

    assert (refused.outcome, refused.error_class) == (outcome, error_class)
    assert (refused.http_status, refused.message) == (409, "the target's words")


@pytest.mark.parametrize("outcome", ["delivered", "unavailable", "lost"])
def test_only_a_refusal_is_refused(outcome):
    with pytest.raises(ValueError, match=f"'{outcome}' is not a refusal"):
        WriteOutcome.refused(outcome, 400, "x")


def test_a_delivery_has_no_error_class_and_names_the_targets_record():
    delivered = WriteOutcome.delivered(201, "created customer version 1", "ERP-7", created=True)

    assert (delivered.outcome, delivered.error_class, delivered.retryable) == (
        "delivered",
        None,
        False,
    )
    assert (delivered.target_record_id, delivered.created) == ("ERP-7", True)


def test_an_erp_write_to_a_wrong_base_url_names_the_path_and_the_url_to_check():
    secret = "erp-secret-never-in-a-message"
    config = ErpConfig(client_secret=secret)
    with start_erp(config) as erp:
        client = ErpClient(
            base_url=f"{erp.url}/wrong",
            token_url=erp.token_url,
            client_id=config.client_id,
            client_secret=secret,
        )
        with pytest.raises(TargetError) as raised:
            client.upsert("customer", "c-1", {"name": "Ada"}, "customer:c-1:h")

    assert str(raised.value) == (
        "PUT /wrong/api/v1/records/customer/eid:c-1 answered 404 (Not Found); "
        "check the ERP base URL"
    )


def test_a_wms_write_to_a_wrong_base_url_names_the_path_and_the_url_to_check():
    key = "wms-key-never-in-a-message"
    with start_wms_api(parse_wms_api(_Reader(SCENARIO), {"api_key": key})) as wms:
        client = WmsClient(base_url=f"{wms.url}/wrong", api_key=key)
        with pytest.raises(TargetError) as raised:
            client.put_reservation("R-1", {"order_id": "1", "lines": []}, "R-1:h")

    assert str(raised.value) == (
        "PUT /wrong/api/v1/reservations/R-1 answered 404 (not_found); check the WMS base URL"
    )


def test_a_crm_write_to_an_unknown_sobject_says_what_to_check():
    secret = "crm-secret-never-in-a-message"
    config = parse_crm(_Reader(SCENARIO), {"client_id": "crm-client", "client_secret": secret})
    with start_crm(config) as crm:
        client = CrmClient(base_url=crm.url, client_id="crm-client", client_secret=secret)
        with pytest.raises(TargetError) as raised:
            client.upsert("Widget", "w-1", {"Name": "x"}, "w-1:h")

    assert str(raised.value) == (
        "PATCH /services/data/v60.0/sobjects/Widget/External_Id__c/w-1 answered 404 "
        "(The requested resource does not exist); check the sObject name and the CRM URL"
    )


def _wms_client() -> WmsClient:
    return WmsClient(base_url="http://wms.example/api", api_key="k")


@pytest.fixture
def proxy_environment(monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company-ca.pem")
    return monkeypatch


def test_proxies_and_ca_bundle_come_from_the_environment_read_once_per_host(proxy_environment):
    client = _wms_client()
    settings = client._environment_settings("http://wms.example/api/v1/reservations/R-1")
    assert settings["proxies"]["http"] == "http://proxy.example:3128"
    assert settings["verify"] == "/etc/ssl/certs/company-ca.pem"
    # Read once: the session no longer reads the environment on each request.
    assert client._http().trust_env is False
    proxy_environment.setenv("HTTP_PROXY", "http://other.example:1")
    again = client._environment_settings("http://wms.example/api/v1/reservations/R-2")
    assert again["proxies"]["http"] == "http://proxy.example:3128"


def test_no_proxy_still_bypasses_the_proxy_for_its_hosts(proxy_environment):
    proxy_environment.setenv("NO_PROXY", "wms.example")
    settings = _wms_client()._environment_settings("http://wms.example/api/v1/reservations/R-1")
    assert "http" not in settings["proxies"]

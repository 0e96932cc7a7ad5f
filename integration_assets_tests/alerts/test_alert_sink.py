"""The alert sink against the local Slack-compatible receiver, over real HTTP on 127.0.0.1."""

import json
import socket
from pathlib import Path

import pytest
import requests

from integration_assets.sandbox.alert_receiver import start_alert_receiver
from integration_assets.sandbox.scenario import Fault
from integration_assets.streams.alert_flood import Alert
from integration_assets.systems.alert_sink import (
    AlertSinkError,
    AlertSinkResource,
    read_alert_log,
)

SECRET = "T0AAAAAAA/B0BBBBBBB/xoxSecretToken123"


def alert(n: int = 1, severity: str = "error") -> Alert:
    return Alert(
        key=f"check:staging/storefront/orders:totals_{n}",
        title=f"Check failed: totals {n}",
        text=f"{n} orders do not add up",
        severity=severity,
        owner="Finance Operations",
        fields={"asset": "staging/storefront/orders"},
        suppressed=n - 1,
    )


def sink(tmp_path: Path, url: str, **overrides) -> AlertSinkResource:
    settings = dict(
        webhook_url=url,
        log_path=str(tmp_path / "alerts.log"),
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
        connect_timeout_seconds=1.0,
    )
    return AlertSinkResource(**{**settings, **overrides})


def free_port_with_nothing_listening() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_alerts_land_in_the_receiver_and_in_alerts_log_without_the_webhook_secret(tmp_path):
    with start_alert_receiver(tmp_path / "received.jsonl", token=SECRET) as receiver:
        poster = sink(tmp_path, receiver.hook_url)
        deliveries = [poster.post(alert(n)) for n in (1, 2, 3)]
        received = receiver.received()

    assert [d.delivered for d in deliveries] == [True, True, True]
    assert [d.attempts for d in deliveries] == [1, 1, 1]
    assert [p["text"] for p in received] == [f"[ERROR] Check failed: totals {n}" for n in (1, 2, 3)]
    section, fields, context = received[2]["blocks"]
    assert (
        section["text"]["text"] == ":red_circle: *Check failed: totals 3*\n3 orders do not add up"
    )
    assert "key `check:staging/storefront/orders:totals_3`" in context["elements"][0]["text"]
    assert "owner Finance Operations" in context["elements"][0]["text"]

    log_text = (tmp_path / "alerts.log").read_text()
    lines = read_alert_log(tmp_path / "alerts.log")
    assert [line["event"] for line in lines] == ["alert"] * 3
    assert [line["key"] for line in lines] == [alert(n).key for n in (1, 2, 3)]
    third = lines[2]
    assert third["severity"] == "error"
    assert third["owner"] == "Finance Operations"
    assert third["suppressed"] == 2
    assert third["text"] == "3 orders do not add up"
    assert third["delivery"] == "webhook"
    assert third["webhook_host"] == f"127.0.0.1:{receiver.port}"
    assert third["alert_id"] == deliveries[2].alert_id
    for secret_part in ("xoxSecretToken123", "B0BBBBBBB", "/hooks/alerts"):
        assert secret_part not in log_text


def test_a_webhook_that_stays_down_is_a_delivery_failed_line_and_the_alert_is_kept(tmp_path):
    url = f"http://127.0.0.1:{free_port_with_nothing_listening()}/hooks/alerts/{SECRET}"
    poster = sink(tmp_path, url)
    first = poster.post(alert(1))
    second = poster.post(alert(2))

    assert (first.delivered, first.attempts, first.error_class) == (False, 3, "ConnectionError")
    # After a failure for good, the next alert of the same tick tries once: a tick must end.
    assert (second.delivered, second.attempts) == (False, 1)
    lines = read_alert_log(tmp_path / "alerts.log")
    assert [(line["event"], line["key"]) for line in lines] == [
        ("alert", alert(1).key),
        ("delivery_failed", alert(1).key),
        ("alert", alert(2).key),
        ("delivery_failed", alert(2).key),
    ]
    failed = lines[1]
    assert failed["error_class"] == "ConnectionError"
    assert failed["alert_id"] == first.alert_id
    assert failed["webhook_host"] == url.split("/")[2]
    assert "xoxSecretToken123" not in (tmp_path / "alerts.log").read_text()


def test_a_webhook_answering_503_once_is_retried_and_delivers(tmp_path):
    faults = (Fault(kind="server_error", status=503, count=1),)
    with start_alert_receiver(tmp_path / "received.jsonl", faults=faults) as receiver:
        delivery = sink(tmp_path, receiver.hook_url).post(alert())
        stats = receiver.stats()
        received = receiver.received()
    assert (delivery.delivered, delivery.attempts, delivery.http_status) == (True, 2, 200)
    assert stats["by_route"]["hook"] == {"503": 1, "200": 1}
    assert len(received) == 1
    assert [line["event"] for line in read_alert_log(tmp_path / "alerts.log")] == ["alert"]


def test_a_webhook_refusing_the_url_is_not_retried(tmp_path):
    with start_alert_receiver(tmp_path / "received.jsonl", token=SECRET) as receiver:
        wrong = f"{receiver.url}/hooks/alerts/T0/B0/wrong-token"
        delivery = sink(tmp_path, wrong).post(alert())
        stats = receiver.stats()
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert (delivery.error_class, delivery.http_status) == ("HTTPError", 404)
    assert stats["by_route"]["hook"] == {"404": 1}
    failed = read_alert_log(tmp_path / "alerts.log")[1]
    assert (failed["event"], failed["http_status"]) == ("delivery_failed", 404)
    assert "wrong-token" not in (tmp_path / "alerts.log").read_text()


def test_without_a_webhook_alerts_only_go_to_the_log_and_the_env_var_is_read_at_run_time(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    poster = AlertSinkResource(log_path=str(tmp_path / "alerts.log"))
    delivery = poster.post(alert())
    assert delivery.delivered is None
    assert read_alert_log(tmp_path / "alerts.log")[0]["delivery"] == "log_only"

    with start_alert_receiver(tmp_path / "received.jsonl") as receiver:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.hook_url)
        assert poster.post(alert(2)).delivered is True
        assert len(receiver.received()) == 1


def test_the_default_log_is_alerts_log_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATION_ASSETS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    poster = AlertSinkResource()
    assert poster.log_file() == tmp_path / "data" / "alerts.log"
    poster.post(alert())
    assert read_alert_log(tmp_path / "data" / "alerts.log")[0]["key"] == alert().key


def test_a_webhook_url_that_is_not_http_is_refused_without_echoing_it(tmp_path):
    poster = sink(tmp_path, f"hooks.slack.com/services/{SECRET}")
    with pytest.raises(AlertSinkError, match="must start with http") as error:
        poster.post(alert())
    assert SECRET not in str(error.value)


def test_the_receiver_answers_like_slack(tmp_path):
    with start_alert_receiver(tmp_path / "received.jsonl") as receiver:
        ok = requests.post(receiver.hook_url, json={"text": "hello"}, timeout=5)
        no_text = requests.post(receiver.hook_url, json={"blocks": []}, timeout=5)
        empty_text = requests.post(receiver.hook_url, json={"text": "  "}, timeout=5)
        not_json = requests.post(receiver.hook_url, data=b"text=hello", timeout=5)
        wrong_method = requests.get(receiver.hook_url, timeout=5)
        received = receiver.received()
    assert (ok.status_code, ok.text, ok.headers["Content-Type"]) == (
        200,
        "ok",
        "text/plain; charset=utf-8",
    )
    assert [r.status_code for r in (no_text, empty_text, not_json)] == [400, 400, 400]
    assert {r.text for r in (no_text, empty_text, not_json)} == {"invalid_payload"}
    assert wrong_method.status_code == 405
    assert received == [{"text": "hello"}]
    lines = (tmp_path / "received.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["payload"] == {"text": "hello"}


def test_the_receiver_refuses_unknown_fault_kinds(tmp_path):
    with pytest.raises(ValueError, match="unknown kind 'rate_limit_burst'"):
        start_alert_receiver(tmp_path / "r.jsonl", faults=(Fault(kind="rate_limit_burst"),))

"""What a source says about itself reaches the audit trail, and a write never follows a redirect.

A small WSGI app on a real socket plays a target whose endpoint moved (301 for every request, as a
server does after a move) and says its version is deprecated."""

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from integration_assets.systems.wms import WmsClient
from integration_assets.systems.write_outcome import TargetError


@pytest.fixture
def audit_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(tmp_path / "audit"))
    return tmp_path / "audit"


@Request.application
def moved_target(request: Request) -> Response:
    if request.path.startswith("/v2/"):
        return Response(
            orjson.dumps({"reservation_id": "r-1", "method": request.method}),
            headers={"Sunset": "Wed, 01 Jul 2026 00:00:00 GMT", "Deprecation": "@1767225600"},
            content_type="application/json",
        )
    location = f"{request.host_url.rstrip('/')}/v2{request.full_path.rstrip('?')}"
    return Response("", status=301, headers={"Location": location})


@pytest.fixture
def target() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, moved_target, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def audit_lines(directory: Path) -> list[dict]:
    return [
        orjson.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def test_a_read_follows_a_redirect_and_the_trail_keeps_the_hop_and_the_sunset(target, audit_dir):
    client = WmsClient(base_url=target, api_key="wms-key-not-a-secret")
    response = client.send("GET", f"{target}/api/v1/reservations/r-1")
    assert response.status_code == 200 and response.json()["method"] == "GET"
    (line,) = audit_lines(audit_dir)
    assert line["status"] == "200"
    assert line["notices"] == {
        "deprecation": "2026-01-01T00:00:00+00:00",
        "sunset": "2026-07-01T00:00:00+00:00",
        "redirects": [{"status": 301, "location": f"{target}/v2/api/v1/reservations/r-1"}],
    }


def test_a_write_answered_301_fails_naming_the_new_place_and_is_not_sent_on(target, audit_dir):
    client = WmsClient(base_url=target, api_key="wms-key-not-a-secret", max_retries=0)
    with pytest.raises(TargetError) as error:
        client.send("PUT", f"{target}/api/v1/reservations/r-1", json_body={"quantity": 1})
    message = str(error.value)
    assert "PUT /api/v1/reservations/r-1 answered 301" in message
    assert f"moved to {target}/v2/api/v1/reservations/r-1" in message
    assert "wms-key-not-a-secret" not in message
    # One exchange: the PUT was not turned into a GET (or a PUT) at the new address.
    (line,) = audit_lines(audit_dir)
    assert (line["method"], line["status"], line["direction"]) == ("PUT", "301", "outbound")

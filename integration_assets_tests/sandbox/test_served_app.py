"""`serve`: every sandbox system listens on a real socket from a daemon thread, and stops cleanly."""

import socket
import threading

import pytest
import requests

from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.sandbox.erp_app import ErpApp, ErpConfig, RunningErp
from integration_assets.sandbox.served_app import serve

PAYMENTS = load_scenario(SCENARIOS_DIR / "payments.yaml")
# werkzeug's make_server reports a taken port by printing it and raising SystemExit.
CANNOT_LISTEN = (OSError, SystemExit)


def sandbox_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("sandbox-")}


@pytest.fixture
def taken_port():
    """A port something else already listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_answers_through_the_wrapper_and_counts_on_the_app():
    config = ErpConfig()
    app = ErpApp(config)

    def wsgi(environ, start_response):
        def tagged(status, headers, exc_info=None):
            return start_response(status, [*headers, ("X-Wrapped", "yes")], exc_info)

        return app(environ, tagged)

    with serve(RunningErp, config, app, wsgi=wsgi) as erp:
        answer = requests.get(f"{erp.url}/_sandbox/erp/stats", timeout=10)
        assert erp.config is config and erp.app is app
        assert erp.url == f"http://127.0.0.1:{erp.port}" and erp.port != 0

    assert answer.headers["X-Wrapped"] == "yes"
    assert erp.stats()["by_route"] == {"stats": {"200": 1}}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{erp.url}/_sandbox/erp/stats", timeout=10)


def test_serve_on_a_taken_port_raises_and_leaves_no_thread(taken_port):
    before = sandbox_threads()

    with pytest.raises(CANNOT_LISTEN):
        serve(RunningErp, ErpConfig(), ErpApp(ErpConfig()), port=taken_port)

    assert sandbox_threads() == before


@pytest.mark.parametrize("taken", ["payments_port", "erp_port", "wms_port"])
def test_a_system_that_cannot_listen_stops_the_ones_already_started(taken, taken_port, tmp_path):
    before = sandbox_threads()

    with pytest.raises(CANNOT_LISTEN):
        start_sandbox_systems(PAYMENTS, warehouse_inbox=tmp_path / "inbox", **{taken: taken_port})

    assert sandbox_threads() == before

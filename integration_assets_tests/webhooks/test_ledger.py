"""The dedup ledger lives beside the raw log, never in it; a ledger from its former place is adopted."""

from __future__ import annotations

import shutil

from integration_assets.webhooks.app import WebhookApp, create_app
from integration_assets.webhooks.store import LEDGER_NAME, LEGACY_LEDGER_NAME, WebhookStore

from .conftest import SHOPIFY_SECRET, deliver_shopify, fixture_order, webhook_app


def test_the_ledger_is_beside_raw_and_raw_holds_only_batch_files(tmp_path):
    app = webhook_app(tmp_path / "raw")
    assert app.store.ledger_path == tmp_path / "webhooks" / LEDGER_NAME
    deliver_shopify(app, fixture_order(), "orders/create", "wh-1")
    assert deliver_shopify(app, fixture_order(), "orders/create", "wh-1")["status"] == "duplicate"
    app.store.close()
    in_raw = sorted(path.name for path in (tmp_path / "raw").rglob("*") if path.is_file())
    assert len(in_raw) == 2
    assert {name.split(".", 1)[1] for name in in_raw} == {"jsonl", "manifest.json"}
    assert app.store.ledger_path.is_file()


def test_an_explicit_state_dir_holds_the_ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET)
    app = create_app(tmp_path / "data" / "raw", tmp_path / "state")
    try:
        assert app.store.ledger_path == tmp_path / "state" / LEDGER_NAME
        assert app.store.ledger_path.is_file()
        assert not (tmp_path / "data" / "webhooks").exists()
    finally:
        app.store.close()


def test_a_ledger_at_its_former_place_in_raw_is_moved_out_and_still_dedups(tmp_path):
    first = webhook_app(tmp_path / "raw")
    deliver_shopify(first, fixture_order(), "orders/create", "wh-before-the-move")
    first.store.close()
    # As the receiver left it before the ledger moved: inside the raw tree, nothing beside it.
    legacy = tmp_path / "raw" / "webhooks" / LEGACY_LEDGER_NAME
    shutil.move(first.store.ledger_path, legacy)

    store = WebhookStore(tmp_path / "raw")
    try:
        assert not legacy.exists() and store.ledger_path.is_file()
        app = WebhookApp(store, shopify_secret=SHOPIFY_SECRET)
        again = deliver_shopify(app, fixture_order(), "orders/create", "wh-before-the-move")
        assert again["status"] == "duplicate"
        assert len(list((tmp_path / "raw" / "webhooks").rglob("*.jsonl"))) == 1
    finally:
        store.close()

from __future__ import annotations

from integration_assets.cli import build_parser, main


def test_webhooks_serve_is_registered_with_its_options():
    args = build_parser().parse_args(["webhooks", "serve", "--port", "0", "--raw-dir", "/tmp/x"])
    assert args.port == 0 and args.raw_dir == "/tmp/x" and args.host == "127.0.0.1"
    assert args.state_dir == ""  # default: webhooks/ beside the raw root
    args = build_parser().parse_args(["webhooks", "serve", "--state-dir", "/tmp/state"])
    assert args.state_dir == "/tmp/state"


def test_webhooks_serve_refuses_to_start_without_any_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SHOPIFY_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    assert main(["webhooks", "serve", "--raw-dir", str(tmp_path / "raw"), "--port", "0"]) == 2
    assert "SHOPIFY_WEBHOOK_SECRET" in capsys.readouterr().err

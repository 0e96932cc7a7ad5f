"""`integration-assets webhooks serve`: the signed-webhook receiver on werkzeug's threaded server.

Secrets come from SHOPIFY_WEBHOOK_SECRET / STRIPE_WEBHOOK_SECRET (comma-separated during a rotation);
an endpoint whose secret is unset answers 401 to everything. Accepted deliveries land in the raw log
(`--raw-dir`, default the project's raw root) under source `webhooks`; the dedup ledger lives beside
raw, in `--state-dir` (default `webhooks/` beside the raw root: `<data dir>/webhooks`), never in the
immutable raw tree. In production run the same WSGI app under any WSGI server:
`gunicorn 'integration_assets.webhooks.app:create_app()'`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _cmd_webhooks_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from integration_assets.environment import apply_dagster_environment
    from integration_assets.webhooks.app import create_app

    apply_dagster_environment()
    app = create_app(
        Path(args.raw_dir) if args.raw_dir else None,
        Path(args.state_dir) if args.state_dir else None,
    )
    configured = app.configured_providers()
    if not configured:
        print(
            "integration-assets webhooks serve: set SHOPIFY_WEBHOOK_SECRET and/or STRIPE_WEBHOOK_SECRET",
            file=sys.stderr,
        )
        return 2
    print(
        f"webhooks: {', '.join(configured)} on http://{args.host}:{args.port}, raw in {app.store.log.root}, "
        f"ledger {app.store.ledger_path}",
        flush=True,
    )
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def add_commands(commands: Any) -> None:
    webhooks = commands.add_parser("webhooks", help="the signed-webhook receiver")
    webhooks_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    serve = webhooks_commands.add_parser(
        "serve", help="verify Shopify/Stripe webhooks and land each accepted one in raw"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8710)
    serve.add_argument("--raw-dir", default="", help="raw log root (default: the project's)")
    serve.add_argument(
        "--state-dir",
        default="",
        help="where the dedup ledger lives (default: webhooks/ beside the raw root)",
    )
    serve.set_defaults(handler=_cmd_webhooks_serve)

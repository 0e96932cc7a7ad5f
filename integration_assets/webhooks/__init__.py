"""Signed-webhook receiver: verify Shopify / Stripe deliveries, land each accepted one in raw, then answer.

- `verify.verify_shopify` / `verify.verify_stripe`: pure signature checks returning a `Verdict`;
- `store.WebhookStore`: one immutable raw batch per accepted delivery (fsync + atomic rename), a sqlite
  ledger beside raw (`<data dir>/webhooks/ledger.sqlite3`) for dedup by delivery id and for "older
  than known" per object, and the counters;
- `app.WebhookApp`: the WSGI app (`POST /webhooks/shopify`, `POST /webhooks/stripe`,
  `GET /_webhooks/stats`), served by `integration-assets webhooks serve` or any WSGI server;
- `routing`: which staging stream stages each landed batch (order and product topics, Stripe events
  by the type of their object), and the raw batches each staging asset reads;
- `cursor.BatchCursor`: which batches `webhook_batches_sensor` (integration_assets/defs/webhooks) has
  already turned into runs.
"""

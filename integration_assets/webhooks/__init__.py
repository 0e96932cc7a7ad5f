"""Signed-webhook receiver: verify Shopify / Stripe deliveries, land each accepted one in raw, then answer.

- `verify.verify_shopify` / `verify.verify_stripe`: pure signature checks returning a `Verdict`;
- `store.WebhookStore`: one immutable raw batch per accepted delivery (fsync + atomic rename), a sqlite
  ledger for dedup by delivery id and for "older than known" per object, and the counters;
- `app.WebhookApp`: the WSGI app (`POST /webhooks/shopify`, `POST /webhooks/stripe`,
  `GET /_webhooks/stats`), served by `integration-assets webhooks serve` or any WSGI server.
"""

"""The sandbox alone: how fast the storefront serves every orders.json page, with nothing else to do."""

from __future__ import annotations

import time
from typing import Any

import requests

PAGE_SIZE = 250


def next_link(link_header: str | None) -> str | None:
    """The `rel="next"` URL of a Shopify Link header, if any."""
    for part in (link_header or "").split(","):
        if 'rel="next"' in part:
            return part.split(";")[0].strip().strip("<>")
    return None


def serve_all_orders(base_url: str, api_version: str, access_token: str) -> dict[str, Any]:
    """Walk every page of orders.json?status=any (250 a page) once, as fast as one client can."""
    url: str | None = f"{base_url}/admin/api/{api_version}/orders.json"
    params: dict[str, Any] | None = {"status": "any", "limit": PAGE_SIZE}
    requests_made = orders = body_bytes = 0
    with requests.Session() as session:
        session.headers["X-Shopify-Access-Token"] = access_token
        started = time.perf_counter()
        while url:
            response = session.get(url, params=params, timeout=600)
            response.raise_for_status()
            requests_made += 1
            body_bytes += len(response.content)
            orders += len(response.json()["orders"])
            url, params = next_link(response.headers.get("Link")), None
        seconds = time.perf_counter() - started
    return {
        "requests": requests_made,
        "records": orders,
        "bytes": body_bytes,
        "wall_seconds": round(seconds, 3),
        "requests_per_second": round(requests_made / seconds, 2) if seconds else None,
        "rows_per_second": round(orders / seconds, 1) if seconds else None,
        "mb_per_second": round(body_bytes / seconds / 1e6, 2) if seconds else None,
    }


def orders_served(base_url: str, api_version: str, access_token: str, **filters: str) -> int:
    """orders/count.json with status=any and the given filters (e.g. updated_at_min)."""
    response = requests.get(
        f"{base_url}/admin/api/{api_version}/orders/count.json",
        params={"status": "any", **filters},
        headers={"X-Shopify-Access-Token": access_token},
        timeout=600,
    )
    response.raise_for_status()
    return int(response.json()["count"])

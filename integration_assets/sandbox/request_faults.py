"""Request-numbered faults for the target sandboxes (CRM, WMS reservations API).

Each target sandbox names its own fault kinds (the CRM's `daily_limit`, the WMS's
`rate_limit_burst`...) but they all share one YAML shape: `{kind, after_requests, count?, ...}`,
covering API requests `after_requests + 1 .. after_requests + count`. Parsing them here keeps the
error messages (file, path, problem) the same as the storefront's faults.
"""

from __future__ import annotations

from typing import Any

from integration_assets.sandbox.scenario import SERVER_ERROR_STATUSES, Fault, _Reader

# kind -> (required keys, optional keys) besides `kind`
FaultKinds = dict[str, tuple[set[str], set[str]]]


def parse_request_faults(
    reader: _Reader, raw: Any, path: str, kinds: FaultKinds
) -> tuple[Fault, ...]:
    """A list of faults of `kinds`; anything else fails with the path of the offending entry."""
    return tuple(
        _parse_fault(reader, entry, f"{path}[{index}]", kinds)
        for index, entry in enumerate(reader.listing(raw, path))
    )


def _parse_fault(reader: _Reader, raw: Any, path: str, kinds: FaultKinds) -> Fault:
    data = reader.mapping(raw, path)
    kind = data.get("kind")
    if kind not in kinds:
        raise reader.fail(
            f"{path}.kind", f"unknown fault kind {kind!r} (expected one of: {', '.join(kinds)})"
        )
    required, optional = kinds[kind]
    reader.mapping(data, path, required | optional | {"kind"})
    for key in sorted(required):
        if key not in data:
            raise reader.fail(f"{path}.{key}", f"required for a '{kind}' fault")
    status = reader.integer(data.get("status", 503), f"{path}.status")
    if status not in SERVER_ERROR_STATUSES:
        raise reader.fail(
            f"{path}.status", f"expected one of {sorted(SERVER_ERROR_STATUSES)}, got {status}"
        )
    retry_after = data.get("retry_after")
    return Fault(
        kind=kind,
        after_requests=reader.integer(data["after_requests"], f"{path}.after_requests", 0),
        count=reader.integer(data.get("count", 1), f"{path}.count", 1),
        retry_after=None
        if retry_after is None
        else reader.number(retry_after, f"{path}.retry_after", 0),
        status=status,
        delay_seconds=reader.number(data.get("delay_seconds", 0), f"{path}.delay_seconds", 0),
    )

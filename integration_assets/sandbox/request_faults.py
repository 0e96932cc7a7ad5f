"""Request-numbered faults for the target sandboxes (ERP, CRM, WMS reservations API).

Each target sandbox names its own fault kinds (the CRM's `daily_limit`, the WMS's
`rate_limit_burst`...) but they all share one YAML shape: `{kind, after_requests, count?, ...}`,
covering API requests `after_requests + 1 .. after_requests + count`. They are parsed by the
scenario's own `parse_fault`, so the error messages (file, path, problem) are the storefront's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from integration_assets.sandbox.scenario import Fault, FaultKinds, _Reader, parse_fault
from integration_assets.sandbox.storefront_app import RequestStats


def parse_request_faults(
    reader: _Reader, raw: Any, path: str, kinds: FaultKinds
) -> tuple[Fault, ...]:
    """A list of faults of `kinds`; anything else fails with the path of the offending entry."""
    return tuple(
        parse_fault(reader, entry, f"{path}[{index}]", kinds)
        for index, entry in enumerate(reader.listing(raw, path))
    )


def answering_fault(
    stats: RequestStats,
    faults: Iterable[Fault],
    sleep: Callable[[float], None],
    passive_kinds: Collection[str] = (),
) -> Fault | None:
    """Number this API request and fire the faults that cover it; the fault that answers, if any.

    A `slow_response` delays the answer and lets the next fault speak; the first other fault is
    the answer (None: answer normally). `passive_kinds` fire elsewhere (the CRM's session expiry
    happens before the session check) and are passed over here.
    """
    request_number = stats.next_api_request()
    for fault in faults:
        if fault.kind in passive_kinds or not fault.covers_request(request_number):
            continue
        stats.fault_fired(fault.kind)
        if fault.kind == "slow_response":
            sleep(fault.delay_seconds)
            continue
        return fault
    return None

"""Source-change signals: what breaks an integration, seen before it breaks it. Pure functions.

From the audit trail (every exchange with every system, with what the source said about itself)
and the contracts' drift events, each rule names one kind of change:

- `permission_lost`: an endpoint's latest answer is 403 where it answered 2xx before (a scope
  removed, an app's access revoked). Salesforce's 403 for a spent daily allowance is not one.
- `endpoint_moved`: a 404/410 where there was a 2xx before (a collection read, or any write: an
  upsert does not answer 404 for a record it has not got yet), or a read redirected 301/308.
- `api_version_retiring`: a deprecation notice (`X-Shopify-API-Deprecated-Reason`, `Deprecation`,
  `Sunset`) or a served API version that is not the pinned one (Shopify falls forward).
- `credential_expiring` / `credential_expired`: a credential whose configured expiry date, or its
  own (a JWT's `exp`), falls inside the warning window, or has passed.
- `data_model_change`: a contract's drift event (a field added, removed, renamed, retyped).

Each signal has a stable key (one signal, one alert, however many runs see it), an owner, a
detail a person can act on, and the audit ids that are its evidence. A signal clears when its
condition no longer holds: the endpoint answers 2xx again or is no longer called, the version is
no longer deprecated, the credential was rotated, a new contract version accepted the change.
`plan_changes` compares what is detected now with what is stored, so the asset alerts the new ones
once and records the cleared ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from integration_assets.streams.alert_flood import SEVERITY_ERROR, SEVERITY_WARNING, Alert

KIND_PERMISSION_LOST = "permission_lost"
KIND_ENDPOINT_MOVED = "endpoint_moved"
KIND_API_VERSION_RETIRING = "api_version_retiring"
KIND_CREDENTIAL_EXPIRING = "credential_expiring"
KIND_CREDENTIAL_EXPIRED = "credential_expired"
KIND_DATA_MODEL_CHANGE = "data_model_change"
KINDS = (
    KIND_PERMISSION_LOST,
    KIND_ENDPOINT_MOVED,
    KIND_API_VERSION_RETIRING,
    KIND_CREDENTIAL_EXPIRING,
    KIND_CREDENTIAL_EXPIRED,
    KIND_DATA_MODEL_CHANGE,
)
# What still works (a warning: plan the change) and what already fails or is about to (an error).
SEVERITIES = {
    KIND_PERMISSION_LOST: SEVERITY_ERROR,
    KIND_ENDPOINT_MOVED: SEVERITY_ERROR,
    KIND_API_VERSION_RETIRING: SEVERITY_WARNING,
    KIND_CREDENTIAL_EXPIRING: SEVERITY_WARNING,
    KIND_CREDENTIAL_EXPIRED: SEVERITY_ERROR,
}

# The long-lived credential of each system (its environment variable), and the optional variable
# that says when it expires (`STOREFRONT_CREDENTIAL_EXPIRES_AT=2026-12-01`).
CREDENTIAL_ENV = {
    "storefront": "STOREFRONT_ACCESS_TOKEN",
    "payments": "PAYMENTS_SECRET_KEY",
    "erp": "ERP_CLIENT_SECRET",
    "crm": "CRM_CLIENT_SECRET",
    "wms": "WMS_API_KEY",
}
STOREFRONT_EXPIRES_AT_ENV = "STOREFRONT_CREDENTIAL_EXPIRES_AT"
PAYMENTS_EXPIRES_AT_ENV = "PAYMENTS_CREDENTIAL_EXPIRES_AT"
ERP_EXPIRES_AT_ENV = "ERP_CREDENTIAL_EXPIRES_AT"
CRM_EXPIRES_AT_ENV = "CRM_CREDENTIAL_EXPIRES_AT"
WMS_EXPIRES_AT_ENV = "WMS_CREDENTIAL_EXPIRES_AT"
EXPIRES_AT_ENV = {
    "storefront": STOREFRONT_EXPIRES_AT_ENV,
    "payments": PAYMENTS_EXPIRES_AT_ENV,
    "erp": ERP_EXPIRES_AT_ENV,
    "crm": CRM_EXPIRES_AT_ENV,
    "wms": WMS_EXPIRES_AT_ENV,
}
WARNING_DAYS_ENV = "CREDENTIAL_EXPIRY_WARNING_DAYS"
DEFAULT_WARNING = timedelta(days=14)

# A 403 that is not a lost permission: Salesforce answers a spent daily API allowance with 403.
NOT_A_PERMISSION = ("REQUEST_LIMIT_EXCEEDED",)
_VERSION_SEGMENT = re.compile(r"v\d+(\.\d+)*|\d{4}-\d{2}(-\d{2})?")
_ID_SUFFIX = re.compile(r"\.(json|xml|csv)$")


class ExpirySettingError(ValueError):
    """An expiry setting that is not a date; the message names the variable."""


# --- the evidence ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathHistory:
    """One (system, method, path) of the audit trail over the lookback: its latest answer, its
    latest success, and since when its latest status has been answered without a success between."""

    system: str
    method: str
    path: str  # without host and query
    last_status: str
    last_at: datetime
    last_audit_id: str
    last_notices: Mapping[str, Any] | None = None
    last_response: str | None = None
    last_success_at: datetime | None = None
    last_success_audit_id: str | None = None
    streak_since: datetime | None = None  # first answer of the latest status after the last success


@dataclass(frozen=True)
class EndpointHistory:
    """PathHistory merged over the paths of one endpoint (`/records/customer/eid:{id}`)."""

    system: str
    method: str
    endpoint: str
    last_status: str
    last_at: datetime
    last_audit_id: str
    last_notices: Mapping[str, Any] | None
    last_response: str | None
    last_success_at: datetime | None
    last_success_audit_id: str | None
    failing_since: datetime


@dataclass(frozen=True)
class CredentialExpiry:
    """When a system's long-lived credential expires, and how we know (a setting, or the token)."""

    system: str
    credential: str  # the environment variable holding it, never the value
    expires_at: datetime
    source: str  # "configured in STOREFRONT_CREDENTIAL_EXPIRES_AT" | "the token's own expiry (exp)"
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftSeen:
    """One (stream, contract version, kind, field) of ops.schema_drift, over every batch it was in."""

    stream: str
    contract: str
    contract_version: int
    kind: str
    field: str
    breaking: bool
    owner: str | None
    detail: str
    batches: int
    first_seen_at: datetime
    last_seen_at: datetime
    notified_at: datetime | None = None

    @property
    def key(self) -> str:
        # The drift notice's own key (storage/drift_events.py): its alert and this signal are one.
        return f"schema_drift:{self.stream}:v{self.contract_version}:{self.kind}:{self.field}"


@dataclass(frozen=True)
class Signal:
    key: str
    kind: str
    system: str
    subject: str
    detail: str
    owner: str | None
    severity: str
    first_seen_at: datetime
    last_seen_at: datetime
    evidence: tuple[str, ...] = ()
    # Set when another part of the project posts this signal's alert (drift: the drift sensor),
    # with the time it did (None: not yet).
    alerted_by: str | None = None
    alerted_at: datetime | None = None


# --- endpoints -------------------------------------------------------------------------------------


def _is_id_segment(segment: str) -> bool:
    """A record's id in a path: digits (`450789469.json`), an external id (`eid:1001`), or any
    segment with a digit that is not a version (`v1`, `v60.0`, `2025-07`)."""
    if segment.startswith("eid:"):
        return True
    bare = _ID_SUFFIX.sub("", segment)
    return any(ch.isdigit() for ch in bare) and not _VERSION_SEGMENT.fullmatch(bare)


def normalise_path(path: str) -> str:
    """The endpoint of a path: each id segment replaced by `{id}` (keeping `.json`), the query and
    fragment dropped, so one endpoint's records are one history."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = []
    for segment in path.split("/"):
        if not _is_id_segment(segment):
            segments.append(segment)
            continue
        suffix = _ID_SUFFIX.search(segment)
        prefix = "eid:" if segment.startswith("eid:") else ""
        segments.append(f"{prefix}{{id}}{suffix.group(0) if suffix else ''}")
    return "/".join(segments)


def _status(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _success(status: str) -> bool:
    code = _status(status)
    return code is not None and 200 <= code < 300


def endpoint_histories(paths: Iterable[PathHistory]) -> list[EndpointHistory]:
    """Merge the paths of each (system, method, endpoint): the latest answer over all of them, the
    latest success, and since when the latest status stands (the earliest streak after it)."""
    groups: dict[tuple[str, str, str], list[PathHistory]] = {}
    for path in paths:
        groups.setdefault((path.system, path.method, normalise_path(path.path)), []).append(path)
    merged = []
    for (system, method, endpoint), members in sorted(groups.items()):
        latest = max(members, key=lambda p: (p.last_at, p.last_audit_id))
        succeeded = [p for p in members if p.last_success_at is not None]
        success = max(succeeded, key=lambda p: p.last_success_at) if succeeded else None
        success_at = success.last_success_at if success else None
        streaks = [
            p.streak_since or p.last_at
            for p in members
            if p.last_status == latest.last_status
            and (success_at is None or p.last_at > success_at)
        ]
        merged.append(
            EndpointHistory(
                system=system,
                method=method,
                endpoint=endpoint,
                last_status=latest.last_status,
                last_at=latest.last_at,
                last_audit_id=latest.last_audit_id,
                last_notices=latest.last_notices,
                last_response=latest.last_response,
                last_success_at=success_at,
                last_success_audit_id=success.last_success_audit_id if success else None,
                failing_since=min(streaks) if streaks else latest.last_at,
            )
        )
    return merged


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _evidence(*audit_ids: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in audit_ids if a))


def endpoint_signals(
    histories: Iterable[EndpointHistory],
    owners: Mapping[str, str],
    open_keys: frozenset[str] = frozenset(),
) -> list[Signal]:
    """permission_lost and endpoint_moved from each endpoint's latest answer. A signal already open
    (`open_keys`) stays open while the latest answer still shows it, even once the success before
    it is older than the lookback."""
    signals = []
    for history in histories:
        subject = f"{history.method} {history.endpoint}"
        status = _status(history.last_status)
        response = (history.last_response or "").strip()
        common = {
            "system": history.system,
            "subject": subject,
            "owner": owners.get(history.system),
            "first_seen_at": history.failing_since,
            "last_seen_at": history.last_at,
        }
        key = f"{KIND_PERMISSION_LOST}:{history.system}:{subject}"
        if (
            status == 403
            and (history.last_success_at is not None or key in open_keys)
            and not any(marker in response for marker in NOT_A_PERMISSION)
        ):
            signals.append(
                Signal(
                    key=key,
                    kind=KIND_PERMISSION_LOST,
                    detail=(
                        f"{subject} has answered 403 since {_when(history.failing_since)}"
                        f"{f' ({response[:160]})' if response else ''}; it last answered "
                        f"{_when(history.last_success_at)} with data. The {history.system} "
                        f"credential ({CREDENTIAL_ENV.get(history.system, 'its credential')}) "
                        "lost a permission (a scope, a role, an app's access): have it granted "
                        "again, then run the sync; nothing is read or written there until then."
                    ),
                    severity=SEVERITIES[KIND_PERMISSION_LOST],
                    evidence=_evidence(history.last_audit_id, history.last_success_audit_id),
                    **common,
                )
            )
            continue
        key = f"{KIND_ENDPOINT_MOVED}:{history.system}:{subject}"
        record_read = history.method == "GET" and "{id}" in history.endpoint
        if (
            status in (404, 410)
            and (history.last_success_at is not None or key in open_keys)
            and not record_read  # a record's 404 means the record is absent, not the endpoint
        ):
            signals.append(
                Signal(
                    key=key,
                    kind=KIND_ENDPOINT_MOVED,
                    detail=(
                        f"{subject} has answered {status} since {_when(history.failing_since)} "
                        f"where it answered with data until {_when(history.last_success_at)}: "
                        f"the endpoint moved or was removed. Find where the {history.system} "
                        "serves it now (its changelog), update the client's URL, and run the sync."
                    ),
                    severity=SEVERITIES[KIND_ENDPOINT_MOVED],
                    evidence=_evidence(history.last_audit_id, history.last_success_audit_id),
                    **common,
                )
            )
            continue
        moves = [
            hop
            for hop in (history.last_notices or {}).get("redirects") or []
            if hop.get("status") in (301, 308)
        ]
        if moves:
            hop = moves[0]
            signals.append(
                Signal(
                    key=key,
                    kind=KIND_ENDPOINT_MOVED,
                    detail=(
                        f"{subject} is redirected {hop['status']} (moved permanently) to "
                        f"{hop.get('location') or '(no Location)'} since "
                        f"{_when(history.failing_since)}. Reads still arrive through the redirect; "
                        "writes would not follow it. Point the client at the new address."
                    ),
                    severity=SEVERITIES[KIND_ENDPOINT_MOVED],
                    evidence=_evidence(history.last_audit_id),
                    **common,
                )
            )
    return signals


def version_signals(
    histories: Iterable[EndpointHistory], owners: Mapping[str, str]
) -> list[Signal]:
    """api_version_retiring from the latest answer of each endpoint: one signal per system and
    pinned version (or per endpoint, for a system that pins none), naming every endpoint it saw."""
    found: dict[str, dict[str, Any]] = {}
    for history in histories:
        notices = history.last_notices or {}
        if not any(
            notices.get(name)
            for name in ("deprecated_reason", "deprecation", "sunset", "served_version")
        ):
            continue
        pinned = notices.get("api_version")
        subject = f"API version {pinned}" if pinned else f"{history.method} {history.endpoint}"
        key = f"{KIND_API_VERSION_RETIRING}:{history.system}:{subject}"
        entry = found.setdefault(
            key,
            {
                "system": history.system,
                "subject": subject,
                "pinned": pinned,
                "endpoints": [],
                "reasons": set(),
                "sunsets": set(),
                "deprecations": set(),
                "served": set(),
                "first": history.last_at,
                "last": history.last_at,
                "evidence": [],
            },
        )
        entry["endpoints"].append(f"{history.method} {history.endpoint}")
        for name, bucket in (
            ("deprecated_reason", "reasons"),
            ("sunset", "sunsets"),
            ("deprecation", "deprecations"),
            ("served_version", "served"),
        ):
            if notices.get(name):
                entry[bucket].add(str(notices[name]))
        entry["first"] = min(entry["first"], history.last_at)
        entry["last"] = max(entry["last"], history.last_at)
        entry["evidence"].append(history.last_audit_id)
    signals = []
    for key, entry in sorted(found.items()):
        parts = []
        if entry["sunsets"]:  # the date a person must act by, first
            parts.append(f"it stops answering on {min(entry['sunsets'])} (Sunset)")
        if entry["served"]:
            parts.append(
                f"the {entry['system']} served version {', '.join(sorted(entry['served']))} when "
                f"asked for {entry['pinned']} (it no longer serves the pinned version)"
            )
        if entry["reasons"]:
            parts.append(
                f"it says the version is deprecated ({'; '.join(sorted(entry['reasons']))})"
            )
        if entry["deprecations"]:
            parts.append(f"deprecated since {min(entry['deprecations'])}")
        endpoints = sorted(set(entry["endpoints"]))
        shown = ", ".join(endpoints[:3]) + (
            f" and {len(endpoints) - 3} more" if len(endpoints) > 3 else ""
        )
        deadline = f" before {min(entry['sunsets'])}" if entry["sunsets"] else ""
        signals.append(
            Signal(
                key=key,
                kind=KIND_API_VERSION_RETIRING,
                system=entry["system"],
                subject=entry["subject"],
                detail=(
                    f"{entry['subject']} of the {entry['system']} is being retired: "
                    f"{'; '.join(parts)}. Seen on {shown}. Move the pinned version to a supported "
                    f"one, test the streams against it, and deploy{deadline}."
                ),
                owner=owners.get(entry["system"]),
                severity=SEVERITIES[KIND_API_VERSION_RETIRING],
                first_seen_at=entry["first"],
                last_seen_at=entry["last"],
                evidence=_evidence(*entry["evidence"][:10]),
            )
        )
    return signals


# --- credentials -----------------------------------------------------------------------------------


def parse_expiry(value: str, setting: str) -> datetime:
    """`2026-12-01` (midnight UTC) or an ISO timestamp (naive = UTC) as an aware UTC time."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExpirySettingError(
            f"{setting} is not a date: expected ISO-8601 like 2026-12-01 or "
            "2026-12-01T09:00:00+00:00"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def configured_expiries(environ: Mapping[str, str]) -> list[CredentialExpiry]:
    """The expiry dates set in the environment (`<SYSTEM>_CREDENTIAL_EXPIRES_AT`), one per system
    that has one; ExpirySettingError naming the variable for one that is not a date."""
    found = []
    for system, setting in EXPIRES_AT_ENV.items():
        value = environ.get(setting, "").strip()
        if value:
            found.append(
                CredentialExpiry(
                    system=system,
                    credential=CREDENTIAL_ENV[system],
                    expires_at=parse_expiry(value, setting),
                    source=f"configured in {setting}",
                )
            )
    return found


def warning_window(environ: Mapping[str, str]) -> timedelta:
    """How long before a credential expires it is signalled (CREDENTIAL_EXPIRY_WARNING_DAYS, default 14)."""
    value = environ.get(WARNING_DAYS_ENV, "").strip()
    if not value:
        return DEFAULT_WARNING
    try:
        days = float(value)
    except ValueError:
        raise ExpirySettingError(
            f"{WARNING_DAYS_ENV} must be a number of days, got {value!r}"
        ) from None
    if days < 0:
        raise ExpirySettingError(f"{WARNING_DAYS_ENV} cannot be negative, got {value!r}")
    return timedelta(days=days)


def credential_signals(
    expiries: Iterable[CredentialExpiry],
    owners: Mapping[str, str],
    now: datetime,
    window: timedelta = DEFAULT_WARNING,
) -> list[Signal]:
    """credential_expiring within `window` of its expiry, credential_expired once past it; one
    signal per credential, from the earliest expiry known for it (setting or token)."""
    earliest: dict[tuple[str, str], CredentialExpiry] = {}
    for expiry in expiries:
        known = earliest.get((expiry.system, expiry.credential))
        if known is None or expiry.expires_at < known.expires_at:
            earliest[(expiry.system, expiry.credential)] = expiry
    signals = []
    for (system, credential), expiry in sorted(earliest.items()):
        left = expiry.expires_at - now
        if left > window:
            continue
        expired = left <= timedelta(0)
        kind = KIND_CREDENTIAL_EXPIRED if expired else KIND_CREDENTIAL_EXPIRING
        days = abs(left).total_seconds() / 86400
        when = f"{_when(expiry.expires_at)} ({days:.0f} days {'ago' if expired else 'from now'})"
        setting = EXPIRES_AT_ENV.get(system, "the expiry setting")
        action = (
            f"Issue a new credential in the {system}, set it in {credential}, and set {setting} "
            "to the new expiry (or remove it when the new one does not expire)."
        )
        detail = (
            f"{credential} {'expired' if expired else 'expires'} {when}; {expiry.source}. "
            + ("Every call with it is refused now. " if expired else "")
            + action
        )
        signals.append(
            Signal(
                key=f"{kind}:{system}:{credential}",
                kind=kind,
                system=system,
                subject=credential,
                detail=detail,
                owner=owners.get(system),
                severity=SEVERITIES[kind],
                first_seen_at=now,
                last_seen_at=now,
                evidence=expiry.evidence,
            )
        )
    return signals


# --- contracts -------------------------------------------------------------------------------------


def drift_signals(drift: Iterable[DriftSeen], versions_in_force: Mapping[str, int]) -> list[Signal]:
    """data_model_change for each drift seen under the contract version still in force; a newer
    version (which accepted the change, or sees it again under its own key) clears it. Its alert
    is the drift sensor's (`alert_on_schema_drift`), under the same key, to the contract's owner."""
    signals = []
    for seen in drift:
        in_force = versions_in_force.get(seen.contract)
        if in_force is not None and in_force > seen.contract_version:
            continue
        effect = (
            "the batches are held back from core until a new contract version accepts it"
            if seen.breaking
            else "the batches proceed; review it for a new contract version"
        )
        signals.append(
            Signal(
                key=seen.key,
                kind=KIND_DATA_MODEL_CHANGE,
                system=seen.stream.split("/", 1)[0],
                subject=f"{seen.contract}.{seen.field}",
                detail=(
                    f"{seen.kind} field '{seen.field}' in {seen.stream} under contract "
                    f"{seen.contract} v{seen.contract_version}, in {seen.batches} batch(es): "
                    f"{seen.detail}. {effect[0].upper()}{effect[1:]} "
                    f"(contracts/{seen.contract}.yaml)."
                ),
                owner=seen.owner,
                severity=SEVERITY_ERROR if seen.breaking else SEVERITY_WARNING,
                first_seen_at=seen.first_seen_at,
                last_seen_at=seen.last_seen_at,
                alerted_by="alert_on_schema_drift",
                alerted_at=seen.notified_at,
            )
        )
    return signals


# --- what changed since the last run ---------------------------------------------------------------


@dataclass(frozen=True)
class StoredSignal:
    key: str
    first_seen_at: datetime
    cleared_at: datetime | None
    alerted_at: datetime | None


@dataclass
class SignalPlan:
    raised: list[Signal] = field(default_factory=list)  # new, or back after it had cleared
    ongoing: list[Signal] = field(default_factory=list)  # open before, still open
    cleared: list[str] = field(default_factory=list)  # keys open before, no longer detected


def plan_changes(detected: Iterable[Signal], stored: Mapping[str, StoredSignal]) -> SignalPlan:
    """Sort what is detected now against what is stored: raised, ongoing, cleared. An ongoing
    signal keeps the first_seen_at it was stored with."""
    plan = SignalPlan()
    seen = set()
    for signal in sorted(detected, key=lambda s: s.key):
        if signal.key in seen:
            continue
        seen.add(signal.key)
        before = stored.get(signal.key)
        if before is None or before.cleared_at is not None:
            plan.raised.append(signal)
        else:
            plan.ongoing.append(replace(signal, first_seen_at=before.first_seen_at))
    plan.cleared = sorted(
        key for key, before in stored.items() if before.cleared_at is None and key not in seen
    )
    return plan


TITLES = {
    KIND_PERMISSION_LOST: "{system}: permission lost on {subject}",
    KIND_ENDPOINT_MOVED: "{system}: endpoint moved: {subject}",
    KIND_API_VERSION_RETIRING: "{system}: {subject} is being retired",
    KIND_CREDENTIAL_EXPIRING: "{system}: {subject} expires soon",
    KIND_CREDENTIAL_EXPIRED: "{system}: {subject} has expired",
    KIND_DATA_MODEL_CHANGE: "{system}: data model change in {subject}",
}


def signal_alert(signal: Signal) -> Alert:
    """The alert for a new signal, to its owner, keyed by the signal (one signal, one alert)."""
    return Alert(
        key=signal.key,
        title=TITLES[signal.kind].format(system=signal.system, subject=signal.subject),
        text=signal.detail,
        severity=signal.severity,
        owner=signal.owner,
        fields={
            "kind": signal.kind,
            "system": signal.system,
            "subject": signal.subject,
            "since": _when(signal.first_seen_at),
        },
    )

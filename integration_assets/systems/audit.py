"""The audit trail's write side: every HTTP exchange with a source or target becomes one JSON line.

The clients call `audit_exchange` once per attempt (a retried request is several lines, each with its
attempt number). A bulk write is audited per record: each attempt of the request is one line per
record it carries, with the record's idempotency key and request hash, and the record's own status
and answer once the target answered the batch, so a record's story reads the same however it was
sent. Lines go to an append-only file per process and run under `<data dir>/audit/`, so
recording never waits for the warehouse (DuckDB lets one process write at a time); the
`ops/audit_log` asset loads the files into `ops.audit_log`. Nothing secret is written: headers are
never recorded (only the notices a source sends about itself: deprecation, sunset, the version
served, redirects), request bodies only as a hash of their redacted form, and the short response has
token-like values masked.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

SECRET_KEY_PATTERN = re.compile(
    r"(access_token|refresh_token|client_secret|secret|password|api_key|apikey|token|authorization)",
    re.IGNORECASE,
)
# "key": "value" pairs in JSON, and key=value pairs in form bodies, whose key names a secret.
_JSON_SECRET_KEY = r'("(?:[^"]*(?:access_token|refresh_token|client_secret|secret|password|api_key|token)[^"]*)"\s*:\s*)'
_JSON_SECRET = re.compile(_JSON_SECRET_KEY + r'"[^"]*"', re.IGNORECASE)
_FORM_SECRET = re.compile(
    r"((?:access_token|refresh_token|client_secret|password|api_key|token)=)[^&\s]*", re.IGNORECASE
)
REDACTED = "[redacted]"
RESPONSE_CHARS = 300

_lock = threading.Lock()


# A secret-named key whose string value runs past the end of a cut text: the value is masked too.
_JSON_SECRET_CUT = re.compile(_JSON_SECRET_KEY + r'"[^"]*\Z', re.IGNORECASE)
# How much of a response `redacted_excerpt` reads first; it reads more only when redaction shrank it.
_EXCERPT_WINDOW = 4096


def redact_text(text: str) -> str:
    """Mask the values of secret-looking keys in JSON or form-encoded text."""
    text = _JSON_SECRET.sub(_mask_json, text)
    return _FORM_SECRET.sub(_mask_form, text)


def _mask_json(match: re.Match[str]) -> str:
    return f'{match.group(1)}"{REDACTED}"'


def _mask_form(match: re.Match[str]) -> str:
    return f"{match.group(1)}{REDACTED}"


def redacted_excerpt(text: str, limit: int = RESPONSE_CHARS) -> str:
    """`redact_text(text)[:limit]`, without running the patterns over all of a megabyte page.

    Only a prefix is redacted. A secret value that the prefix's end cuts in two is masked whole
    (as the full text's redaction masks it), so the redacted prefix is a prefix of the redacted
    text; when masking left it shorter than `limit`, a prefix twice as long is tried.
    """
    window = max(_EXCERPT_WINDOW, 2 * limit)
    while len(text) > window:
        cut = _JSON_SECRET.sub(_mask_json, text[:window])
        cut = _JSON_SECRET_CUT.sub(_mask_json, cut)
        cut = _FORM_SECRET.sub(_mask_form, cut)
        if len(cut) >= limit:
            return cut[:limit]
        window *= 2
    return redact_text(text)[:limit]


def redact_url(url: str) -> str:
    """The endpoint without host credentials or secret query parameters."""
    parts = urlsplit(url)
    query = [
        (key, REDACTED if SECRET_KEY_PATTERN.search(key) else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    endpoint = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path
    return f"{endpoint}?{urlencode(query)}" if query else endpoint


def request_hash(body: bytes | str | None) -> str | None:
    """sha256 of the redacted body: equal requests hash equal, and the hash leaks no secret."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return hashlib.sha256(redact_text(text).encode()).hexdigest()


def audit_dir() -> Path:
    from integration_assets.storage.resources import default_data_dir

    configured = os.environ.get("INTEGRATION_ASSETS_AUDIT_DIR")
    return Path(configured) if configured else default_data_dir() / "audit"


def audit_file(run_id: str | None) -> Path:
    """One file per run and process: appends never interleave with another process's."""
    return audit_dir() / f"{run_id or 'no-run'}.{os.getpid()}.jsonl"


def audit_line(
    *,
    system: str,
    direction: str,
    method: str,
    url: str,
    status: int | str,
    duration_ms: float,
    attempt: int,
    run_id: str | None,
    idempotency_key: str | None = None,
    request_body: bytes | str | None = None,
    response_text: str | None = None,
    notices: dict | None = None,
) -> dict:
    """One exchange as an audit line (status is the HTTP code or an error class), secrets masked.

    `notices` is what the source said about itself on the answer (`systems/source_notices.py`):
    deprecation, sunset, the version it served, redirects; built from redacted values only."""
    line = {
        "audit_id": uuid.uuid4().hex,
        "at": datetime.now(UTC).isoformat(),
        "system": system,
        "direction": direction,
        "method": method.upper(),
        "endpoint": redact_url(url),
        "idempotency_key": idempotency_key,
        "request_hash": request_hash(request_body),
        "status": str(status),
        "response_short": None if response_text is None else redacted_excerpt(response_text),
        "duration_ms": round(float(duration_ms), 3),
        "attempt": int(attempt),
        "run_id": run_id,
    }
    if notices:
        line["notices"] = notices
    return line


def append_audit_lines(run_id: str | None, lines: list[dict]) -> None:
    """Append lines to this process's audit file for the run, in one write."""
    if not lines:
        return
    path = audit_file(run_id)
    encoded = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as handle:
            handle.write(encoded)


def audit_exchange(**exchange) -> None:
    """Append one exchange to this process's audit file (the arguments of `audit_line`)."""
    append_audit_lines(exchange["run_id"], [audit_line(**exchange)])

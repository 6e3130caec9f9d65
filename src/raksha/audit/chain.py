"""The hash of one audit entry: SHA-256 over a canonical JSON of its fields and the previous hash.

Pure functions, no I/O, so `verify` and `append` agree byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def canonical_time(t: datetime) -> str:
    """Microsecond UTC time as text; identical after a round trip through either database."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    station_id: str | None,
    address: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "at": canonical_time(at),
        "actor": actor,
        "action": action,
        "target": target,
        "station_id": station_id,
        "address": address,
        "details": details,
        "prev_hash": prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

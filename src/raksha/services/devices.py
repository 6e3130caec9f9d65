"""Device tokens: how a patrol unit's phone or tracker and an SOS sender prove who they are.

Each unit (`patrol_units[].token_env`) and each SOS source (`sos.sources[].token_env`) names an
environment variable holding its token; the same token authenticates it over HTTP
(`Authorization: Bearer …`) and in MQTT messages (`"token": "…"`). Only SHA-256 digests are
kept in memory; a token is compared by its digest, never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from raksha.errors import ConfigError
from raksha.site.config import SiteConfig

#: Shortest token accepted from the environment.
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class Device:
    kind: Literal["unit", "sos"]
    id: str

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class DeviceTokens:
    def __init__(self, tokens: Mapping[Device, str]) -> None:
        self._by_digest: dict[bytes, Device] = {}
        for device, token in tokens.items():
            digest = _digest(token)
            other = self._by_digest.get(digest)
            if other is not None:
                raise ConfigError(
                    f"{device.kind} {device.id} and {other.kind} {other.id} have the same "
                    "device token; give each its own"
                )
            self._by_digest[digest] = device

    @classmethod
    def from_config(cls, cfg: SiteConfig, env: Mapping[str, str]) -> DeviceTokens:
        """Tokens of every unit and SOS source that names one; a named variable that is
        unset or too short is a `ConfigError` naming the variable (never its value)."""
        wanted: list[tuple[Device, str]] = [
            (Device("unit", u.id), u.token_env) for u in cfg.patrol_units if u.token_env
        ]
        wanted += [(Device("sos", s.id), s.token_env) for s in cfg.sos.sources]
        tokens: dict[Device, str] = {}
        for device, var in wanted:
            value = env.get(var, "")
            if len(value) < MIN_TOKEN_CHARS:
                why = "is not set" if not value else f"is shorter than {MIN_TOKEN_CHARS} characters"
                raise ConfigError(f"{device.kind} {device.id}: token_env {var} {why}")
            tokens[device] = value
        return cls(tokens)

    def identify(self, token: str | None) -> Device | None:
        """The device whose token this is, or None."""
        if not token:
            return None
        digest = _digest(token)
        for known, device in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return device
        return None

    def __len__(self) -> int:
        return len(self._by_digest)

"""Patrol units as live resources: what a unit is doing and where it was last seen (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class UnitStatus(StrEnum):
    AVAILABLE = "available"
    #: Sent to an incident (its job card is out); busy until the incident is closed.
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    OFF_DUTY = "off_duty"

    @property
    def busy(self) -> bool:
        return self in (UnitStatus.DISPATCHED, UnitStatus.ON_SCENE)


@dataclass(frozen=True, slots=True)
class UnitState:
    """A patrol unit as the store knows it: its base from the site config, its live status
    and its last reported position (None until it reports one)."""

    id: str
    kind: str
    station_id: str
    name: str
    home_lat: float
    home_lon: float
    status: UnitStatus
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    position_at: datetime | None
    incident_id: str | None
    updated_at: datetime
    version: int

    @property
    def station(self) -> str:
        return self.station_id

    def where(self, now: datetime, max_age_s: float) -> tuple[float, float, bool]:
        """(lat, lon, live): its reported position when fresher than `max_age_s`, else its
        configured base."""
        if (
            self.lat is not None
            and self.lon is not None
            and self.position_at is not None
            and (now - self.position_at).total_seconds() <= max_age_s
        ):
            return self.lat, self.lon, True
        return self.home_lat, self.home_lon, False

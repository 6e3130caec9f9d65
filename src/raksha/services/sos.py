"""Panic signals in: a 112 app, a pink booth's button or a phone asks for help at a place.

    outcome = sos.receive(device, SosSignal(message_id="m-1", kind="panic", lat=…, lon=…))

A panic signal joins the nearest open incident within `sos.join_radius_m` seen in the last
`sos.join_window_s` (recorded as `sos_join`, raising it to high priority), or opens a new
incident marked human-raised (`origin: sos`, priority high), routed like any other and named
after the nearest camera when one is within `sos.camera_radius_m`. A camera incident opened
near a recent panic signal starts at high priority (the store checks). A cancel ("I am safe")
from the same sender is recorded on its incident (`sos_cancel`); an officer still closes it.

Refused with a clear 4xx and nothing stored: a message id this sender used before (a replay),
a signal older than `sos.max_age_s` or from the future, a position off the globe or farther
than `sos.max_distance_km` from every station, a panic without a position from a sender that
has none configured, a cancel with nothing open to cancel.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from raksha.audit.log import AuditLog
from raksha.errors import RakshaError, message_of
from raksha.geo.distance import haversine_m
from raksha.geo.routing import Router
from raksha.incidents.lifecycle import IllegalTransition
from raksha.incidents.model import (
    Action,
    AlertPayload,
    NewIncident,
    Origin,
    Priority,
    utcnow,
)
from raksha.services.devices import Device
from raksha.services.errors import Conflict, Invalid, NotFound
from raksha.services.units import Forbidden
from raksha.site.config import SiteConfig, SosSourceConfig
from raksha.store.repository import IncidentStore

FUTURE_SLACK_S = 30.0
#: A camera's distress reading older than this is not attached to an SOS.
READING_MAX_AGE_S = 60.0


@dataclass(frozen=True, slots=True)
class SosSignal:
    message_id: str
    kind: Literal["panic", "cancel"] = "panic"
    lat: float | None = None
    lon: float | None = None
    sent_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SosOutcome:
    incident_id: str
    #: "opened", "joined" or "cancelled".
    result: str
    station_id: str
    distance_m: float | None = None


class SosService:
    def __init__(
        self,
        store: IncidentStore,
        audit: AuditLog,
        site: SiteConfig,
        router: Router,
        channels: tuple[str, ...],
        *,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.audit = audit
        self.site = site
        self.cfg = site.sos
        self.router = router
        self.channels = channels
        self.on_change = on_change
        self._now = clock
        self._sources = {s.id: s for s in site.sos.sources}

    def _source(self, device: Device) -> SosSourceConfig:
        source = self._sources.get(device.id) if device.kind == "sos" else None
        if source is None:
            raise Forbidden("this token may not send SOS signals")
        return source

    def _check(
        self, source: SosSourceConfig, signal: SosSignal, now: datetime
    ) -> tuple[float | None, float | None, datetime]:
        mid = signal.message_id.strip()
        if not mid or len(mid) > 128:
            raise Invalid("message_id must be 1 to 128 characters")
        sent = signal.sent_at or now
        if sent.tzinfo is None:
            raise Invalid("sent_at needs a time zone (e.g. 2026-12-06T10:15:00Z)")
        if sent > now + timedelta(seconds=FUTURE_SLACK_S):
            raise Invalid("sent_at is in the future; check the sender's clock")
        if (now - sent).total_seconds() > self.cfg.max_age_s:
            raise Invalid(f"the signal is older than {self.cfg.max_age_s:.0f} s; not acted on")
        lat, lon = signal.lat, signal.lon
        if (lat is None) != (lon is None):
            raise Invalid("send both lat and lon, or neither")
        if lat is None:
            lat, lon = source.lat, source.lon
        if lat is None or lon is None:
            if signal.kind == "panic":
                raise Invalid(f"sender {source.id} has no fixed position: send lat and lon")
            return None, None, sent
        if not (
            math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180
        ):
            raise Invalid(f"position {lat}, {lon} is not on Earth")
        _, nearest = self.router.nearest_station(lat, lon)
        if nearest > self.cfg.max_distance_km * 1000:
            raise Invalid(
                f"position is {nearest / 1000:.0f} km from the nearest station "
                f"(more than sos.max_distance_km = {self.cfg.max_distance_km:g})"
            )
        return lat, lon, sent

    def receive(self, device: Device, signal: SosSignal) -> SosOutcome:
        source = self._source(device)
        now = self._now()
        lat, lon, sent = self._check(source, signal, now)
        if signal.kind == "cancel":
            incident_id = self.store.sos_incident_of(source.id)
            if incident_id is None:
                raise NotFound(f"sender {source.id} has no open SOS incident to cancel")
        if not self.store.record_sos_message(
            source.id, signal.message_id.strip(), signal.kind, lat, lon, sent, now
        ):
            raise Conflict(f"message {signal.message_id!r} from {source.id} was already received")
        try:
            return self._act(device, source, signal, lat, lon, now)
        except Exception:
            # Nothing was made of it: forget the message, so the sender's retry is taken.
            with contextlib.suppress(RakshaError):
                self.store.forget_sos_message(source.id, signal.message_id.strip())
            raise

    def _act(
        self,
        device: Device,
        source: SosSourceConfig,
        signal: SosSignal,
        lat: float | None,
        lon: float | None,
        now: datetime,
    ) -> SosOutcome:
        if signal.kind == "cancel":
            incident_id = self.store.sos_incident_of(source.id)
            if incident_id is None:
                raise NotFound(f"sender {source.id} has no open SOS incident to cancel")
            return self._cancel(device, source, signal, incident_id)
        assert lat is not None and lon is not None
        near = self.store.open_incident_near(
            lat, lon, radius_m=self.cfg.join_radius_m, window_s=self.cfg.join_window_s, now=now
        )
        if near is not None:
            incident_id, distance = near
            note = f"panic signal from {source.name or source.id}, {distance:.0f} m away"
            try:
                self.store.apply_action(incident_id, Action.SOS_JOIN, device.actor, note, at=now)
            except IllegalTransition:  # closed just now: open a new one below
                near = None
            else:
                self.store.link_sos_message(source.id, signal.message_id.strip(), incident_id)
                return self._done(device, incident_id, "joined", distance)
        new = self._new_incident(source, lat, lon, now, signal.note)
        self.store.create_incident(new, [], AlertPayload.of(new).to_json(), self.channels, now=now)
        self.store.link_sos_message(source.id, signal.message_id.strip(), new.id)
        return self._done(device, new.id, "opened", None)

    def _cancel(
        self, device: Device, source: SosSourceConfig, signal: SosSignal, incident_id: str
    ) -> SosOutcome:
        note = signal.note or "the person says they are safe"
        try:
            self.store.apply_action(incident_id, Action.SOS_CANCEL, device.actor, note)
        except IllegalTransition as exc:
            raise Conflict(message_of(exc)) from None
        self.store.link_sos_message(source.id, signal.message_id.strip(), incident_id)
        return self._done(device, incident_id, "cancelled", None)

    def _done(
        self, device: Device, incident_id: str, result: str, distance: float | None
    ) -> SosOutcome:
        incident = self.store.get_incident(incident_id)
        station = incident.station_id if incident is not None else ""
        self.audit.append(
            device.actor,
            f"sos.{result}",
            target=f"incident:{incident_id}",
            station_id=station,
        )
        if self.on_change is not None:
            self.on_change()
        return SosOutcome(incident_id, result, station, distance)

    def _camera_reading(self, camera_id: str, now: datetime) -> dict[str, object] | None:
        """The camera's highest face distress score of its last report, if recent."""
        for cam in self.store.cameras():
            if cam.camera_id != camera_id or cam.health is None:
                continue
            fresh = (now - cam.updated_at).total_seconds() <= READING_MAX_AGE_S
            if cam.health.max_distress is not None and fresh and cam.online:
                return {
                    "camera_id": camera_id,
                    "max_distress": cam.health.max_distress,
                    "at": cam.updated_at.isoformat(),
                }
        return None

    def _new_incident(
        self, source: SosSourceConfig, lat: float, lon: float, now: datetime, note: str | None
    ) -> NewIncident:
        route = self.router.route(lat, lon)
        camera_id, hotspot_id, place = "", "", source.name or ""
        best: float | None = None
        for cam in self.site.cameras:
            h = self.site.hotspot(cam.hotspot)
            d = haversine_m(lat, lon, h.lat, h.lon)
            if d <= self.cfg.camera_radius_m and (best is None or d < best):
                best, camera_id, hotspot_id = d, cam.id, h.id
                place = h.name or h.id
        if not place:
            place = f"{lat:.5f}, {lon:.5f}"
        context: dict[str, object] = {"sos_note": note} if note else {}
        reading = self._camera_reading(camera_id, now) if camera_id else None
        peak = 0.0
        if reading is not None:
            context["camera_reading"] = reading
            peak = float(str(reading["max_distress"]))
        return NewIncident(
            camera_id=camera_id,
            hotspot_id=hotspot_id,
            station_id=route.station_id,
            peak_distress=peak,
            expression_at_peak={},
            model_name="",
            model_sha256="",
            thresholds=context,
            route=route,
            source_id=f"sos:{source.id}",
            opened_at=now,
            lat=lat,
            lon=lon,
            place=place,
            origin=Origin.SOS,
            priority=Priority.HIGH,
        )

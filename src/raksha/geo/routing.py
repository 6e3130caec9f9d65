"""Route a hotspot to its police station and the nearest patrol units.

Station choice:
  1. "jurisdiction": the station whose jurisdiction polygon contains the point (own
     point-in-polygon, holes and MultiPolygons respected). Where polygons overlap, the
     nearest of the containing stations wins.
  2. "nearest": otherwise (no polygons configured, or the point lies in none of them), the
     nearest station of all by great-circle distance (haversine, one numpy pass over every
     station: a city has tens of stations and hundreds of units, microseconds of work, and a
     route is computed once per camera).

Patrol units: the `k` (3) nearest units overall by great-circle distance, whatever their
station (the fastest help is the closest unit; each carries its own station id). With
`units="station_first"` the routed station's own units come first, then the nearest others.

Build the router once per site; `route()` is then cheap (one distance pass and a few polygons).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from raksha.domain.routing import Route, UnitRoute
from raksha.errors import ConfigError
from raksha.geo.distance import haversine_many_m
from raksha.geo.polygons import Area, area_from_geojson

F64 = npt.NDArray[np.float64]

__all__ = ["Route", "Router", "UnitRoute"]


class StationLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def jurisdiction(self) -> Any: ...


class PatrolUnitLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def station(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


def _area_of(station: StationLike) -> Area | None:
    j = station.jurisdiction
    if j is None:
        return None
    if hasattr(j, "area") and callable(j.area):
        area = j.area()
        if isinstance(area, Area):
            return area
    if isinstance(j, str) or hasattr(j, "is_absolute"):
        raise ConfigError(
            f"station {station.id}: jurisdiction file {j} was not loaded "
            "(call raksha.site.load.load_site first)"
        )
    try:
        return area_from_geojson(j)
    except ValueError as exc:
        raise ConfigError(f"station {station.id}: jurisdiction: {exc}") from None


class Router:
    """Nearest station / jurisdiction and nearest patrol units for a point."""

    def __init__(
        self,
        stations: Sequence[StationLike],
        patrol_units: Sequence[PatrolUnitLike] = (),
        *,
        k_units: int = 3,
        units: Literal["nearest", "station_first"] = "nearest",
    ) -> None:
        if not stations:
            raise ConfigError("routing needs at least one police station")
        self._ids = [s.id for s in stations]
        self._names = [s.name for s in stations]
        self._lats = np.array([s.lat for s in stations], np.float64)
        self._lons = np.array([s.lon for s in stations], np.float64)
        self._areas: list[tuple[int, Area]] = []
        for i, s in enumerate(stations):
            area = _area_of(s)
            if area is not None:
                self._areas.append((i, area))
        self._units = list(patrol_units)
        self._unit_lats = np.array([u.lat for u in self._units], np.float64)
        self._unit_lons = np.array([u.lon for u in self._units], np.float64)
        self.k_units = k_units
        self.units_policy = units

    @classmethod
    def from_site(cls, site: Any, **kwargs: Any) -> Router:
        """From a `SiteConfig` (after `load_site`)."""
        return cls(site.stations, site.patrol_units, **kwargs)

    @property
    def uses_jurisdictions(self) -> bool:
        return bool(self._areas)

    def nearest_station(self, lat: float, lon: float) -> tuple[int, float]:
        """(index, distance in metres) of the nearest station by great-circle distance."""
        dists = haversine_many_m(lat, lon, self._lats, self._lons)
        best = int(np.argmin(dists))
        return best, float(dists[best])

    def nearest_station_excluding(
        self, lat: float, lon: float, exclude: frozenset[str]
    ) -> str | None:
        """The nearest station to the point other than those in `exclude` (None: none left)."""
        dists = haversine_many_m(lat, lon, self._lats, self._lons)
        for i in np.argsort(dists, kind="stable"):
            if self._ids[int(i)] not in exclude:
                return self._ids[int(i)]
        return None

    def _units_near(self, lat: float, lon: float, station_id: str) -> tuple[UnitRoute, ...]:
        if not self._units or self.k_units <= 0:
            return ()
        n = len(self._units)
        dists = haversine_many_m(lat, lon, self._unit_lats, self._unit_lons)
        if self.units_policy == "nearest":
            nearest = np.argsort(dists, kind="stable")[: self.k_units]
            order = [(int(i), float(dists[i])) for i in nearest]
        else:
            ranked = sorted(
                range(n), key=lambda i: (self._units[i].station != station_id, dists[i])
            )
            order = [(i, float(dists[i])) for i in ranked[: self.k_units]]
        return tuple(
            UnitRoute(self._units[i].id, self._units[i].kind, self._units[i].station, d)
            for i, d in order
        )

    def route(self, lat: float, lon: float) -> Route:
        method: Literal["jurisdiction", "nearest"]
        containing = [i for i, area in self._areas if area.contains(lat, lon)]
        if containing:
            dists = haversine_many_m(lat, lon, self._lats[containing], self._lons[containing])
            best = int(np.argmin(dists))
            idx, dist_m, method = containing[best], float(dists[best]), "jurisdiction"
        else:
            idx, dist_m = self.nearest_station(lat, lon)
            method = "nearest"
        station_id = self._ids[idx]
        return Route(
            station_id=station_id,
            station_name=self._names[idx],
            method=method,
            distance_m=dist_m,
            patrol_units=self._units_near(lat, lon, station_id),
        )

"""Where an incident is sent: its police station and the nearest patrol units (pure data;
`raksha.geo.routing.Router` computes it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple


class UnitRoute(NamedTuple):
    unit_id: str
    kind: str
    station_id: str
    distance_m: float


@dataclass(frozen=True, slots=True)
class Route:
    station_id: str
    method: Literal["jurisdiction", "nearest"]
    #: Great-circle distance from the point to the station, metres.
    distance_m: float
    #: Nearest patrol units first: (unit_id, kind, station_id, distance_m).
    patrol_units: tuple[UnitRoute, ...]
    station_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "station_name": self.station_name,
            "method": self.method,
            "distance_m": round(self.distance_m, 1),
            "patrol_units": [
                {
                    "id": u.unit_id,
                    "kind": u.kind,
                    "station_id": u.station_id,
                    "distance_m": round(u.distance_m, 1),
                }
                for u in self.patrol_units
            ],
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Route:
        """The route stored with an incident (`to_json`). Raises ValueError (naming the
        problem) on a document that is not one."""
        try:
            method = data["method"]
            if method not in ("jurisdiction", "nearest"):
                raise ValueError(f"unknown routing method {method!r}")
            return Route(
                station_id=str(data["station_id"]),
                station_name=str(data.get("station_name", "")),
                method=method,
                distance_m=float(data["distance_m"]),
                patrol_units=tuple(
                    UnitRoute(
                        str(u["id"]), str(u["kind"]), str(u["station_id"]), float(u["distance_m"])
                    )
                    for u in data.get("patrol_units", [])
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a route document: {type(exc).__name__} {exc}") from None

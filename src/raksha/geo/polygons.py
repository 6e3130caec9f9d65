"""Jurisdiction areas from GeoJSON (Polygon / MultiPolygon) and point-in-polygon tests.

Our own even-odd ray casting on (lon, lat) treated as a plane: exact enough for city-sized
areas away from the poles and the antimeridian (not handled). Holes are respected; a point on
an edge may fall on either side. GeoJSON positions are [longitude, latitude(, altitude)].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def _ring_contains(ring: F64, lon: float, lat: float) -> bool:
    """Even-odd rule for a closed ring of shape (n, 2), columns lon, lat."""
    x1, y1 = ring[:-1, 0], ring[:-1, 1]
    x2, y2 = ring[1:, 0], ring[1:, 1]
    crosses = (y1 > lat) != (y2 > lat)
    if not crosses.any():
        return False
    x1c, y1c, x2c, y2c = x1[crosses], y1[crosses], x2[crosses], y2[crosses]
    x_at = x1c + (lat - y1c) * (x2c - x1c) / (y2c - y1c)
    return int(np.count_nonzero(lon < x_at)) % 2 == 1


@dataclass(frozen=True, slots=True)
class Polygon:
    """One polygon: an exterior ring and its holes, each closed, (n, 2) lon/lat."""

    exterior: F64
    holes: tuple[F64, ...] = ()

    def contains(self, lat: float, lon: float) -> bool:
        ext = self.exterior
        if not (ext[:, 0].min() <= lon <= ext[:, 0].max()):
            return False
        if not (ext[:, 1].min() <= lat <= ext[:, 1].max()):
            return False
        if not _ring_contains(ext, lon, lat):
            return False
        return not any(_ring_contains(h, lon, lat) for h in self.holes)


@dataclass(frozen=True, slots=True)
class Area:
    """A jurisdiction: one or more polygons (a GeoJSON MultiPolygon)."""

    polygons: tuple[Polygon, ...]

    def contains(self, lat: float, lon: float) -> bool:
        return any(p.contains(lat, lon) for p in self.polygons)


def _ring(positions: Sequence[Sequence[float]], where: str) -> F64:
    """Validate one linear ring and return it closed as (n, 2) lon/lat."""
    if isinstance(positions, str | bytes) or not isinstance(positions, Sequence):
        raise ValueError(f"{where} must be a list of [longitude, latitude] positions")
    pts: list[tuple[float, float]] = []
    for i, pos in enumerate(positions):
        if (
            isinstance(pos, str | bytes)
            or not isinstance(pos, Sequence)
            or len(pos) not in (2, 3)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos)
        ):
            raise ValueError(f"{where} position {i} must be [longitude, latitude], got {pos!r}")
        lon, lat = float(pos[0]), float(pos[1])
        if not (np.isfinite(lon) and -180.0 <= lon <= 180.0):
            raise ValueError(f"{where} position {i}: longitude {lon} is outside -180..180")
        if not (np.isfinite(lat) and -90.0 <= lat <= 90.0):
            raise ValueError(
                f"{where} position {i}: latitude {lat} is outside -90..90 "
                "(GeoJSON positions are [longitude, latitude])"
            )
        pts.append((lon, lat))
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])  # accept an unclosed ring and close it
    if len(set(pts)) < 3:
        raise ValueError(f"{where} needs at least 3 distinct positions, got {len(set(pts))}")
    arr = np.asarray(pts, dtype=np.float64)
    x, y = arr[:, 0] - arr[0, 0], arr[:, 1] - arr[0, 1]
    twice_area = abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])))
    extent = max(float(np.ptp(x)), float(np.ptp(y)))
    if twice_area <= 1e-12 * extent * extent:
        raise ValueError(f"{where} encloses no area")
    return arr


def _polygon(rings: Any, where: str) -> Polygon:
    if isinstance(rings, str | bytes) or not isinstance(rings, Sequence) or len(rings) == 0:
        raise ValueError(f"{where} must be a non-empty list of rings (exterior first, then holes)")
    exterior = _ring(rings[0], f"{where} exterior ring")
    holes = tuple(_ring(r, f"{where} hole {i}") for i, r in enumerate(rings[1:], start=1))
    return Polygon(exterior=exterior, holes=holes)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def normalize_geojson(obj: Any) -> dict[str, Any]:
    """A GeoJSON Polygon or MultiPolygon as a plain dict.

    Also accepts a Feature whose geometry is one, and a FeatureCollection or
    GeometryCollection of them (merged into one MultiPolygon). Raises ValueError otherwise.
    """
    kind = _get(obj, "type")
    if kind in ("Polygon", "MultiPolygon"):
        coords = _get(obj, "coordinates")
        if coords is None:
            raise ValueError(f"GeoJSON {kind} has no 'coordinates'")
        return {"type": kind, "coordinates": coords}
    if kind == "Feature":
        geometry = _get(obj, "geometry")
        if geometry is None:
            raise ValueError("GeoJSON Feature has no geometry")
        return normalize_geojson(geometry)
    if kind in ("FeatureCollection", "GeometryCollection"):
        members = _get(obj, "features" if kind == "FeatureCollection" else "geometries")
        if not isinstance(members, Sequence) or isinstance(members, str) or not members:
            raise ValueError(f"GeoJSON {kind} is empty")
        polys: list[Any] = []
        for m in members:
            g = normalize_geojson(m)
            if g["type"] == "Polygon":
                polys.append(g["coordinates"])
            else:
                polys.extend(g["coordinates"])
        return {"type": "MultiPolygon", "coordinates": polys}
    raise ValueError(
        "a jurisdiction must be a GeoJSON Polygon or MultiPolygon (or a Feature of one), "
        f"got type {kind!r}"
    )


def area_from_geojson(obj: Any) -> Area:
    """Parse and check a GeoJSON polygon-like object; ValueError names what is wrong."""
    geo = normalize_geojson(obj)
    coords = geo["coordinates"]
    if geo["type"] == "Polygon":
        return Area(polygons=(_polygon(coords, "polygon"),))
    if isinstance(coords, str | bytes) or not isinstance(coords, Sequence) or len(coords) == 0:
        raise ValueError("MultiPolygon coordinates must be a non-empty list of polygons")
    return Area(polygons=tuple(_polygon(p, f"polygon {i}") for i, p in enumerate(coords)))

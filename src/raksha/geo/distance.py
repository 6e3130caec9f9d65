"""Great-circle (haversine) distances on a spherical Earth.

The router (raksha.geo.routing) measures every distance with these functions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8

F64 = npt.NDArray[np.float64]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    return float(haversine_many_m(lat1, lon1, np.array([lat2]), np.array([lon2]))[0])


def haversine_many_m(lat: float, lon: float, lats: F64, lons: F64) -> F64:
    """Distances in metres from one point to many (all in degrees)."""
    p1 = np.radians(lat)
    p2 = np.radians(np.asarray(lats, dtype=np.float64))
    dp = p2 - p1
    dl = np.radians(np.asarray(lons, dtype=np.float64)) - np.radians(lon)
    h = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    h = np.clip(h, 0.0, 1.0)
    out: F64 = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))
    return out

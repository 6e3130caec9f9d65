"""Routing: great-circle distances, jurisdiction polygons (holes, MultiPolygons), BallTree."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raksha.demo_site import demo_site_config
from raksha.errors import ConfigError
from raksha.geo.distance import EARTH_RADIUS_M, haversine_m, haversine_many_m
from raksha.geo.polygons import area_from_geojson
from raksha.geo.routing import Route, Router, UnitRoute
from raksha.site.config import SiteConfig


def site(stations: list[dict[str, Any]], units: list[dict[str, Any]] | None = None) -> SiteConfig:
    return SiteConfig.model_validate({"stations": stations, "patrol_units": units or []})


def square(lon0: float, lat0: float, lon1: float, lat1: float) -> list[list[float]]:
    return [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]


# Three stations in a row across Lucknow, about 4-5 km apart.
A = {"id": "a", "name": "Alambagh", "lat": 26.816, "lon": 80.905}
B = {"id": "b", "name": "Hazratganj", "lat": 26.850, "lon": 80.944}
C = {"id": "c", "name": "Gomti Nagar", "lat": 26.856, "lon": 80.996}


def test_haversine_known_values() -> None:
    quarter = math.pi * EARTH_RADIUS_M / 2
    assert haversine_m(0, 0, 0, 90) == pytest.approx(quarter, rel=1e-12)
    assert haversine_m(0, 0, 90, 0) == pytest.approx(quarter, rel=1e-12)
    assert haversine_m(26.85, 80.94, 27.85, 80.94) == pytest.approx(111_195.08, abs=0.1)
    assert haversine_m(10, 179.9, 10, -179.9) == pytest.approx(haversine_m(10, 0, 10, 0.2))
    assert haversine_m(0, 0, 0, 180) == pytest.approx(2 * quarter)
    d = haversine_many_m(26.85, 80.94, np.array([26.85, 26.86]), np.array([80.94, 80.94]))
    assert d[0] == 0.0 and d[1] == pytest.approx(1111.95, abs=0.01)


def test_hotspot_next_to_one_of_three_stations_goes_there() -> None:
    router = Router.from_site(site([A, B, C]))
    for station in (A, B, C):
        r = router.route(station["lat"] + 0.001, station["lon"] - 0.001)
        assert r.station_id == station["id"] and r.method == "nearest"
        assert r.station_name == station["name"]
        assert r.distance_m == pytest.approx(
            haversine_m(
                station["lat"] + 0.001, station["lon"] - 0.001, station["lat"], station["lon"]
            ),
            abs=1e-3,
        )
        assert 100 < r.distance_m < 200
    assert not router.uses_jurisdictions


def test_point_in_jurisdiction_goes_to_that_station_even_if_another_is_nearer() -> None:
    # A's jurisdiction is a long strip that reaches right past B's door.
    a = dict(
        A, jurisdiction={"type": "Polygon", "coordinates": [square(80.90, 26.80, 80.95, 26.853)]}
    )
    router = Router.from_site(site([a, B, C]))
    lat, lon = 26.852, 80.945  # ~230 m from B, ~5 km from A
    assert haversine_m(lat, lon, B["lat"], B["lon"]) < haversine_m(lat, lon, A["lat"], A["lon"])
    r = router.route(lat, lon)
    assert (r.station_id, r.method) == ("a", "jurisdiction")
    assert r.distance_m == pytest.approx(haversine_m(lat, lon, A["lat"], A["lon"]), abs=1e-3)
    # Outside every polygon: the nearest station.
    r = router.route(26.857, 80.994)
    assert (r.station_id, r.method) == ("c", "nearest")


def test_hole_excludes_and_multipolygon_includes() -> None:
    outer = square(80.90, 26.80, 80.96, 26.86)
    hole = square(80.94, 26.84, 80.95, 26.85)
    a = dict(A, jurisdiction={"type": "Polygon", "coordinates": [outer, hole]})
    # C's jurisdiction: its own square far east plus an island inside A's hole.
    c = dict(
        C,
        jurisdiction={
            "type": "MultiPolygon",
            "coordinates": [
                [square(80.98, 26.85, 81.01, 26.87)],
                [square(80.943, 26.843, 80.947, 26.847)],
            ],
        },
    )
    router = Router.from_site(site([a, B, c]))
    assert router.route(26.82, 80.91).station_id == "a"  # plain inside A
    r = router.route(26.8485, 80.9485)  # in A's hole, not in C's island: nearest = B
    assert (r.station_id, r.method) == ("b", "nearest")
    r = router.route(26.845, 80.945)  # in A's hole and C's island
    assert (r.station_id, r.method) == ("c", "jurisdiction")
    r = router.route(26.86, 81.0)  # C's main part
    assert (r.station_id, r.method) == ("c", "jurisdiction")


def test_overlapping_jurisdictions_pick_the_nearest_containing_station() -> None:
    big = {"type": "Polygon", "coordinates": [square(80.8, 26.7, 81.1, 26.95)]}
    router = Router.from_site(site([dict(A, jurisdiction=big), dict(B, jurisdiction=big), C]))
    r = router.route(C["lat"], C["lon"])  # at C, but only A and B claim the point
    assert (r.station_id, r.method) == ("b", "jurisdiction")


def test_concave_polygon_notch_is_outside() -> None:
    u_shape = [[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]
    area = area_from_geojson({"type": "Polygon", "coordinates": [u_shape]})
    assert area.contains(0.5, 0.5) and area.contains(2.5, 2.5) and area.contains(2.5, 0.5)
    assert not area.contains(2.0, 1.5)  # inside the notch (lat=2, lon=1.5)
    assert not area.contains(-0.1, 1.0) and not area.contains(1.0, 3.5)


def test_unloaded_jurisdiction_file_is_refused() -> None:
    s = site([dict(A, jurisdiction="a.geojson"), B])
    assert s.stations[0].jurisdiction == Path("a.geojson")
    with pytest.raises(ConfigError, match="not loaded"):
        Router.from_site(s)
    with pytest.raises(ConfigError, match="at least one police station"):
        Router([], [])


UNITS = [
    {"id": "u-far", "kind": "car", "station": "c", "lat": 26.856, "lon": 80.990},
    {"id": "u-near", "kind": "scooter", "station": "a", "lat": 26.8505, "lon": 80.9445},
    {"id": "u-mid", "kind": "pink_booth", "station": "b", "lat": 26.845, "lon": 80.944},
    {"id": "u-mid2", "kind": "foot", "station": "b", "lat": 26.840, "lon": 80.944},
]


def test_patrol_units_three_nearest_in_order_with_distances() -> None:
    router = Router.from_site(site([A, B, C], UNITS))
    r = router.route(B["lat"], B["lon"])
    assert [u.unit_id for u in r.patrol_units] == ["u-near", "u-mid", "u-mid2"]
    dists = [u.distance_m for u in r.patrol_units]
    assert dists == sorted(dists)
    for u in r.patrol_units:
        src = next(x for x in UNITS if x["id"] == u.unit_id)
        assert u.distance_m == pytest.approx(
            haversine_m(B["lat"], B["lon"], src["lat"], src["lon"]), abs=1e-3
        )
        assert (u.kind, u.station_id) == (src["kind"], src["station"])
    # station_first: B's own units lead even though u-near (of A) is nearer.
    sf = Router.from_site(site([A, B, C], UNITS), units="station_first").route(B["lat"], B["lon"])
    assert [u.unit_id for u in sf.patrol_units] == ["u-mid", "u-mid2", "u-near"]
    # Fewer units than k, and none at all.
    assert len(Router.from_site(site([A, B, C], UNITS[:2])).route(26.85, 80.94).patrol_units) == 2
    assert Router.from_site(site([A, B, C])).route(26.85, 80.94).patrol_units == ()


def test_route_json_round_trip() -> None:
    r = Router.from_site(site([A, B, C], UNITS)).route(26.851, 80.945)
    data = r.to_json()
    assert data["station_id"] == "b" and data["method"] == "nearest"
    assert [set(u) for u in data["patrol_units"]] == [
        {"id", "kind", "station_id", "distance_m"}
    ] * 3
    back = Route.from_json(data)
    assert back.station_id == r.station_id and back.patrol_units[0].unit_id == "u-near"
    assert isinstance(back.patrol_units[0], UnitRoute)
    assert back.distance_m == pytest.approx(r.distance_m, abs=0.05)


def test_demo_site_routes_charbagh_to_the_railway_station() -> None:
    s = SiteConfig.model_validate(demo_site_config([]))
    router = Router.from_site(s)
    hs = s.hotspot("charbagh-station")
    r = router.route(hs.lat, hs.lon)
    assert r.station_id == "charbagh-grp" and len(r.patrol_units) == 3
    assert r.patrol_units[0].unit_id == "pink-booth-charbagh"


coords = st.tuples(
    st.floats(min_value=-89.0, max_value=89.0, allow_nan=False),
    st.floats(min_value=-180.0, max_value=180.0, allow_nan=False),
)
city = st.tuples(
    st.floats(min_value=26.7, max_value=27.0, allow_nan=False),
    st.floats(min_value=80.8, max_value=81.1, allow_nan=False),
)


def _check_nearest(points: list[tuple[float, float]], query: tuple[float, float]) -> None:
    stations = [{"id": f"s{i}", "lat": la, "lon": lo} for i, (la, lo) in enumerate(points)]
    r = Router.from_site(site(stations)).route(*query)
    assert r.method == "nearest"
    brute = haversine_many_m(
        query[0], query[1], np.array([p[0] for p in points]), np.array([p[1] for p in points])
    )
    chosen = brute[int(r.station_id[1:])]
    # No other station is nearer than the chosen one (up to float rounding).
    assert chosen <= brute.min() + 1e-6 * max(1.0, brute.min())
    assert r.distance_m == pytest.approx(chosen, rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(coords, min_size=1, max_size=25), coords)
def test_property_nearest_station_worldwide(
    points: list[tuple[float, float]], query: tuple[float, float]
) -> None:
    _check_nearest(points, query)


@settings(max_examples=60, deadline=None)
@given(st.lists(city, min_size=1, max_size=25), city)
def test_property_nearest_station_in_one_city(
    points: list[tuple[float, float]], query: tuple[float, float]
) -> None:
    _check_nearest(points, query)


@settings(max_examples=40, deadline=None)
@given(st.lists(city, min_size=1, max_size=12), city)
def test_property_patrol_units_are_the_k_nearest(
    points: list[tuple[float, float]], query: tuple[float, float]
) -> None:
    units = [
        {"id": f"u{i}", "kind": "scooter", "station": "b", "lat": la, "lon": lo}
        for i, (la, lo) in enumerate(points)
    ]
    r = Router.from_site(site([A, B, C], units)).route(*query)
    brute = np.sort(
        haversine_many_m(
            query[0], query[1], np.array([p[0] for p in points]), np.array([p[1] for p in points])
        )
    )
    got = [u.distance_m for u in r.patrol_units]
    assert len(got) == min(3, len(points))
    np.testing.assert_allclose(got, brute[: len(got)], rtol=1e-9, atol=1e-6)

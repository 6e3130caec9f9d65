"""A demo city: real Lucknow police stations, public hotspots and pink patrol units.

Coordinates are APPROXIMATE (rounded to about 3 decimals, i.e. within roughly 100–300 m),
from general public knowledge of where these places are; they are good enough to show routing
but are not survey data and not official jurisdiction boundaries, so the demo routes by
great-circle distance (no polygons). Patrol units and their positions are invented for the
demo (Lucknow does run "Pink Patrol" scooters/cars and pink booths, but not these ones).

    cfg = demo_site_config(["file:///…/clip1.mp4", "file:///…/clip2.mp4"])
    Path("demo.yaml").write_text(demo_site_yaml(["file:///…/clip1.mp4"]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

#: (id, name, lat, lon): police stations (thanas) of Lucknow, approximate positions.
STATIONS: tuple[tuple[str, str, float, float], ...] = (
    ("hazratganj", "Hazratganj Police Station", 26.850, 80.944),
    ("gomti-nagar", "Gomti Nagar Police Station", 26.856, 80.996),
    ("aliganj", "Aliganj Police Station", 26.890, 80.941),
    ("chowk", "Chowk Police Station", 26.869, 80.907),
    ("charbagh-grp", "GRP Charbagh (Railway Police Station)", 26.832, 80.920),
    ("aminabad", "Aminabad Police Station", 26.845, 80.925),
    ("mahanagar", "Mahanagar Police Station", 26.877, 80.960),
    ("alambagh", "Alambagh Police Station", 26.816, 80.905),
)

#: (id, name, lat, lon): busy public places where cameras watch, approximate positions.
HOTSPOTS: tuple[tuple[str, str, float, float], ...] = (
    ("hazratganj-market", "Hazratganj Market", 26.847, 80.946),
    ("charbagh-station", "Charbagh Railway Station", 26.832, 80.919),
    ("aminabad-market", "Aminabad Market", 26.846, 80.927),
    ("lu-gate", "Lucknow University Main Gate", 26.866, 80.937),
    ("badshah-nagar-metro", "Badshah Nagar Metro Station", 26.871, 80.961),
    ("alambagh-bus-station", "Alambagh Bus Station", 26.815, 80.903),
    ("ambedkar-park", "Ambedkar Memorial Park, Gomti Nagar", 26.848, 80.979),
    ("bada-imambara", "Bara Imambara, Chowk", 26.869, 80.913),
    ("kapoorthala", "Kapoorthala Market, Aliganj", 26.887, 80.944),
)

#: (id, kind, station, lat, lon): demo pink patrol units (invented ids and positions).
PATROL_UNITS: tuple[tuple[str, str, str, float, float], ...] = (
    ("pink-scooter-01", "scooter", "hazratganj", 26.848, 80.943),
    ("pink-booth-hazratganj", "pink_booth", "hazratganj", 26.847, 80.947),
    ("pink-car-01", "car", "hazratganj", 26.852, 80.950),
    ("pink-scooter-02", "scooter", "gomti-nagar", 26.852, 80.985),
    ("pink-car-02", "car", "gomti-nagar", 26.858, 80.999),
    ("pink-scooter-03", "scooter", "aliganj", 26.886, 80.942),
    ("pink-scooter-04", "scooter", "chowk", 26.868, 80.911),
    ("pink-booth-charbagh", "pink_booth", "charbagh-grp", 26.831, 80.918),
    ("pink-scooter-05", "scooter", "aminabad", 26.846, 80.928),
    ("pink-scooter-06", "scooter", "mahanagar", 26.873, 80.960),
    ("pink-car-03", "car", "alambagh", 26.815, 80.906),
    ("pink-booth-lu", "pink_booth", "aliganj", 26.867, 80.938),
)


def demo_site_config(
    camera_urls: Sequence[str] | Mapping[str, str],
    *,
    fps: float = 5.0,
    storage_url: str = "sqlite:///raksha-demo.db",
    evidence_dir: str = "demo-evidence",
    evidence_key_file: str | None = None,
    signing_key_file: str | None = None,
) -> dict[str, Any]:
    """The demo site as a plain dict (validates as `SiteConfig`).

    `camera_urls`: a list of URLs (camera `cam-1`, `cam-2`, … placed at the hotspots in the
    order of `HOTSPOTS`, wrapping around), or a mapping hotspot id -> URL. Evidence is
    encrypted (the default) with the keys of `evidence_key_file`, else of
    $RAKSHA_EVIDENCE_KEY.
    """
    hotspot_ids = [h[0] for h in HOTSPOTS]
    if isinstance(camera_urls, Mapping):
        unknown = sorted(set(camera_urls) - set(hotspot_ids))
        if unknown:
            raise ValueError(f"unknown demo hotspot(s): {', '.join(unknown)}")
        placed = list(camera_urls.items())
    else:
        placed = [(hotspot_ids[i % len(hotspot_ids)], url) for i, url in enumerate(camera_urls)]
    return {
        "stations": [{"id": i, "name": n, "lat": la, "lon": lo} for i, n, la, lo in STATIONS],
        "patrol_units": [
            {"id": i, "kind": k, "station": s, "lat": la, "lon": lo}
            for i, k, s, la, lo in PATROL_UNITS
        ],
        "hotspots": [{"id": i, "name": n, "lat": la, "lon": lo} for i, n, la, lo in HOTSPOTS],
        "cameras": [
            {"id": f"cam-{n}", "hotspot": hotspot, "url": url, "fps": fps, "enabled": True}
            for n, (hotspot, url) in enumerate(placed, start=1)
        ],
        "storage": {"url": storage_url},
        "evidence": {"dir": evidence_dir}
        | ({"key_file": evidence_key_file} if evidence_key_file else {})
        | ({"signing_key_file": signing_key_file} if signing_key_file else {}),
        "timezone": "Asia/Kolkata",
    }


def demo_site_yaml(
    camera_urls: Sequence[str] | Mapping[str, str],
    *,
    analysis: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> str:
    """The demo site as YAML text (see `demo_site_config`), with `analysis` sections (e.g.
    `{"source": {...}}`) added at the top level: one file for `raksha run`."""
    header = (
        "# Raksha demo site: Lucknow. Coordinates are approximate (about 3 decimals);\n"
        "# patrol units are invented for the demo.\n"
    )
    doc = {**demo_site_config(camera_urls, **kwargs), **(analysis or {})}
    body: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return header + body

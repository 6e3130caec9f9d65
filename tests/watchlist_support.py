"""Helpers for the watchlist tests: a site config with a `watchlist:` section, a passing
(synthetic) measurement, and photo variants made on the fly (never copied into the repo)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

IDS = "deepface-identities"
NOW = datetime.now(UTC)


def eval_json(
    path: Path,
    *,
    unknown: int = 5000,
    fmr_at: dict[float, float] | None = None,
    gallery_size: int | None = 1000,
    model_sha256: str | None = None,
) -> Path:
    """A `raksha eval watchlist --json`-shaped result: `unknown` unknown searches and the
    FMR per swept threshold (0 everywhere by default), measured against `gallery_size`
    people (None: not said) with the model of `model_sha256` (None: not named)."""
    rates = fmr_at or {}
    sweep = [
        {"threshold": t, "tmr": 0.9, "misidentification": 0.0, "fmr": rates.get(t, 0.0)}
        for t in (0.2, 0.3, 0.4, 0.45, 0.5, 0.6)
    ]
    doc: dict[str, Any] = {"watchlist": {"unknown_probes": unknown, "sweep": sweep}}
    if gallery_size is not None:
        doc["watchlist"]["gallery_size"] = gallery_size
    if model_sha256 is not None:
        doc["meta"] = {"embedding_model": {"name": "mobileface-v2", "sha256": model_sha256}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def authorisation(
    cameras: list[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    max_list_size: int = 10,
    auth_id: str = "auth-1",
) -> dict[str, Any]:
    return {
        "id": auth_id,
        "authorised_by": "DCP Central, Lucknow",
        "legal_basis": "order 17/2026 under the test act",
        "purpose": "find people wanted on warrants at Charbagh",
        "cameras": cameras,
        "start": (start or NOW - timedelta(hours=1)).isoformat(),
        "end": (end or NOW + timedelta(hours=6)).isoformat(),
        "max_list_size": max_list_size,
    }


def site_doc(tmp: Path, **watchlist: Any) -> dict[str, Any]:
    wl: dict[str, Any] = {
        "authorisations": [authorisation(["cam-a"])],
        "threshold": 0.45,
        "votes": {"k": 2, "n": 3},
        "fmr_ceiling": 0.001,
        "eval_json": str(eval_json(tmp / "wl-eval.json")),
    }
    wl.update(watchlist)
    return {
        "stations": [{"id": "charbagh", "lat": 26.83, "lon": 80.92}],
        "hotspots": [{"id": "bus-stand", "lat": 26.831, "lon": 80.921}],
        "cameras": [
            {"id": "cam-a", "hotspot": "bus-stand", "url": "file:///dev/null"},
            {"id": "cam-b", "hotspot": "bus-stand", "url": "file:///dev/null"},
        ],
        "storage": {"url": f"sqlite:///{tmp / 'raksha.db'}"},
        "evidence": {"dir": str(tmp / "evidence")},
        "watchlist": wl,
    }


def write_site(tmp: Path, doc: dict[str, Any]) -> Path:
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def identity_photos(data_dir: Path) -> dict[str, list[Path]]:
    """identity -> its photos, in the order of identities.csv."""
    folder = data_dir / IDS
    out: dict[str, list[Path]] = {}
    for line in (folder / "identities.csv").read_text(encoding="utf-8").splitlines()[1:]:
        file, ident = line.strip().split(",")
        out.setdefault(ident, []).append(folder / file)
    return out


def variant(src: Path, dst: Path, *, blur: int = 0, scale: float = 1.0) -> Path:
    """A blurred and/or shrunk copy of a photo, written under a temporary folder."""
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    assert img is not None
    if scale != 1.0:
        h, w = img.shape[:2]
        img = cv2.resize(img, (max(8, int(w * scale)), max(8, int(h * scale))))
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    cv2.imwrite(str(dst), np.ascontiguousarray(img))
    return dst


def side_by_side(a: Path, b: Path, dst: Path, height: int = 480) -> Path:
    """Two photos joined side by side at one height: two faces of about the same size."""
    parts = []
    for src in (a, b):
        img = cv2.imread(str(src), cv2.IMREAD_COLOR)
        assert img is not None
        h, w = img.shape[:2]
        parts.append(cv2.resize(img, (round(w * height / h), height)))
    cv2.imwrite(str(dst), np.hstack(parts))
    return dst


def still_clip(photo: Path, dst: Path, *, seconds: float = 3.0, fps: int = 5) -> Path:
    """An mp4 of `photo` standing still in a 640x480 frame (with a little sensor noise, so
    that frames differ), made with PyAV."""
    import av

    img = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    assert img is not None
    h, w = img.shape[:2]
    scale = min(640 / w, 480 / h)
    small = cv2.resize(img, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2))
    canvas = np.full((480, 640, 3), 96, np.uint8)
    y0, x0 = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    rng = np.random.default_rng(0)
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for _ in range(round(seconds * fps)):
            noise = rng.integers(-2, 3, canvas.shape, dtype=np.int16)
            frame = np.clip(canvas.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst

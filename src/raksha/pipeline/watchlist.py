"""Face watchlist matching on the cameras of an open authorisation window (docs/watchlist.md).

    shared = WatchlistShared(cfg.watchlist, engine, embedder, load_gallery, encrypt, on_closed)
    matcher = shared.matcher("cam-1", "hazratganj")   # one per camera, given to FrameAnalyzer
    matcher.observe(located, sharpness)                # after each frame is scored

Per camera and track, the sharpest face (variance of the Laplacian, the analyzer's own
reading) is held for `embed_every_s` seconds of stream time, then aligned, embedded and
searched 1:N; `TrackVote` declares a match when K of the track's last N embedded faces agree
on one person. A declared match opens one `watchlist_alerts` row per track and person, with
an encrypted small thumbnail of the face that matched, audited as `watchlist.match`; never an
incident, an alert in the outbox or a dispatch.

What is kept: nothing of a face that matches nobody. The probe embedding is a local of
`_embed`, dropped when it returns; the held crop is dropped once embedded; `TrackVote` keeps
identity names and scores only. The authorisation window is checked at most once a second
by the wall clock: outside it nothing is embedded and held state is dropped. When the last
window closes, `on_closed` runs (the service deletes the list with
`delete_list_when_closed`).

The gallery: every `RELOAD_S`, `maintain` runs (the service expires entries past their
review date and applies the alerts' retention); before every search `version` is read (a
count query) and the cached gallery is dropped when it changed, so that a person removed,
expired or purged stops matching at the next face, not at the next reload. Faces without a
track (id < 0) are not embedded: they cannot be voted on. A track not seen for `FORGET_S`
seconds of stream time is forgotten (its votes and alerted persons), and at most
`MAX_ALERTED` (track, person) pairs are remembered, so memory stays bounded on a busy camera.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from raksha.audit.log import AuditLog
from raksha.pipeline.analyzer import Located
from raksha.site.config import WatchlistConfig, active_cameras
from raksha.store import watchlist as rows
from raksha.store._db import db_errors
from raksha.watchlist.align import align_face
from raksha.watchlist.matcher import Gallery, TrackVote

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]

#: Faces narrower than this (px) are not embedded: too small to say anything.
MIN_FACE_PX = 40.0
#: Seconds between two reloads of the enrolled templates (enrolments during a run count).
RELOAD_S = 30.0
#: Seconds of stream time after which an unseen track's votes are forgotten.
FORGET_S = 60.0
#: The most (track, person) pairs remembered as alerted per camera.
MAX_ALERTED = 4096
THUMB_SIDE = 64


def _thumbnail(crop: U8) -> bytes:
    import cv2

    small = cv2.resize(crop, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("cannot encode a probe thumbnail")
    return bytes(buf.tobytes())


class WatchlistShared:
    """What every camera's matcher shares: the config, the embedder, the gallery (reloaded
    every `RELOAD_S`), the window check and the store."""

    def __init__(
        self,
        cfg: WatchlistConfig,
        engine: Engine,
        embedder: Any,
        load_gallery: Callable[[], Gallery],
        encrypt: Callable[[bytes], bytes],
        *,
        on_closed: Callable[[], object] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        version: Callable[[], object] | None = None,
        maintain: Callable[[], object] | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.embedder = embedder
        self._load_gallery = load_gallery
        self._version = version
        self._maintain = maintain
        self._gallery_version: object = None
        self._encrypt = encrypt
        self._on_closed = on_closed
        self.clock = clock
        self.audit = AuditLog(engine)
        self._lock = threading.Lock()
        self._gallery: Gallery | None = None
        self._loaded_at = -1e18
        self._checked_at = -1e18
        #: Seconds between two looks at the authorisation windows.
        self.check_every_s = 1.0
        self._active: frozenset[str] = frozenset()
        self._was_open: bool | None = None

    def active(self, camera_id: str) -> bool:
        """Whether `camera_id` is in an open window now (re-read at most once a second)."""
        mono = time.monotonic()
        closed_now = False
        with self._lock:
            if mono - self._checked_at >= self.check_every_s:
                self._checked_at = mono
                self._active = active_cameras(self.cfg, self.clock())
                is_open = bool(self._active)
                closed_now = self._was_open is True and not is_open
                self._was_open = is_open
                if not is_open:
                    self._gallery = None  # nothing decrypted is kept outside a window
            found = camera_id in self._active
        if closed_now and self._on_closed is not None:
            try:
                self._on_closed()
            except Exception:
                log.exception("watchlist: closing the list failed")
        return found

    def gallery(self) -> Gallery:
        """The gallery to search now: reloaded every `RELOAD_S` (after `maintain`) and
        whenever `version` changed."""
        mono = time.monotonic()
        with self._lock:
            stale = self._gallery is None or mono - self._loaded_at >= RELOAD_S
            if stale and self._maintain is not None:
                try:
                    self._maintain()
                except Exception:
                    log.exception("watchlist: expiring entries failed")
            if self._version is not None:
                now_version = self._version()
                stale = stale or now_version != self._gallery_version
                self._gallery_version = now_version
            if stale or self._gallery is None:
                self._gallery = self._load_gallery()
                self._loaded_at = mono
            return self._gallery

    def matcher(self, camera_id: str, station_id: str) -> WatchlistMatcher:
        return WatchlistMatcher(self, camera_id, station_id)

    def open_alert(
        self, camera_id: str, station_id: str, person_id: str, score: float, crop: U8
    ) -> str:
        alert = rows.WatchlistAlert(
            id=str(uuid.uuid4()),
            person_id=person_id,
            camera_id=camera_id,
            station_id=station_id,
            opened_at=self.clock(),
            score=round(float(score), 4),
            probe_thumbnail_enc=self._encrypt(_thumbnail(crop)),
        )
        with db_errors("cannot store a watchlist alert"), self.engine.begin() as c:
            rows.insert_alert(c, alert)
            self.audit.append_in(
                c,
                "system",
                "watchlist.match",
                target=f"watchlist_alert:{alert.id}",
                station_id=station_id,
                details={"person": person_id, "camera": camera_id, "score": alert.score},
                at=alert.opened_at,
            )
        return alert.id


@dataclass(slots=True)
class _Held:
    """A track's sharpest face since its last embedding."""

    since_t: float
    last_seen_t: float
    sharpness: float = -1.0
    crop: U8 | None = None


class WatchlistMatcher:
    """One camera's matching: per track, held faces, votes and the alerts raised."""

    def __init__(self, shared: WatchlistShared, camera_id: str, station_id: str) -> None:
        self.shared = shared
        self.camera_id = camera_id
        self.station_id = station_id
        votes = shared.cfg.votes
        self._votes = TrackVote(votes.k, votes.n)
        self._held: dict[int, _Held] = {}
        #: (track, person) pairs already alerted, so a track raises one alert per person.
        self._alerted: dict[tuple[int, str], None] = {}
        #: Track -> stream time it was last seen (for forgetting its votes).
        self._seen: dict[int, float] = {}
        self.embedded = 0
        self.alerts: list[str] = []

    def reset(self) -> None:
        """Drop every held face and vote (the window closed)."""
        votes = self.shared.cfg.votes
        self._held.clear()
        self._seen.clear()
        self._votes = TrackVote(votes.k, votes.n)

    def observe(self, located: Located, sharpness: npt.ArrayLike) -> None:
        if not self.shared.active(self.camera_id):
            if self._held:
                self.reset()
            return
        faces, ids, image, t = (
            located.faces,
            located.track_ids,
            located.frame.image,
            located.frame.t,
        )
        sharp = np.asarray(sharpness, np.float64).reshape(-1)
        every = self.shared.cfg.embed_every_s
        for i in range(len(faces)):
            track = int(ids[i])
            if track < 0:
                continue  # untracked: its faces would be pooled with other people's
            self._seen[track] = t
            held = self._held.setdefault(track, _Held(since_t=t, last_seen_t=t))
            held.last_seen_t = t
            width = float(faces.boxes[i, 2] - faces.boxes[i, 0])
            s = float(sharp[i]) if i < len(sharp) else 0.0
            if width >= MIN_FACE_PX and s > held.sharpness:
                held.crop = align_face(image, faces.landmarks[i])
                held.sharpness = s
            if t - held.since_t >= every and held.crop is not None:
                crop, held.crop, held.sharpness, held.since_t = held.crop, None, -1.0, t
                self._embed(track, crop)
        for track, held in list(self._held.items()):
            if t - held.last_seen_t > 2 * every:
                del self._held[track]  # the track left: its held face goes with it
        for track, seen in list(self._seen.items()):
            if t - seen > FORGET_S:
                self._forget(track)

    def _forget(self, track: int) -> None:
        self._seen.pop(track, None)
        self._votes.forget(track)
        for key in [k for k in self._alerted if k[0] == track]:
            del self._alerted[key]

    def finish(self) -> None:
        """The stream ended: held faces are embedded once more, then dropped."""
        if self.shared.active(self.camera_id):
            for track, held in list(self._held.items()):
                if held.crop is not None:
                    self._embed(track, held.crop)
        self._held.clear()

    def _embed(self, track: int, crop: U8) -> None:
        gallery = self.shared.gallery()
        if len(gallery) == 0:
            return
        vector = self.shared.embedder.embed(crop[None])[0]
        match = gallery.search(vector, self.shared.cfg.threshold)
        del vector  # the probe's embedding is never kept, matched or not
        self.embedded += 1
        declared = self._votes.observe(track, match)
        if declared is None or match is None or match.identity != declared.identity:
            return
        key = (track, declared.identity)
        if key in self._alerted:
            return
        self._alerted[key] = None
        while len(self._alerted) > MAX_ALERTED:
            del self._alerted[next(iter(self._alerted))]
        alert_id = self.shared.open_alert(
            self.camera_id, self.station_id, declared.identity, declared.score, crop
        )
        self.alerts.append(alert_id)
        log.warning(
            "camera %s: watchlist match (alert %s) awaits two officers' confirmation",
            self.camera_id,
            alert_id,
        )

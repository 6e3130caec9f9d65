"""The face watchlist's governance: enrolment, removal, expiry and the end of a window.

    wl = WatchlistService(engine, site, keys)          # keys: the evidence Fernet keys
    wl.enrol("P-17", category=..., reason=..., image_source=..., by="SI Verma",
             review_date=date(2027, 3, 1), photos=[Path("a.jpg")], faces=FaceTools.load())
    wl.remove("P-17", by="SI Verma", reason="acquitted")
    wl.expire(by="system")                             # entries past their review date
    wl.close_if_lapsed()                               # delete_list_when_closed
    wl.purge(by="SI Verma", reason="module switched off")  # every template deleted
    wl.drop_old_thumbnails()                           # closed alerts past retention_days

A review date is a day in the deployment's time zone (`timezone`): the entry matches until
the end of that day, and not a moment after (the gallery leaves it out even before
`expire` removes it). Removing, expiring, listing and purging work without a `watchlist:`
section, or with one whose measurement fails the gate: taking data off must always be
possible.

Nothing is enrolled unless an authorisation (`watchlist.authorisations`) is in force and the
list stays within its `max_list_size` (the smallest of those in force). Each photo must pass
the enrolment quality check; one refused photo refuses the enrolment, naming the photo and
the reason. Only the embeddings and one small thumbnail of the aligned face are kept, each
encrypted with the evidence key; the photo itself is never stored. Every change commits with
its audit entry (who, which person, why; never an embedding) or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from raksha.audit.log import AuditLog
from raksha.errors import ConfigError, RakshaError
from raksha.incidents.evidence import KeyRing, decrypt_bytes, encrypt_bytes
from raksha.incidents.model import utcnow
from raksha.pipeline.watchlist import WatchlistShared
from raksha.site.config import SiteConfig, WatchlistConfig, in_force
from raksha.store import watchlist as rows
from raksha.store._db import db_errors
from raksha.watchlist.embed import EMBEDDING_DIM
from raksha.watchlist.matcher import Gallery

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

#: Side of the stored thumbnails (the aligned face, scaled down), px, and their JPEG quality.
THUMB_SIDE = 64
THUMB_QUALITY = 80
ID_MAX = 128
TEXT_MIN = 3


class WatchlistError(RakshaError):
    """A watchlist change refused (one line, says why)."""


def watchlist_keys(site: SiteConfig, env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The Fernet keys the watchlist encrypts with: the evidence keys. The watchlist refuses
    to run without encryption."""
    if not site.evidence.encrypt:
        raise ConfigError(
            "watchlist: templates are only ever stored encrypted; set evidence.encrypt: true "
            "and give the evidence key"
        )
    return KeyRing(site.evidence.key_env, site.evidence.key_file).load(env)


def encode_jpeg(image: U8, side: int = THUMB_SIDE, quality: int = THUMB_QUALITY) -> bytes:
    """A small JPEG of a (square) face crop."""
    import cv2

    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise WatchlistError("cannot encode a thumbnail")
    return bytes(buf.tobytes())


def encrypt_embedding(vector: npt.ArrayLike, key: bytes) -> bytes:
    v = np.asarray(vector, np.float32).reshape(-1)
    if v.shape != (EMBEDDING_DIM,):
        raise ValueError(f"expected a {EMBEDDING_DIM}-d embedding, got {v.shape}")
    return encrypt_bytes(v.tobytes(), key)


def decrypt_embedding(token: bytes, keys: Sequence[bytes]) -> F32:
    plain = decrypt_bytes(token, list(keys))
    out: F32 = np.frombuffer(plain, np.float32).copy()
    return out


@dataclass(frozen=True, slots=True)
class FaceTools:
    """The face detector and the embedder (loaded only where a watchlist is configured)."""

    detector: Any
    embedder: Any

    @classmethod
    def load(cls, models_dir: Path | None = None) -> FaceTools:
        from raksha.detect import YuNetConfig, build_detector
        from raksha.watchlist.embed import FaceEmbedder

        return cls(
            build_detector(YuNetConfig(), models_dir), FaceEmbedder.from_registry(models_dir)
        )


def _text(value: str, what: str, max_len: int = 2000) -> str:
    v = value.strip()
    if len(v) < TEXT_MIN or len(v) > max_len:
        raise WatchlistError(f"{what} must be {TEXT_MIN} to {max_len} characters")
    return v


def aligned_faces(photos: Sequence[Path], tools: FaceTools) -> list[U8]:
    """The aligned face of each photo, or WatchlistError naming the first refused photo and
    why (not decodable, or the enrolment quality check's reason)."""
    import cv2

    from raksha.watchlist.quality import check_enrolment

    crops: list[U8] = []
    for path in photos:
        read = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if read is None:
            raise WatchlistError(f"{path.name}: not a readable image")
        image: U8 = np.ascontiguousarray(read, np.uint8)
        verdict = check_enrolment(image, tools.detector.detect(image), None, tools.detector)
        if verdict.aligned is None:
            raise WatchlistError(f"{path.name}: refused: {verdict.reason}")
        crops.append(verdict.aligned)
        del image, read
    return crops


def review_end(day: date, zone: str) -> datetime:
    """The instant a review date ends: midnight after `day` in the deployment's time zone."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(zone))


def review_day(end: datetime, zone: str) -> date:
    """The review date (a day in `zone`) of an entry whose review ends at `end`."""
    return (end.astimezone(ZoneInfo(zone)) - timedelta(microseconds=1)).date()


def warn_if_stored_without_section(site: SiteConfig, engine: Engine) -> int:
    """At start without a `watchlist:` section: a warning in the log when templates are
    still stored (the module was switched off, the list was not); the number stored."""
    if site.watchlist is not None:
        return 0
    with db_errors("cannot read the watchlist"), engine.connect() as c:
        listed, templates = rows.stored_counts(c)
    if templates:
        log.warning(
            "watchlist: the config has no `watchlist:` section but %d template(s) of %d "
            "listed people are still stored; nothing matches, but delete them with "
            "`raksha watchlist purge --by NAME --reason R`",
            templates,
            listed,
        )
    return templates


class WatchlistService:
    """The list's governance. Without a `watchlist:` section (or without keys) only what
    takes data off works: `people`, `remove`, `expire`, `purge`, `drop_old_thumbnails`."""

    def __init__(
        self,
        engine: Engine,
        site: SiteConfig,
        keys: Sequence[bytes] = (),
        *,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.site = site
        self.keys = tuple(keys)
        self.audit = audit if audit is not None else AuditLog(engine)
        self.clock = clock

    @property
    def cfg(self) -> WatchlistConfig:
        if self.site.watchlist is None:
            raise ConfigError("the watchlist is off: the config has no `watchlist:` section")
        return self.site.watchlist

    def _keys(self) -> tuple[bytes, ...]:
        if not self.keys:
            raise ConfigError("watchlist: no encryption key")
        return self.keys

    def max_list_size(self, now: datetime | None = None) -> int:
        """The cap in force now (the smallest of the open authorisations); WatchlistError
        when none is open."""
        open_now = in_force(self.cfg, now or self.clock())
        if not open_now:
            raise WatchlistError("no watchlist authorisation is in force now: nothing may change")
        return min(a.max_list_size for a in open_now)

    def enrol(
        self,
        person_id: str,
        *,
        category: str,
        reason: str,
        image_source: str,
        by: str,
        review_date: date,
        photos: Sequence[Path],
        faces: FaceTools,
    ) -> rows.Person:
        now = self.clock()
        cap = self.max_list_size(now)
        key = self._keys()[0]
        pid = person_id.strip()
        if not pid or len(pid) > ID_MAX:
            raise WatchlistError(f"person id must be 1 to {ID_MAX} characters")
        by = _text(by, "--by (who enrols)", ID_MAX)
        category = _text(category, "category", 64)
        reason = _text(reason, "reason")
        image_source = _text(image_source, "image source")
        review = review_end(review_date, self.site.timezone)
        if review <= now:
            raise WatchlistError(f"review date {review_date.isoformat()} has passed")
        if not photos:
            raise WatchlistError("give at least one photo")
        with db_errors("cannot read the watchlist"), self.engine.connect() as c:
            if rows.person(c, pid) is not None:
                raise WatchlistError(f"person id {pid} is taken (listed or listed before)")
            if rows.active_count(c) + 1 > cap:
                raise WatchlistError(
                    f"the list is full: {cap} people at most under the authorisation in force"
                )
        crops = aligned_faces(photos, faces)
        vectors = faces.embedder.embed(np.stack(crops))
        templates: list[tuple[bytes, bytes | None]] = [
            (
                encrypt_embedding(v, key),
                encrypt_bytes(encode_jpeg(crops[0]), key) if i == 0 else None,
            )
            for i, v in enumerate(vectors)
        ]
        del vectors, crops
        person = rows.Person(pid, category, reason, image_source, by, now, review)
        auth_ids = [a.id for a in in_force(self.cfg, now)]
        with db_errors(f"cannot enrol {pid}"), self.engine.begin() as c:
            rows.lock_list(c)  # counted under the write lock: two adds cannot both fit
            if rows.active_count(c) + 1 > cap:
                raise WatchlistError(f"the list is full: {cap} people at most")
            rows.add_person(c, person, templates)
            self.audit.append_in(
                c,
                by,
                "watchlist.add",
                target=f"watchlist:{pid}",
                details={
                    "category": category,
                    "reason": reason,
                    "image_source": image_source,
                    "review_date": review_date.isoformat(),
                    "photos": len(photos),
                    "templates": len(templates),
                    "authorisations": auth_ids,
                },
                at=now,
            )
        return rows.Person(
            pid, category, reason, image_source, by, now, review, templates=len(templates)
        )

    def people(self, *, include_removed: bool = False) -> list[rows.Person]:
        return rows.people(self.engine, include_removed=include_removed)

    def remove(self, person_id: str, *, by: str, reason: str) -> int:
        """Remove a listed person (their templates deleted); the templates deleted.
        Removal is allowed when no authorisation is in force: taking someone off the list
        must always be possible."""
        now = self.clock()
        by = _text(by, "--by (who removes)", ID_MAX)
        reason = _text(reason, "reason")
        with db_errors(f"cannot remove {person_id}"), self.engine.begin() as c:
            p = rows.person(c, person_id)
            if p is None or p.removed_at is not None:
                raise WatchlistError(f"{person_id} is not on the watchlist")
            deleted = rows.remove_person(c, person_id, by=by, reason=reason, at=now)
            self.audit.append_in(
                c,
                by,
                "watchlist.remove",
                target=f"watchlist:{person_id}",
                details={"reason": reason, "templates_deleted": deleted},
                at=now,
            )
        return deleted

    def expire(self, *, by: str = "system") -> list[str]:
        """Remove everyone whose review date has passed; their ids."""
        now = self.clock()
        gone: list[str] = []
        for p in self.people():
            if p.review_date <= now:
                with db_errors(f"cannot expire {p.id}"), self.engine.begin() as c:
                    deleted = rows.remove_person(
                        c, p.id, by=by, reason="review date passed", at=now
                    )
                    self.audit.append_in(
                        c,
                        by,
                        "watchlist.expire",
                        target=f"watchlist:{p.id}",
                        details={
                            "review_date": review_day(
                                p.review_date, self.site.timezone
                            ).isoformat(),
                            "templates_deleted": deleted,
                        },
                        at=now,
                    )
                gone.append(p.id)
        return gone

    def purge(self, *, by: str, reason: str) -> int:
        """Delete every template (the list's biometric data), keeping the people rows as
        the record, each marked removed; audited as `watchlist.purge`. Works without a
        `watchlist:` section. The number of templates deleted."""
        now = self.clock()
        by = _text(by, "--by (who purges)", ID_MAX)
        reason = _text(reason, "reason")
        listed = self.people()
        with db_errors("cannot purge the watchlist"), self.engine.begin() as c:
            templates = sum(
                rows.remove_person(c, p.id, by=by, reason=f"purged: {reason}", at=now)
                for p in listed
            )
            templates += rows.delete_templates(c)  # any left of people removed before
            self.audit.append_in(
                c,
                by,
                "watchlist.purge",
                target="watchlist",
                details={"reason": reason, "people": len(listed), "templates_deleted": templates},
                at=now,
            )
        return templates

    def drop_old_thumbnails(self, *, by: str = "system") -> int:
        """Delete the probe thumbnails of alerts closed more than `evidence.retention_days`
        ago, audited as `watchlist.retention`; the number dropped."""
        now = self.clock()
        days = self.site.evidence.retention_days
        with db_errors("cannot apply the watchlist alerts' retention"), self.engine.begin() as c:
            dropped = rows.drop_old_probe_thumbnails(c, now - timedelta(days=days))
            if dropped:
                self.audit.append_in(
                    c,
                    by,
                    "watchlist.retention",
                    target="watchlist_alerts",
                    details={"retention_days": days, "thumbnails_deleted": dropped},
                    at=now,
                )
        return len(dropped)

    def maintain(self) -> None:
        """What the running pipeline does on each gallery reload: expire the entries past
        their review date and apply the alerts' retention."""
        self.expire()
        self.drop_old_thumbnails()

    def gallery_version(self) -> object:
        return rows.gallery_version(self.engine, self.clock())

    def close_if_lapsed(self, *, by: str = "system") -> int:
        """With `delete_list_when_closed`, once no authorisation is in force: every listed
        person removed and every template deleted, audited as `watchlist.deleted`. The
        number of people removed (0 when nothing was done)."""
        now = self.clock()
        if not self.cfg.delete_list_when_closed or in_force(self.cfg, now):
            return 0
        listed = self.people()
        with db_errors("cannot delete the watchlist"), self.engine.begin() as c:
            templates = sum(
                rows.remove_person(c, p.id, by=by, reason="authorisation closed", at=now)
                for p in listed
            )
            templates += rows.delete_templates(c)
            if not listed and not templates:
                return 0
            self.audit.append_in(
                c,
                by,
                "watchlist.deleted",
                target="watchlist",
                details={
                    "people": len(listed),
                    "templates_deleted": templates,
                    "why": "no authorisation in force (delete_list_when_closed)",
                },
                at=now,
            )
        return len(listed)

    def gallery(self) -> Gallery:
        """The listed people's templates, decrypted into memory for matching."""
        found = rows.enrolled_templates(self.engine, self.clock())
        if not found:
            return Gallery(np.zeros((0, EMBEDDING_DIM), np.float32), [])
        keys = self._keys()
        vectors = np.stack([decrypt_embedding(t, keys) for _, t in found])
        return Gallery(vectors, [pid for pid, _ in found])

    def thumbnail(self, person_id: str) -> bytes | None:
        """The enrolled face's thumbnail JPEG (decrypted), if any."""
        token = rows.template_thumbnail(self.engine, person_id)
        return None if token is None else decrypt_bytes(token, list(self._keys()))


def watchlist_runtime(
    site: SiteConfig,
    engine: Engine,
    models_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> WatchlistShared | None:
    """What the cameras share for matching; None without a `watchlist:` section (then no
    face model is loaded). A list whose window closed before the start is deleted first
    (with `delete_list_when_closed`)."""
    if site.watchlist is None:
        warn_if_stored_without_section(site, engine)
        return None
    from raksha.watchlist.embed import FaceEmbedder

    keys = watchlist_keys(site, env)
    service = WatchlistService(engine, site, keys, clock=clock)
    service.close_if_lapsed()
    key = keys[0]
    return WatchlistShared(
        site.watchlist,
        engine,
        FaceEmbedder.from_registry(models_dir),
        service.gallery,
        lambda data: encrypt_bytes(data, key),
        on_closed=service.close_if_lapsed,
        clock=clock,
        version=service.gallery_version,
        maintain=service.maintain,
    )

"""Watchlist matching in the camera pipeline (issue 20, stage 2): only on authorised cameras
inside an open window, a declared match is a watchlist alert (never an incident, an outbox
alert or a dispatch), and nothing of a face that matches nobody is kept."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from raksha.app import build_runtime
from raksha.audit.log import AuditLog
from raksha.config import AnalysisConfig, RunConfig, load_run_config
from raksha.domain import Frame
from raksha.incidents.evidence import decrypt_bytes
from raksha.pipeline.analyzer import FrameAnalyzer, Models
from raksha.pipeline.runtime import Runtime
from raksha.pipeline.watchlist import WatchlistShared
from raksha.services.watchlist import (
    FaceTools,
    WatchlistService,
    watchlist_keys,
    watchlist_runtime,
)
from raksha.store.repository import IncidentStore
from raksha.store.tables import (
    alerts,
    incidents,
    watchlist_alerts,
    watchlist_people,
    watchlist_templates,
)
from watchlist_support import (
    NOW,
    authorisation,
    identity_photos,
    site_doc,
    still_clip,
    write_site,
)

REVIEW = datetime.now(UTC).date() + timedelta(days=30)
KEY_ENV = {"RAKSHA_EVIDENCE_KEY": os.environ["RAKSHA_EVIDENCE_KEY"]}


@pytest.fixture(scope="module")
def tools(models_dir: Path) -> FaceTools:
    return FaceTools.load(models_dir)


@pytest.fixture(scope="module")
def photos(data_dir: Path) -> dict[str, list[Path]]:
    return identity_photos(data_dir)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, list[Path]]) -> Any:
    folder = tmp_path_factory.mktemp("wl-clips")
    return {
        # Another photo of the person enrolled from photos["id01"][0].
        "same": still_clip(photos["id01"][1], folder / "same.mp4"),
        "other": still_clip(photos["id03"][0], folder / "other.mp4"),
    }


def _site(tmp: Path, clip: Path, *, cameras: list[str] | None = None, **wl: Any) -> RunConfig:
    doc = site_doc(tmp, authorisations=[authorisation(cameras or ["cam-a"])], **wl)
    doc["cameras"] = [
        {"id": "cam-a", "hotspot": "bus-stand", "url": str(clip), "fps": 5},
        {"id": "cam-b", "hotspot": "bus-stand", "url": "file:///dev/null", "enabled": False},
    ]
    return load_run_config(write_site(tmp, doc))


def _enrol(cfg: RunConfig, tools: FaceTools, photo: Path) -> None:
    store = IncidentStore.open(cfg.storage.url)
    try:
        WatchlistService(store.engine, cfg, watchlist_keys(cfg)).enrol(
            "P-1",
            category="wanted",
            reason="warrant 1/2026",
            image_source="case file 1/2026",
            by="SI Verma",
            review_date=REVIEW,
            photos=[photo],
            faces=tools,
        )
    finally:
        store.close()


def _run(cfg: RunConfig, models_dir: Path) -> Runtime:
    rt = build_runtime(cfg, models_dir=models_dir, exit_at_end=True, env=KEY_ENV)
    rt.start()
    try:
        rt.wait()
    finally:
        rt.stop()
    return rt


def _count(store: IncidentStore, table: Any) -> int:
    with store.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_without_a_watchlist_section_the_pipeline_is_as_before(
    tmp_path: Path, clips: Any, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = site_doc(tmp_path)
    del doc["watchlist"]
    doc["cameras"] = [{"id": "cam-a", "hotspot": "bus-stand", "url": str(clips["same"])}]
    cfg = load_run_config(write_site(tmp_path, doc))

    def no_model(*_: Any, **__: Any) -> Any:
        raise AssertionError("the face embedding model was loaded")

    monkeypatch.setattr("raksha.watchlist.embed.FaceEmbedder.from_registry", no_model)
    rt = build_runtime(cfg, models_dir=models_dir, exit_at_end=True, env=KEY_ENV)
    try:
        assert rt.pipelines[0].make_analyzer().watchlist is None
    finally:
        rt.stop()


def test_an_enrolled_person_raises_one_watchlist_alert_and_no_incident(
    tmp_path: Path, clips: Any, photos: dict[str, list[Path]], tools: FaceTools, models_dir: Path
) -> None:
    cfg = _site(tmp_path, clips["same"])
    _enrol(cfg, tools, photos["id01"][0])
    _run(cfg, models_dir)
    store = IncidentStore.open(cfg.storage.url)
    try:
        with store.engine.connect() as c:
            rows = c.execute(select(watchlist_alerts)).all()
        assert len(rows) == 1, rows
        row = rows[0]
        assert (row.person_id, row.camera_id, row.station_id) == ("P-1", "cam-a", "charbagh")
        assert row.state == "pending" and row.score >= 0.45
        blob = bytes(row.probe_thumbnail_enc)
        assert blob.startswith(b"gAAAA") and not blob.startswith(b"\xff\xd8")
        assert decrypt_bytes(blob, list(watchlist_keys(cfg))).startswith(b"\xff\xd8")
        assert _count(store, incidents) == 0 and _count(store, alerts) == 0
        match = [e for e in AuditLog(store.engine).entries() if e.action == "watchlist.match"]
        assert len(match) == 1 and match[0].details["person"] == "P-1"
    finally:
        store.close()
    assert _files(cfg.evidence.dir) == []


def test_a_person_not_enrolled_leaves_no_trace(
    tmp_path: Path, clips: Any, photos: dict[str, list[Path]], tools: FaceTools, models_dir: Path
) -> None:
    cfg = _site(tmp_path, clips["other"])
    _enrol(cfg, tools, photos["id01"][0])
    _run(cfg, models_dir)
    store = IncidentStore.open(cfg.storage.url)
    try:
        assert _count(store, watchlist_alerts) == 0
        assert _count(store, incidents) == 0 and _count(store, alerts) == 0
        assert _count(store, watchlist_people) == 1 and _count(store, watchlist_templates) == 1
        actions = {e.action for e in AuditLog(store.engine).entries()}
        assert actions == {"watchlist.add"}
    finally:
        store.close()
    assert _files(cfg.evidence.dir) == []


def test_a_camera_outside_the_window_matches_nothing(
    tmp_path: Path, clips: Any, photos: dict[str, list[Path]], tools: FaceTools, models_dir: Path
) -> None:
    cfg = _site(tmp_path, clips["same"], cameras=["cam-b"])
    _enrol(cfg, tools, photos["id01"][0])
    _run(cfg, models_dir)
    store = IncidentStore.open(cfg.storage.url)
    try:
        assert _count(store, watchlist_alerts) == 0 and _count(store, incidents) == 0
    finally:
        store.close()


# ---- the matcher on its own ---------------------------------------------------------------------


class _Watched:
    """The embedder, keeping a weak reference to every embedding it hands out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.refs: list[weakref.ref[Any]] = []

    def embed(self, crops: Any) -> Any:
        out = self.inner.embed(crops)
        self.refs.append(weakref.ref(out))
        return out


def _frames(clip: Path) -> list[Frame]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        i = len(frames)
        frames.append(Frame(np.ascontiguousarray(img), i / 5.0, i, "cam-a", 0.0))
    cap.release()
    return frames


def _matching(
    tmp: Path,
    clip: Path,
    tools: FaceTools,
    photo: Path,
    models_dir: Path,
    clock: Callable[[], datetime],
    **wl: Any,
) -> tuple[WatchlistShared, _Watched, FrameAnalyzer, IncidentStore, RunConfig]:
    cfg = _site(tmp, clip, **wl)
    _enrol(cfg, tools, photo)
    store = IncidentStore.open(cfg.storage.url)
    shared = watchlist_runtime(cfg, store.engine, models_dir, KEY_ENV, clock=clock)
    assert shared is not None
    watched = _Watched(shared.embedder)
    shared.embedder = watched
    shared.check_every_s = 0.0
    analyzer = FrameAnalyzer(
        AnalysisConfig(),
        Models.load(AnalysisConfig(), models_dir),
        source_id="cam-a",
        watchlist=shared.matcher("cam-a", "charbagh"),
    )
    return shared, watched, analyzer, store, cfg


def _arrays_held(root: object, skip: set[int]) -> list[Any]:
    """Every numpy array reachable from `root` through attributes, slots and containers
    (not through modules, classes, functions or the objects in `skip`)."""
    found: list[Any] = []
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or id(obj) in skip:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            found.append(obj)
            continue
        if isinstance(obj, str | bytes | int | float | bool | type(None) | type) or callable(obj):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
            continue
        if isinstance(obj, list | tuple | set | frozenset) or type(obj).__name__ == "deque":
            stack.extend(obj)  # type: ignore[arg-type]
            continue
        if not type(obj).__module__.startswith("raksha"):
            continue
        stack.extend(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))
    return found


def test_probe_embeddings_are_dropped_and_at_most_one_per_second_is_made(
    tmp_path: Path, clips: Any, photos: dict[str, list[Path]], tools: FaceTools, models_dir: Path
) -> None:
    _, watched, analyzer, store, _ = _matching(
        tmp_path, clips["other"], tools, photos["id01"][0], models_dir, lambda: NOW
    )
    try:
        frames = _frames(clips["other"])
        assert len(frames) == 15
        for frame in frames:
            analyzer.analyze(frame)
        analyzer.finish()
        matcher = analyzer.watchlist
        assert matcher is not None
        # 3 s of one track: an embedding per second and one for the face held at the end.
        assert 2 <= matcher.embedded <= 4 and matcher.alerts == []
        gc.collect()
        assert watched.refs and all(r() is None for r in watched.refs), "a probe is kept"
        # Nor a copy of it (e.g. a normalised probe cached by the gallery or the matcher):
        # the only 256-wide array the matcher reaches is the gallery's own matrix.
        gallery = matcher.shared.gallery()
        skip = {id(matcher.shared.embedder), id(matcher.shared.engine), id(matcher.shared.audit)}
        wide = [a for a in _arrays_held(matcher, skip) if a.ndim and a.shape[-1] == 256]
        assert wide and all(a is gallery._matrix for a in wide), [a.shape for a in wide]
        assert _count(store, watchlist_alerts) == 0
    finally:
        store.close()


def test_the_window_closing_stops_matching_and_deletes_the_list(
    tmp_path: Path, clips: Any, photos: dict[str, list[Path]], tools: FaceTools, models_dir: Path
) -> None:
    now = [NOW]
    _, watched, analyzer, store, _ = _matching(
        tmp_path,
        clips["same"],
        tools,
        photos["id01"][0],
        models_dir,
        lambda: now[0],
        delete_list_when_closed=True,
    )
    try:
        frames = _frames(clips["same"])
        for frame in frames[:8]:  # 1.4 s: one face embedded, not yet a declared match
            analyzer.analyze(frame)
        assert len(watched.refs) == 1
        now[0] = NOW + timedelta(days=1)  # past the window's end
        for frame in frames[8:]:
            analyzer.analyze(frame)
        analyzer.finish()
        assert len(watched.refs) == 1, "nothing embedded once the window closed"
        assert _count(store, watchlist_alerts) == 0
        assert _count(store, watchlist_templates) == 0, "the list was not deleted"
        assert "watchlist.deleted" in {e.action for e in AuditLog(store.engine).entries()}
    finally:
        store.close()

"""GET /api/events: server-sent events of new and changed incidents in the caller's scope.

The pipeline may write incidents from another process, so the hub polls the store's change
feed (`raksha.store.changes`; every `events_poll_s`, at once after an action through this
API) and hands each change to the open streams whose scope includes its station. Events:

    event: incident.new      data: {"id": ..., "station_id": ..., "state": "NEW", ...}
    event: incident.update   data: {... same fields, a new version ...}

A comment line is sent every `events_keepalive_s`; the session is re-checked then, so a
logout or expiry ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from raksha.api.deps import Context, Principal, denied, require
from raksha.api.metrics import Metrics
from raksha.auth.access import Denied, Rule, visible_stations
from raksha.store.changes import IncidentChangeFeed

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])

QUEUE_SIZE = 256


@dataclass(eq=False)
class Subscriber:
    scope: frozenset[str] | None
    queue: asyncio.Queue[tuple[int, str, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    dropped: int = 0

    def wants(self, station_id: str) -> bool:
        return self.scope is None or station_id in self.scope


class EventHub:
    """Fans the store's change feed out to the open event streams."""

    def __init__(
        self, feed: IncidentChangeFeed, *, poll_s: float, metrics: Metrics | None = None
    ) -> None:
        self.feed = feed
        self.poll_s = poll_s
        self.metrics = metrics
        self.subscribers: set[Subscriber] = set()
        self._seq = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> bool:
        """Start polling; False (nothing done) when already running, e.g. when a test client
        runs the app's lifespan a second time on another event loop."""
        if self._task is not None and not self._task.done():
            return False
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await asyncio.to_thread(self.prime)
        self._task = asyncio.create_task(self._run(), name="raksha-event-hub")
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Look for changes now (callable from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def prime(self) -> None:
        """Start from now (what is already stored is not announced)."""
        self.feed.prime()

    def poll_once(self) -> list[tuple[str, dict[str, Any]]]:
        """Changes since the last poll, as (event type, summary)."""
        return self.feed.poll()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            try:
                changes = await asyncio.to_thread(self.poll_once)
            except Exception as exc:  # keep serving; the next poll retries
                log.warning("event hub: cannot read incidents: %s", type(exc).__name__)
                continue
            for kind, data in changes:
                self.publish(kind, data)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self._seq += 1
        if self.metrics is not None:
            self.metrics.events.labels(kind).inc()
        for sub in list(self.subscribers):
            stations = [str(data.get("station_id")), *data.get("also_stations", ())]
            if not any(sub.wants(station) for station in stations):
                continue
            try:
                sub.queue.put_nowait((self._seq, kind, data))
            except asyncio.QueueFull:
                sub.dropped += 1

    def subscribe(self, scope: frozenset[str] | None) -> Subscriber:
        sub = Subscriber(scope)
        self.subscribers.add(sub)
        if self.metrics is not None:
            self.metrics.subscribers.set(len(self.subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        if self.metrics is not None:
            self.metrics.subscribers.set(len(self.subscribers))


def format_event(seq: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/api/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request, ctx: Context, who: Annotated[Principal, Depends(require(Rule.EVENTS))]
) -> StreamingResponse:
    """Server-sent events: `incident.new` and `incident.update` within the caller's scope."""
    assert who.user is not None and who.session is not None
    try:
        scope = visible_stations(who.user, Rule.EVENTS)
    except Denied as exc:
        raise denied(exc) from None
    hub = ctx.hub
    if not isinstance(hub, EventHub):  # pragma: no cover
        raise RuntimeError("event hub missing")
    await asyncio.to_thread(
        ctx.audit.append,
        who.name,
        "events.subscribe",
        station_id=who.user.station_id,
        address=who.address,
    )
    sub = hub.subscribe(scope)
    session_hash = who.session.token_hash
    keepalive = ctx.settings.events_keepalive_s

    def session_alive() -> bool:
        return ctx.sessions.alive(session_hash)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    seq, kind, data = await asyncio.wait_for(sub.queue.get(), timeout=keepalive)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    if not await asyncio.to_thread(session_alive):
                        yield "event: session.ended\ndata: {}\n\n"
                        return
                    yield ": keepalive\n\n"
                    continue
                yield format_event(seq, kind, data)
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

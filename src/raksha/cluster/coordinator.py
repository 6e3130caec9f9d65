"""The coordinator: keeps every camera of the site running on some host of the cluster.

A reconcile loop (every `tick_s`, 1 s, in a thread of the `raksha run --cluster` process):

1. the live nodes and their capacity (`nodes()`); a host whose node is gone is lost;
2. a host actor for each live node that has none (a node that refused one, e.g. a missing
   secret, is tried again after `retry_s`);
3. a report from every ready host; a host whose call fails (its process or node died) or that
   has not answered for `host_timeout_s` is lost, and its actor killed;
4. the placement (`placement.place`): cameras stay where they run, a lost host's cameras go to
   the least-loaded hosts with room; each host whose set changed is told its new set. At
   start, nothing is placed until every node's host is ready (or `startup_wait_s` has
   passed), so that the cameras spread over all nodes. A node that joins later takes new and
   displaced cameras; running ones are not moved to it.

With `exit_at_end` (file cameras played once), a camera whose host reports it ended is done
and never placed again; the run is over when every file camera is done. A file camera moved
after its host died plays again from its start on the new host: the store's merge rule joins
a repeated event to the incident already stored while it is within the merge window.

Assignments carry a generation, so that a host applies the newest one only (a Ray actor
serves several calls at once, in no guaranteed order); a host that reports running something
other than its latest assignment, or refuses one, is sent its set again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayError

from raksha.cluster.placement import place
from raksha.cluster.ray_hosts import NodeInfo
from raksha.cluster.reports import CameraReport, HostReport

log = logging.getLogger(__name__)

#: Seconds before an assignment a host refused (or did not apply) is sent again.
RESEND_AFTER_S = 5.0


@dataclass(frozen=True, slots=True)
class CameraSpec:
    camera_id: str
    #: A file played as a camera (it ends); live streams do not.
    is_file: bool


@dataclass
class Move:
    """A camera placed again after its host was lost; times are `time.monotonic()`."""

    camera_id: str
    from_node: str
    lost_at: float
    to_node: str | None = None
    placed_at: float | None = None
    #: When the new host first reported the camera analysing frames.
    running_at: float | None = None

    @property
    def back_after_s(self) -> float | None:
        return None if self.running_at is None else self.running_at - self.lost_at


@dataclass
class _Host:
    node: NodeInfo
    actor: Any
    made_at: float
    ready_ref: Any | None
    ready: bool = False
    report_ref: Any | None = None
    report_sent: float = 0.0
    last_answer: float = 0.0
    last_report: HostReport | None = None
    assigned: list[str] = field(default_factory=list)
    #: The generation of the last assignment sent, and its call while it runs.
    generation: int = 0
    assign_ref: Any | None = None
    #: Send the host its set again even if unchanged (it refused or did not apply it),
    #: not before `resend_at` (monotonic), so a camera that cannot start is not retried in
    #: a tight loop.
    resend: bool = False
    resend_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    #: camera id -> node id of its host (placed cameras only).
    placement: dict[str, str]
    unplaced: list[str]
    ended: list[str]
    #: node id -> the host's last report (ready hosts).
    reports: dict[str, HostReport]
    moves: list[Move]
    hosts_ready: int
    hosts_lost: int

    def running(self) -> dict[str, CameraReport]:
        """Cameras a host reports analysing (frames > 0), by camera id."""
        out: dict[str, CameraReport] = {}
        for node, rep in self.reports.items():
            for c in rep.cameras:
                if c.running and c.frames > 0 and self.placement.get(c.camera_id) == node:
                    out[c.camera_id] = c
        return out


class Coordinator:
    def __init__(
        self,
        cameras: Sequence[CameraSpec],
        make_host: Callable[[NodeInfo], Any],
        nodes: Callable[[], list[NodeInfo]],
        *,
        exit_at_end: bool = False,
        tick_s: float = 1.0,
        host_timeout_s: float = 15.0,
        ready_timeout_s: float = 120.0,
        retry_s: float = 30.0,
        startup_wait_s: float = 60.0,
    ) -> None:
        self.cameras = {c.camera_id: c for c in cameras}
        self.make_host = make_host
        self.nodes = nodes
        self.exit_at_end = exit_at_end
        self.tick_s = tick_s
        self.host_timeout_s = host_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.retry_s = retry_s
        #: At start, cameras wait up to this long for every node's host to be ready, so that
        #: they spread over all nodes instead of piling onto the first host to load.
        self.startup_wait_s = startup_wait_s
        self._first_round: float | None = None
        self._placing = False
        self._hosts: dict[str, _Host] = {}
        self._assignment: dict[str, str] = {}
        self._ended: set[str] = set()
        self._unplaced: list[str] = []
        self._moves: list[Move] = []
        self._retry_after: dict[str, float] = {}
        self._lost = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: The hosts' reports when they were stopped (node id -> report).
        self.final_reports: dict[str, HostReport] = {}
        #: Incidents the run opened (set when it stops, by `raksha.cluster.run`).
        self.opened = 0
        #: Each camera's latest report and the node it came from (ended cameras too).
        self._camera_reports: dict[str, tuple[str, CameraReport]] = {}

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cluster-coordinator", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # the loop must go on: cameras depend on it
                log.exception("cluster coordinator round failed; trying again")
            self._stopping.wait(max(0.0, self.tick_s - (time.monotonic() - started)))

    def stop(self, timeout_s: float = 150.0) -> None:
        """Stop the loop, then every host (each stops its cameras and stores what waits)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            hosts = list(self._hosts.values())
        refs = {h.node.node_id: h.actor.stop.remote() for h in hosts if h.ready}
        deadline = time.monotonic() + timeout_s
        for node_id, ref in refs.items():
            try:
                rep = ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
            except (RayError, GetTimeoutError) as exc:
                log.error("camera host on node %s did not stop cleanly: %s", node_id[:12], exc)
                continue
            self.final_reports[node_id] = rep
        for node_id, rep in self.final_reports.items():
            for cam in rep.cameras:
                self._camera_reports[cam.camera_id] = (node_id, cam)
        for h in hosts:
            with contextlib.suppress(RayError):
                ray.kill(h.actor)

    def camera_reports(self) -> dict[str, tuple[str, CameraReport]]:
        """Each camera's latest report and its node's id (cameras that ended too)."""
        with self._lock:
            return dict(self._camera_reports)

    def done(self) -> bool:
        """With `exit_at_end`: every file camera has played to its end."""
        if not self.exit_at_end:
            return False
        with self._lock:
            return all(c in self._ended for c, s in self.cameras.items() if s.is_file)

    def status(self) -> ClusterStatus:
        with self._lock:
            return ClusterStatus(
                placement=dict(self._assignment),
                unplaced=list(self._unplaced),
                ended=sorted(self._ended),
                reports={
                    n: h.last_report
                    for n, h in self._hosts.items()
                    if h.ready and h.last_report is not None
                },
                moves=list(self._moves),
                hosts_ready=sum(h.ready for h in self._hosts.values()),
                hosts_lost=self._lost,
            )

    # ---- one round ------------------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        alive = {n.node_id: n for n in self.nodes()}
        with self._lock:
            for node_id in [n for n in self._hosts if n not in alive]:
                self._lose(node_id, "its node left the cluster", now)
            for node_id, node in alive.items():
                if node.capacity <= 0 or node_id in self._hosts:
                    continue
                if self._retry_after.get(node_id, 0.0) > now:
                    continue
                log.info("starting a camera host on node %s (%s)", node_id[:12], node.address)
                actor = self.make_host(node)
                self._hosts[node_id] = _Host(node, actor, now, actor.ready.remote())
        self._check_ready(now)
        self._collect_reports(now)
        self._place(time.monotonic())

    def _check_ready(self, now: float) -> None:
        with self._lock:
            pending = {h.ready_ref: h for h in self._hosts.values() if h.ready_ref is not None}
        if not pending:
            return
        done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in done:
            host = pending[ref]
            try:
                ray.get(ref)
            except RayError as exc:
                with self._lock:
                    self._refused(host, _reason(exc), now)
                continue
            with self._lock:
                host.ready, host.ready_ref, host.last_answer = True, None, now
            log.info("camera host on node %s is ready", host.node.node_id[:12])
        with self._lock:
            for ref, host in pending.items():
                if ref not in done and now - host.made_at > self.ready_timeout_s:
                    self._refused(host, f"not ready after {self.ready_timeout_s:.0f} s", now)

    def _refused(self, host: _Host, why: str, now: float) -> None:
        node_id = host.node.node_id
        log.error(
            "camera host on node %s could not start: %s; trying again in %.0f s",
            node_id[:12],
            why,
            self.retry_s,
        )
        self._hosts.pop(node_id, None)
        self._retry_after[node_id] = now + self.retry_s
        with contextlib.suppress(RayError):
            ray.kill(host.actor)

    def _collect_reports(self, now: float) -> None:
        with self._lock:
            for h in self._hosts.values():
                if h.ready and h.report_ref is None:
                    h.report_ref, h.report_sent = h.actor.report.remote(), now
            waiting = {h.report_ref: h for h in self._hosts.values() if h.report_ref is not None}
        if not waiting:
            return
        self._check_assignments()
        done, _ = ray.wait(list(waiting), num_returns=len(waiting), timeout=self.tick_s)
        answered = time.monotonic()
        for ref in done:
            host = waiting[ref]
            try:
                report: HostReport = ray.get(ref)
            except ActorUnavailableError as exc:  # unreachable for now: the timeout decides
                log.warning("camera host on node %s unreachable: %s", host.node.node_id[:12], exc)
                host.report_ref = None
                continue
            except RayActorError as exc:  # its process or node is gone
                with self._lock:
                    if self._hosts.get(host.node.node_id) is host:
                        self._lose(host.node.node_id, _reason(exc), answered)
                continue
            except RayError as exc:  # its report failed (a bug there): asked again next round
                log.error(
                    "camera host on node %s could not report: %s",
                    host.node.node_id[:12],
                    _reason(exc),
                )
                host.report_ref = None
                continue
            with self._lock:
                host.report_ref, host.last_answer, host.last_report = None, answered, report
                self._note(host, report, answered)
        with self._lock:
            for host in list(self._hosts.values()):
                # Silent, or answering only with failures, for too long: hung.
                silent = answered - host.last_answer
                if host.ready and silent > self.host_timeout_s:
                    self._lose(host.node.node_id, f"no good answer for {silent:.0f} s", answered)

    def _check_assignments(self) -> None:
        """Assignments that failed on their host are sent again by the next placement."""
        with self._lock:
            pending = {h.assign_ref: h for h in self._hosts.values() if h.assign_ref is not None}
        if not pending:
            return
        done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in done:
            host = pending[ref]
            try:
                ray.get(ref)
            except RayError as exc:
                log.error(
                    "camera host on node %s refused its cameras: %s; sending them again",
                    host.node.node_id[:12],
                    _reason(exc),
                )
                with self._lock:
                    host.resend, host.resend_at = True, time.monotonic() + RESEND_AFTER_S
            with self._lock:
                if host.assign_ref is ref:
                    host.assign_ref = None

    def _note(self, host: _Host, report: HostReport, now: float) -> None:
        node_id = host.node.node_id
        reported = sorted(c.camera_id for c in report.cameras)
        if (
            report.generation == host.generation
            and host.assign_ref is None
            and reported != host.assigned
        ):
            # The host applied our latest assignment but runs something else (a camera that
            # could not start): send it again.
            log.warning(
                "camera host on node %s runs %s instead of %s; sending its cameras again",
                node_id[:12],
                ", ".join(reported) or "nothing",
                ", ".join(host.assigned) or "nothing",
            )
            host.resend, host.resend_at = True, now + RESEND_AFTER_S
        for cam in report.cameras:
            if self._assignment.get(cam.camera_id) != node_id:
                continue  # (an answer from before a move)
            self._camera_reports[cam.camera_id] = (node_id, cam)
            if cam.ended and self.exit_at_end:
                self._ended.add(cam.camera_id)
            if cam.frames > 0:
                for move in self._moves:
                    if (
                        move.camera_id == cam.camera_id
                        and move.to_node == node_id
                        and move.running_at is None
                    ):
                        move.running_at = now
                        log.warning(
                            "camera %s analysed again on node %s, %.1f s after its host was lost",
                            cam.camera_id,
                            node_id[:12],
                            now - move.lost_at,
                        )

    def _lose(self, node_id: str, why: str, now: float) -> None:
        """Forget a host (killing what is left of it); its cameras wait to be placed again."""
        host = self._hosts.pop(node_id)
        self._lost += 1
        with contextlib.suppress(RayError):  # (already gone with its node)
            ray.kill(host.actor)
        cams = sorted(c for c, n in self._assignment.items() if n == node_id)
        for cam in cams:
            del self._assignment[cam]
            if cam not in self._ended:
                self._moves.append(Move(cam, node_id, now))
        log.warning(
            "camera host on node %s lost (%s); its cameras %s go to other hosts",
            node_id[:12],
            why,
            ", ".join(cams) or "(none)",
        )

    def _place(self, now: float) -> None:
        with self._lock:
            if not self._placing:
                if self._first_round is None:
                    self._first_round = now
                loading = any(not h.ready for h in self._hosts.values())
                if loading and now - self._first_round < self.startup_wait_s:
                    return
                self._placing = True
            ready = {n: h for n, h in self._hosts.items() if h.ready}
            wanted = [c for c in self.cameras if c not in self._ended]
            plan = place(wanted, {n: h.node.capacity for n, h in ready.items()}, self._assignment)
            # (Before the first host is ready every camera waits: nothing to say yet.)
            if plan.unplaced != self._unplaced and plan.unplaced and ready:
                log.warning(
                    "%d camera(s) have no host with room: %s",
                    len(plan.unplaced),
                    ", ".join(plan.unplaced[:20]),
                )
            self._unplaced = plan.unplaced
            self._assignment = dict(plan.assignment)
            for cam in plan.moved:
                for move in self._moves:
                    if move.camera_id == cam and move.to_node is None:
                        move.to_node, move.placed_at = plan.assignment[cam], now
            changed = []
            for node_id, host in ready.items():
                cams = plan.cameras_of(node_id)
                if cams != host.assigned or (host.resend and now >= host.resend_at):
                    host.assigned, host.resend = cams, False
                    host.generation += 1
                    changed.append((host, cams, host.generation))
        for host, cams, generation in changed:
            ref = host.actor.assign.remote(cams, generation)
            with self._lock:
                host.assign_ref = ref


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # Ray wraps the host's own error; its last line names it (e.g. a ConfigError's message).
    return (lines[-1] if lines else type(exc).__name__)[:300]

"""A city on one machine: `raksha run --cluster` over K local Ray nodes (loopback only).

    RAKSHA_MODELS=../shared/models python benchmarks/city.py --cameras 8 --nodes 2 \\
        [--seconds 60] [--warmup 10] [--staged 4] [--kill node|process] [--json OUT]
    python benchmarks/city.py --scheduler-only --cameras 1000 --nodes 4 [--json OUT]
    python benchmarks/city.py --scheduler-curve --png docs/img/city-scheduler.png

Real mode (the default) runs three phases against a fresh PostgreSQL schema
($RAKSHA_BENCH_PG_URL, default the local `test` database):

1. **single process**: `raksha run` in this process, N looping cameras in real time (the clips
   of benchmarks/cameras.py; the last --staged cameras play the staged neutral -> fear loop),
   --warmup s, then --seconds measured: CPU of the whole process tree, analysed frames,
   drops, p95 capture -> score.
2. **cluster**: the same cameras on a local Ray cluster of a head (no cameras) and K camera
   nodes, measured the same way over the same window, plus each host's CPU (its process),
   cameras per core, p95 decision -> stored. Then one camera node is killed (--kill node:
   its raylet and workers, without warning; --kill process: the camera host's process
   only) and the time until each of its cameras is analysed again on another node is taken.
   With `--nodes 1` the head node itself runs the cameras (Ray on one machine) and nothing
   is killed.
3. **incidents** (two nodes or more): each clip played once (real time, merge rule on),
   first in one process, then on the cluster with a node killed as soon as the first
   incident is stored; the incidents per camera must be equal (the killed node's cameras
   play again elsewhere and their repeated events join the incidents already stored).

Scheduler-only mode starts K nodes with simulated camera hosts (no decoding) and the real
coordinator, and times placing N cameras and placing a killed node's cameras again.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import cpu_share, machine_cores, tree_cpu_s, tree_rss_mb
from cameras import DEFAULT_CLIPS, SHARED, VIDEOS, staged_clip

PG_URL = os.environ.get("RAKSHA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: Node death noticed within about 1.5 s (Ray's defaults take about 15 s for a silent crash;
#: docs/deploy-cluster.md gives the same settings for a real head node).
HEALTH_CHECKS = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_initial_delay_ms": 0,
}


# ---- shared pieces ---------------------------------------------------------------------------


@contextmanager
def pg_schema() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_URL)
    schema = f"raksha_city_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def local_cluster(nodes: int, capacity: int, cpus_per_node: float) -> Iterator[Any]:
    """A head with no cameras and `nodes` camera nodes of `capacity` cameras each; with one
    node, the head itself runs the cameras (Ray on one machine as it would be deployed)."""
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    head: dict[str, Any] = {"num_cpus": 0}
    if nodes == 1:
        head = {"num_cpus": cpus_per_node, "resources": {"raksha_cameras": capacity}}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**head, "include_dashboard": False, "_system_config": HEALTH_CHECKS},
    )
    try:
        for _ in range(nodes if nodes > 1 else 0):
            cluster.add_node(num_cpus=cpus_per_node, resources={"raksha_cameras": capacity})
        cluster.wait_for_nodes()
        yield cluster
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def node_capacity(cameras: int, nodes: int) -> int:
    """Room for every camera on the nodes left after one is lost."""
    return cameras if nodes == 1 else math.ceil(cameras / (nodes - 1))


def kill(cluster: Any, node_id: str, how: str, coordinator: Any) -> None:
    victim = next(n for n in cluster.worker_nodes if n.node_id == node_id)
    if how == "process":
        pid = coordinator.status().reports[node_id].pid
        os.kill(pid, signal.SIGKILL)
    else:
        cluster.remove_node(victim, allow_graceful=False)


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - t0


# ---- real mode ---------------------------------------------------------------------------------


def site(args: argparse.Namespace, tmp: Path, url: str, *, once: bool) -> Any:
    from raksha.config import RunConfig
    from raksha.demo_site import demo_site_config

    tmp.mkdir(parents=True, exist_ok=True)
    clips = [Path(c) if Path(c).exists() else VIDEOS / c for c in args.clips]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        raise SystemExit(f"clip(s) not found: {', '.join(missing)} (set RAKSHA_SHARED?)")
    urls = [str(clips[i % len(clips)].resolve()) for i in range(args.cameras)]
    staged = min(args.staged, len(urls))
    if staged:
        loop = str(staged_clip(tmp))
        # Spread the staged cameras (every other one from the end) over the nodes.
        for k in range(staged):
            urls[len(urls) - 1 - 2 * k if 2 * k < len(urls) else k] = loop
    doc = demo_site_config(urls, fps=args.fps, storage_url=url, evidence_dir=str(tmp / "evidence"))
    doc.update(
        models_dir=os.environ.get("RAKSHA_MODELS") or str(SHARED / "models"),
        source={"fps": args.fps, "realtime_files": True, "buffer_frames": 2},
    )
    if not once:
        # Every event its own incident, so decision -> stored is timed for each.
        doc["incidents"] = {"merge_window_s": 0}
    return RunConfig.model_validate(doc)


def single_load(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    from raksha.app import build_runtime

    runtime = build_runtime(cfg)
    runtime.start()
    try:
        time.sleep(args.warmup)
        for w in runtime.pipelines:
            w.stats.frame_latency_s.clear()
        cpu0, t0 = tree_cpu_s(), time.monotonic()
        f0 = [w.stats.frames for w in runtime.pipelines]
        d0 = [w.stats.dropped for w in runtime.pipelines]
        time.sleep(args.seconds)
        cpu1, t1 = tree_cpu_s(), time.monotonic()
        frames = sum(w.stats.frames for w in runtime.pipelines) - sum(f0)
        dropped = sum(w.stats.dropped for w in runtime.pipelines) - sum(d0)
        lat = [1000 * x for w in runtime.pipelines for x in w.stats.frame_latency_s]
        rss = tree_rss_mb()
    finally:
        runtime.stop(drain_s=2.0)
    wall = t1 - t0
    return {
        "cpu_share": round(cpu_share(cpu0, cpu1, wall), 3),
        "cpu_s_per_camera_s": round((cpu1 - cpu0) / wall / args.cameras, 4),
        "frames": frames,
        "fps_per_camera": round(frames / wall / args.cameras, 2),
        "dropped": dropped,
        "dropped_share": round(dropped / max(1, frames + dropped), 4),
        "p95_frame_to_score_ms": _pct(lat, 95),
        "rss_mb": round(rss, 1),
    }


def _cluster_totals(status: Any) -> tuple[int, int, dict[str, float]]:
    frames = sum(c.frames for r in status.reports.values() for c in r.cameras)
    dropped = sum(c.dropped for r in status.reports.values() for c in r.cameras)
    cpu = {n: r.cpu_s for n, r in status.reports.items()}
    return frames, dropped, cpu


def cluster_load(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    from raksha.cluster.run import cluster_runtime

    cap = node_capacity(args.cameras, args.nodes)
    cores = machine_cores()
    with local_cluster(args.nodes, cap, cores / args.nodes) as cluster:
        runtime, coord = cluster_runtime(cfg, cluster.address)
        runtime.start()
        try:
            up_s = wait_for(
                lambda: len(coord.status().running()) == args.cameras, 180, "cameras running"
            )
            time.sleep(args.warmup)
            s0, cpu0, t0 = coord.status(), tree_cpu_s(), time.monotonic()
            f0, d0, host0 = _cluster_totals(s0)
            time.sleep(args.seconds)
            s1, cpu1, t1 = coord.status(), tree_cpu_s(), time.monotonic()
            f1, d1, host1 = _cluster_totals(s1)
            rss = tree_rss_mb()
            wall = t1 - t0
            hosts = {}
            for node, rep in s1.reports.items():
                n_cams = len(rep.cameras)
                used = (host1[node] - host0.get(node, host1[node])) / wall
                hosts[node[:12]] = {
                    "cameras": n_cams,
                    "cpu_cores_used": round(used, 3),
                    "cameras_per_core": round(n_cams / used, 1) if used > 0 else None,
                    "p95_frame_to_score_ms": max(
                        (c.p95_latency_ms or 0.0 for c in rep.cameras), default=None
                    ),
                    "max_rss_mb": round(rep.max_rss_bytes / 2**20, 1),
                }
            stored = [x for r in s1.reports.values() for x in r.stored_ms]
            p95s = [c.p95_latency_ms for r in s1.reports.values() for c in r.cameras]
            load = {
                "first_all_running_s": round(up_s, 1),
                "cpu_share": round(cpu_share(cpu0, cpu1, wall), 3),
                "cpu_s_per_camera_s": round((cpu1 - cpu0) / wall / args.cameras, 4),
                "frames": f1 - f0,
                "fps_per_camera": round((f1 - f0) / wall / args.cameras, 2),
                "dropped": d1 - d0,
                "dropped_share": round((d1 - d0) / max(1, f1 - f0 + d1 - d0), 4),
                "p95_frame_to_score_ms_worst_camera": max((p for p in p95s if p), default=None),
                "p95_decision_to_stored_ms": _pct(stored, 95),
                "incidents_timed": len(stored),
                "hosts": hosts,
                "rss_mb_tree": round(rss, 1),
            }
            if args.nodes == 1:
                return load
            # Failover: the node with the most cameras goes.
            placement = coord.status().placement
            victim = Counter(placement.values()).most_common(1)[0][0]
            moved = sorted(c for c, n in placement.items() if n == victim)
            killed = time.monotonic()
            kill(cluster, victim, args.kill, coord)

            def back() -> bool:
                ms = [m for m in coord.status().moves if m.camera_id in moved]
                return len(ms) == len(moved) and all(m.running_at is not None for m in ms)

            wait_for(back, 60, "the killed node's cameras to run again")
            moves = [m for m in coord.status().moves if m.camera_id in moved]
            noticed = [m.lost_at - killed for m in moves]
            backs = [m.running_at - killed for m in moves if m.running_at is not None]
            load["failover"] = {
                "kill": args.kill,
                "cameras_moved": len(moved),
                "noticed_after_s": round(max(noticed), 2),
                "all_back_after_s": round(max(backs), 2),
                "p50_back_after_s": round(float(np.median(backs)), 2),
                "still_running": len(coord.status().running()),
            }
        finally:
            runtime.stop(drain_s=2.0)
    return load


def incidents_once(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from raksha.app import build_runtime
    from raksha.cluster.run import cluster_runtime
    from raksha.store.repository import IncidentStore

    def per_camera(url: str) -> dict[str, int]:
        store = IncidentStore.open(url)
        try:
            return dict(Counter(i.camera_id for i in store.list_incidents(limit=None)))
        finally:
            store.close()

    with pg_schema() as url:
        cfg = site(args, tmp / "single", url, once=True)
        rt = build_runtime(cfg, exit_at_end=True)
        rt.start()
        try:
            rt.wait()
        finally:
            rt.stop(drain_s=2.0)
        single = per_camera(url)
    cap = node_capacity(args.cameras, args.nodes)
    with pg_schema() as url, local_cluster(args.nodes, cap, machine_cores() / args.nodes) as cl:
        cfg = site(args, tmp / "cluster", url, once=True)
        runtime, coord = cluster_runtime(cfg, cl.address, exit_at_end=True)
        runtime.start()
        try:
            wait_for(lambda: sum(per_camera(url).values()) > 0, 240, "a first incident")
            placement = coord.status().placement
            first = sorted(per_camera(url))[0]
            victim = placement.get(first) or Counter(placement.values()).most_common(1)[0][0]
            killed_cams = sorted(c for c, n in placement.items() if n == victim)
            kill(cl, victim, args.kill, coord)
            runtime.wait()
            moves = coord.status().moves
        finally:
            runtime.stop(drain_s=2.0)
        clustered = per_camera(url)
    return {
        "single_process": single,
        "cluster_with_a_node_killed": clustered,
        "equal": single == clustered,
        "killed_node_cameras": killed_cams,
        "moves": [
            {"camera": m.camera_id, "back_after_s": round(m.back_after_s or -1, 2)} for m in moves
        ],
    }


def real(args: argparse.Namespace) -> dict[str, Any]:
    if not os.environ.get("RAKSHA_EVIDENCE_KEY"):
        from raksha.incidents.evidence import new_key

        os.environ["RAKSHA_EVIDENCE_KEY"] = new_key().decode()  # (this run's only)
    result: dict[str, Any] = {"cameras": args.cameras, "nodes": args.nodes}
    with tempfile.TemporaryDirectory(prefix="raksha-city-") as name:
        tmp = Path(name)
        if not args.skip_load:
            with pg_schema() as url:
                result["single_process"] = single_load(site(args, tmp / "a", url, once=False), args)
            with pg_schema() as url:
                result["cluster"] = cluster_load(site(args, tmp / "b", url, once=False), args)
            one, many = (
                result["single_process"]["cpu_s_per_camera_s"],
                result["cluster"]["cpu_s_per_camera_s"],
            )
            result["cluster_cpu_per_camera_vs_single"] = round(many / one - 1.0, 3)
        if not args.skip_incidents and args.nodes > 1:
            result["incidents"] = incidents_once(args, tmp)
    return result


# ---- scheduler-only ------------------------------------------------------------------------------


def scheduler_only(cameras: int, nodes: int) -> dict[str, Any]:
    from raksha.cluster.coordinator import CameraSpec, Coordinator
    from raksha.cluster.ray_hosts import camera_nodes, connect, disconnect, start_host

    cap = node_capacity(cameras, nodes)
    with local_cluster(nodes, cap, 0) as cluster:
        connect(cluster.address)
        specs = [CameraSpec(f"cam-{i:04d}", is_file=False) for i in range(cameras)]
        coord = Coordinator(
            specs, lambda n: start_host(n, kind="simulated"), camera_nodes, tick_s=0.25
        )
        coord.start()
        try:
            placed = wait_for(
                lambda: len(coord.status().running()) == cameras, 120, "all cameras running"
            )
            placement = coord.status().placement
            victim = Counter(placement.values()).most_common(1)[0][0]
            moved = sum(1 for n in placement.values() if n == victim)
            killed = time.monotonic()
            cluster.remove_node(
                next(n for n in cluster.worker_nodes if n.node_id == victim),
                allow_graceful=False,
            )

            def back() -> bool:
                s = coord.status()
                return (
                    len(s.moves) == moved
                    and all(m.running_at is not None for m in s.moves)
                    and len(s.running()) == cameras
                )

            replaced = wait_for(back, 120, "the lost node's cameras running again")
            s = coord.status()
            noticed = max(m.lost_at for m in s.moves) - killed
        finally:
            coord.stop()
            disconnect()
    return {
        "cameras": cameras,
        "nodes": nodes,
        "capacity_per_node": cap,
        "placed_and_running_s": round(placed, 2),
        "cameras_on_killed_node": moved,
        "loss_noticed_after_s": round(noticed, 2),
        "replaced_and_running_s": round(replaced, 2),
    }


def curve(png: Path | None, nodes: int) -> dict[str, Any]:
    points = [scheduler_only(n, nodes) for n in (100, 250, 500, 1000)]
    if png is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        xs = [p["cameras"] for p in points]
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
        ax.plot(xs, [p["placed_and_running_s"] for p in points], "o-", label="all placed")
        ax.plot(
            xs,
            [p["replaced_and_running_s"] for p in points],
            "s-",
            label="lost node's cameras placed again",
        )
        ax.axhline(30, color="grey", ls="--", lw=0.8, label="target 30 s")
        ax.set_xlabel(f"simulated cameras ({nodes} nodes)")
        ax.set_ylabel("seconds until reported running")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png)
    return {"points": points}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--clips", nargs="+", default=DEFAULT_CLIPS)
    ap.add_argument("--staged", type=int, default=4, help="cameras playing the staged loop")
    ap.add_argument("--kill", choices=["node", "process"], default="node")
    ap.add_argument("--skip-load", action="store_true", help="only the incidents phase")
    ap.add_argument("--skip-incidents", action="store_true", help="only the load phases")
    ap.add_argument("--scheduler-only", action="store_true")
    ap.add_argument("--scheduler-curve", action="store_true")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.cameras < 1 or args.nodes < 1:
        ap.error("--cameras and --nodes must be >= 1")
    if args.nodes == 1 and (args.scheduler_only or args.scheduler_curve):
        ap.error("the scheduler-only runs kill a node: --nodes must be >= 2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.scheduler_curve:
        result = curve(args.png, args.nodes)
    elif args.scheduler_only:
        result = scheduler_only(args.cameras, args.nodes)
    else:
        result = real(args)
    result["machine"] = (
        f"{platform.processor() or platform.machine()}, {machine_cores()} cores, "
        f"Python {platform.python_version()}"
    )
    print(json.dumps(result, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

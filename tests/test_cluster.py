"""`raksha run --cluster`: placement (pure), and a real two-node Ray cluster on loopback
running two file cameras into PostgreSQL, one node killed mid-run."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pg_support import admin_engine, pg_schema
from raksha.cluster.placement import place
from raksha.config import load_run_config
from raksha.errors import ConfigError
from raksha.store.repository import IncidentStore
from test_run_pipeline import distress_clip, judge  # noqa: F401  (fixtures)

# ---- placement --------------------------------------------------------------------------------


def test_new_cameras_go_to_the_least_loaded_host_and_respect_capacity() -> None:
    plan = place([f"c{i}" for i in range(7)], {"a": 4, "b": 2, "c": 0}, {})
    load = Counter(plan.assignment.values())
    assert load == {"a": 4, "b": 2}
    assert plan.unplaced == ["c6"]
    assert set(plan.moved) == set(plan.assignment)


def test_running_cameras_stay_where_they_are() -> None:
    current = {"c0": "b", "c1": "b", "c2": "a"}
    plan = place(["c0", "c1", "c2", "c3"], {"a": 4, "b": 4}, current)
    assert {c: plan.assignment[c] for c in current} == current
    assert plan.moved == ["c3"]
    assert plan.assignment["c3"] == "a"  # a has 1 of 4, b 2 of 4


def test_a_lost_hosts_cameras_spread_over_the_others() -> None:
    cams = [f"c{i:02d}" for i in range(30)]
    first = place(cams, {"a": 10, "b": 10, "c": 10}, {})
    assert Counter(first.assignment.values()) == {"a": 10, "b": 10, "c": 10}
    survivors = {"a": 20, "c": 20}
    second = place(cams, survivors, {c: h for c, h in first.assignment.items() if h != "b"})
    assert Counter(second.assignment.values()) == {"a": 15, "c": 15}
    assert sorted(second.moved) == first.cameras_of("b")
    assert all(second.assignment[c] == h for c, h in first.assignment.items() if h != "b")


def test_a_full_host_keeps_no_more_than_its_capacity() -> None:
    plan = place(["c0", "c1", "c2"], {"a": 1, "b": 5}, {"c0": "a", "c1": "a", "c2": "a"})
    assert Counter(plan.assignment.values()) == {"a": 1, "b": 2}
    assert plan.assignment["c0"] == "a"


def test_placement_is_deterministic_and_scales_to_a_city() -> None:
    cams = [f"cam-{i:04d}" for i in range(1000)]
    hosts = {f"node-{k}": 130 for k in range(8)}
    shuffled = cams[:]
    random.Random(3).shuffle(shuffled)
    t0 = time.perf_counter()
    plan = place(shuffled, hosts, {})
    took = time.perf_counter() - t0
    assert plan == place(cams, hosts, {})
    assert not plan.unplaced
    assert max(Counter(plan.assignment.values()).values()) == 125
    assert took < 5  # (generous: a few milliseconds here; a sanity bound, not a benchmark)


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        place(["c"], {"a": -1}, {})


# ---- addresses and stores ----------------------------------------------------------------------


@pytest.mark.parametrize("address", ["auto", "ray://10.0.0.1:10001", "head.local:6379"])
def test_cluster_addresses_accepted(address: str) -> None:
    from raksha.cluster.ray_hosts import check_address

    assert check_address(address) == address


@pytest.mark.parametrize("address", ["", "http://x:1", "head", "ray://head", "a b:1"])
def test_bad_cluster_address_is_refused_with_what_is_accepted(address: str) -> None:
    from raksha.cluster.ray_hosts import check_address

    with pytest.raises(ConfigError, match="auto, ray://HOST:PORT or HOST:PORT"):
        check_address(address)


def test_a_cluster_run_refuses_sqlite(tmp_path: Path) -> None:
    from raksha.cluster.run import check_shared_store
    from test_run_pipeline import camera, write_config

    cfg = load_run_config(
        write_config(
            tmp_path / "raksha.yaml", [camera("cam-1", "x.mp4")], f"sqlite:///{tmp_path}/r.db"
        )
    )
    with pytest.raises(ConfigError, match="use PostgreSQL"):
        check_shared_store(cfg, {})


# ---- a real cluster -------------------------------------------------------------------------


@contextmanager
def loopback_cluster(nodes: int, cpus: float, capacity: int) -> Iterator[Any]:
    """A head (no cameras) and `nodes` camera nodes on loopback. Node death is noticed
    within about a second (health checks every 0.5 s)."""
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": {
                "health_check_period_ms": 500,
                "health_check_failure_threshold": 3,
                "health_check_initial_delay_ms": 0,
            },
        },
    )
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=cpus, resources={"raksha_cameras": capacity})
        cluster.wait_for_nodes()
        yield cluster
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def ray_cluster() -> Iterator[Any]:
    """Two camera nodes with room for two cameras each."""
    with loopback_cluster(2, 1, 2) as cluster:
        yield cluster


SCHEMA_PREFIX = "raksha_cluster_t_"
#: The clips play as live cameras would deliver them (10 s each), so a node can die mid-clip.
REAL_TIME = {"realtime_files": True}


@contextmanager
def pg_schema_url() -> Iterator[str]:
    admin = admin_engine("the cluster tests", SCHEMA_PREFIX)
    try:
        with pg_schema(admin, SCHEMA_PREFIX) as url:
            yield url
    finally:
        admin.dispose()


def _per_camera(url: str) -> Counter[str]:
    store = IncidentStore.open(url)
    try:
        return Counter(i.camera_id for i in store.list_incidents(limit=None))
    finally:
        store.close()


@pytest.mark.slow
def test_two_node_cluster_matches_one_process_and_survives_a_killed_node(
    tmp_path: Path,
    models_dir: Path,
    distress_clip: Any,  # noqa: F811  (the fixture imported above)
    ray_cluster: Any,
) -> None:
    from raksha.cluster.run import cluster_runtime
    from test_run_pipeline import camera, run_to_end, write_config

    cams = [camera("cam-north", distress_clip.path), camera("cam-south", distress_clip.path)]
    # The reference: one process, the same clips.
    with pg_schema_url() as single_url:
        (tmp_path / "single").mkdir()
        single_cfg = write_config(
            tmp_path / "single" / "raksha.yaml", cams, single_url, source=REAL_TIME
        )
        run_to_end(single_cfg, models_dir)
        expected = _per_camera(single_url)
    assert expected == {"cam-north": 1, "cam-south": 1}, expected

    with pg_schema_url() as url:
        (tmp_path / "cluster").mkdir()
        cfg = load_run_config(
            write_config(tmp_path / "cluster" / "raksha.yaml", cams, url, source=REAL_TIME)
        )
        runtime, coordinator = cluster_runtime(
            cfg, ray_cluster.address, models_dir=models_dir, exit_at_end=True
        )
        runtime.start()
        try:
            # Both cameras analysing, one on each camera node.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                status = coordinator.status()
                if len(status.running()) == 2:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"cameras not running on the cluster: {coordinator.status()}")
            placement = coordinator.status().placement
            assert len(set(placement.values())) == 2, placement
            # Let the victim's incident be stored, then kill its node mid-clip.
            victim_cam = "cam-north"
            deadline = time.monotonic() + 30
            while _per_camera(url)[victim_cam] < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _per_camera(url)[victim_cam] == 1
            victim = next(n for n in ray_cluster.worker_nodes if n.node_id == placement[victim_cam])
            killed_at = time.monotonic()
            ray_cluster.remove_node(victim)
            # Its camera is analysed again on the other node within 10 s.
            while time.monotonic() - killed_at < 30:
                moves = [m for m in coordinator.status().moves if m.camera_id == victim_cam]
                if moves and moves[0].running_at is not None:
                    break
                time.sleep(0.1)
            (move,) = [m for m in coordinator.status().moves if m.camera_id == victim_cam]
            assert move.running_at is not None, move
            assert move.running_at - killed_at < 10, move
            assert move.to_node == placement["cam-south"]
            runtime.wait()
        finally:
            runtime.stop()
        # Exactly the incidents of the single process: the replayed event joined the stored one.
        assert _per_camera(url) == expected
        assert coordinator.done()


@pytest.fixture
def sim_cluster() -> Iterator[Any]:
    """Three nodes for simulated hosts (no decoding), room for 500 cameras each."""
    with loopback_cluster(3, 0, 500) as cluster:
        yield cluster


@pytest.mark.slow
def test_a_thousand_simulated_cameras_are_placed_and_replaced_after_a_node_loss(
    sim_cluster: Any,
) -> None:
    from raksha.cluster.coordinator import CameraSpec, Coordinator
    from raksha.cluster.ray_hosts import camera_nodes, connect, disconnect, start_host

    connect(sim_cluster.address)
    cams = [CameraSpec(f"cam-{i:04d}", is_file=False) for i in range(1000)]
    coordinator = Coordinator(
        cams, lambda node: start_host(node, kind="simulated"), camera_nodes, tick_s=0.25
    )
    t0 = time.monotonic()
    coordinator.start()
    try:
        while time.monotonic() - t0 < 60 and len(coordinator.status().running()) < 1000:
            time.sleep(0.1)
        placed_s = time.monotonic() - t0
        status = coordinator.status()
        assert len(status.running()) == 1000, len(status.running())
        load = Counter(status.placement.values())
        assert sorted(load.values()) == [333, 333, 334], load
        assert placed_s < 30
        victim = next(n for n in sim_cluster.worker_nodes if n.node_id == max(load))
        gone = load[victim.node_id]
        killed = time.monotonic()
        sim_cluster.remove_node(victim)
        while time.monotonic() - killed < 60:
            s = coordinator.status()
            if len(s.moves) == gone and all(m.running_at is not None for m in s.moves):
                break
            time.sleep(0.1)
        replaced_s = time.monotonic() - killed
        s = coordinator.status()
        assert len(s.running()) == 1000 and not s.unplaced
        assert victim.node_id not in s.placement.values()
        assert len(s.moves) == gone and all(m.running_at is not None for m in s.moves)
        assert replaced_s < 30, replaced_s
        # Nothing that ran elsewhere moved.
        assert {m.camera_id for m in s.moves} == {
            c for c, n in status.placement.items() if n == victim.node_id
        }
    finally:
        coordinator.stop()
        disconnect()


def test_camera_host_starts_and_stops_what_it_is_assigned(
    tmp_path: Path,
    models_dir: Path,
    distress_clip: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    """The host without Ray: assignments start and stop cameras, unknown ids are refused
    before anything changes, and stopping stores the incident and says so in its report."""
    from raksha.cluster.host import CameraHost, host_spool
    from test_run_pipeline import camera, write_config

    cams = [camera("cam-a", distress_clip.path), camera("cam-b", distress_clip.path)]
    url = f"sqlite:///{tmp_path / 'raksha.db'}"
    cfg = load_run_config(write_config(tmp_path / "raksha.yaml", cams, url))
    host = CameraHost(cfg, host_id="node-1/x", models_dir=models_dir, exit_at_end=True)
    try:
        assert host_spool(cfg, "node-1/x").name == "raksha-incident-spool-node-1_x.db"
        assert host.assign(["cam-a"]) == ["cam-a"]
        with pytest.raises(ConfigError, match="no enabled camera cam-z"):
            host.assign(["cam-a", "cam-z"])
        assert [c.camera_id for c in host.report().cameras] == ["cam-a"]
        deadline = time.monotonic() + 60
        while not host.report().cameras[0].ended and time.monotonic() < deadline:
            time.sleep(0.1)
        (a,) = host.report().cameras
        assert a.ended and not a.running and a.frames > 0 and a.events == 1
        assert host.assign(["cam-b"], generation=5) == ["cam-b"]
        # An older assignment arriving late changes nothing.
        assert host.assign(["cam-a"], generation=3) == ["cam-b"]
        assert host.report().generation == 5
    finally:
        last = host.stop()
    assert [c.camera_id for c in last.cameras] == ["cam-b"]
    assert last.pid == os.getpid() and last.cpu_s > 0
    assert _per_camera(url)["cam-a"] == 1
    with pytest.raises(ConfigError, match="stopped"):
        host.assign(["cam-a"])


@pytest.mark.parametrize(
    ("address", "storage", "message"),
    [
        ("http://head:1", "postgresql://postgres@127.0.0.1/test", "expected auto, ray://"),
        ("auto", "sqlite", "a cluster run needs a store every node reaches"),
    ],
)
def test_raksha_run_cluster_refuses_bad_input_in_one_line(
    tmp_path: Path, models_dir: Path, address: str, storage: str, message: str
) -> None:
    from test_run_pipeline import camera, run_cli, write_config

    url = f"sqlite:///{tmp_path / 'r.db'}" if storage == "sqlite" else storage
    cfg = write_config(tmp_path / "raksha.yaml", [camera("cam-1", tmp_path / "x.mp4")], url)
    proc = run_cli(
        "run", "--config", str(cfg), "--cluster", address, "--no-table", models_dir=models_dir
    )
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_a_node_without_the_evidence_key_hosts_no_camera_and_says_why(
    tmp_path: Path,
    distress_clip: Any,  # noqa: F811  (the fixture imported above)
    ray_cluster: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A host whose node lacks a secret refuses to start, naming what is missing (never its
    value); its cameras stay unplaced and the node is tried again later."""
    from raksha.cluster.coordinator import CameraSpec, Coordinator
    from raksha.cluster.ray_hosts import camera_nodes, connect, disconnect, start_host
    from test_run_pipeline import camera, write_config

    cfg = load_run_config(
        write_config(
            tmp_path / "raksha.yaml",
            [camera("cam-a", distress_clip.path)],
            f"sqlite:///{tmp_path / 'r.db'}",
        )
    )
    bad = cfg.model_copy(
        update={"evidence": cfg.evidence.model_copy(update={"key_env": "RAKSHA_NO_SUCH_KEY"})}
    ).model_dump(mode="json")
    connect(ray_cluster.address)
    coordinator = Coordinator(
        [CameraSpec("cam-a", is_file=True)],
        lambda node: start_host(node, cfg_json=bad),
        camera_nodes,
        retry_s=600,
    )
    caplog.set_level("ERROR", logger="raksha.cluster.coordinator")
    coordinator.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            refused = [r for r in caplog.records if "could not start" in r.getMessage()]
            if len(refused) == 2:
                break
            time.sleep(0.2)
        status = coordinator.status()
    finally:
        coordinator.stop()
        disconnect()
    assert len(refused) == 2, [r.getMessage() for r in caplog.records]
    assert all("RAKSHA_NO_SUCH_KEY" in r.getMessage() for r in refused)
    assert status.hosts_ready == 0 and status.unplaced == ["cam-a"]
    assert status.placement == {}


def test_relative_paths_are_made_absolute_for_the_hosts(tmp_path: Path) -> None:
    from raksha.cluster.run import absolute_file_cameras, absolute_paths
    from test_run_pipeline import camera, write_config

    cfg = load_run_config(
        write_config(tmp_path / "raksha.yaml", [camera("cam-1", "x.mp4")], "sqlite:///r.db")
    )
    cfg = cfg.model_copy(
        update={
            "evidence": cfg.evidence.model_copy(update={"dir": Path("ev"), "key_file": None}),
            "incidents": cfg.incidents.model_copy(update={"spool": Path("spool/s.db")}),
        }
    )
    out = absolute_paths(cfg, Path("/srv/raksha"))
    assert out.evidence.dir == Path("/srv/raksha/ev")
    assert out.incidents.spool == Path("/srv/raksha/spool/s.db")
    assert out.cameras == cfg.cameras and out.storage == cfg.storage
    assert absolute_paths(out, Path("/elsewhere")) == out  # absolute ones stay
    files = absolute_file_cameras(out, Path("/srv/raksha"))
    assert [c.url for c in files.cameras] == ["/srv/raksha/x.mp4"]


def test_a_cluster_run_refuses_passwords_written_into_camera_urls(tmp_path: Path) -> None:
    from raksha.cluster.run import check_no_literal_secrets
    from test_run_pipeline import camera, write_config

    cams = [camera("cam-1", "rtsp://admin:hunter2@10.0.0.5/s1"), camera("cam-2", "x.mp4")]
    cams[0]["enabled"] = False  # a disabled camera's URL travels all the same
    cfg = load_run_config(write_config(tmp_path / "raksha.yaml", cams, "sqlite:///r.db"))
    with pytest.raises(ConfigError, match="cameras cam-1: a cluster run") as err:
        check_no_literal_secrets(cfg)
    assert "hunter2" not in str(err.value)


@pytest.mark.slow
def test_a_second_coordinator_of_the_same_cluster_is_refused(ray_cluster: Any) -> None:
    from raksha.cluster.ray_hosts import (
        connect,
        disconnect,
        hold_coordination,
        release_coordination,
    )

    connect(ray_cluster.address)
    try:
        lease = hold_coordination()
        with pytest.raises(ConfigError, match="another raksha run --cluster"):
            hold_coordination()
        release_coordination(lease)
        deadline = time.monotonic() + 30
        while True:  # the name is free again once the actor is gone
            try:
                release_coordination(hold_coordination())
                break
            except ConfigError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        disconnect()


@pytest.mark.slow
def test_raksha_run_cluster_from_the_command_line(
    tmp_path: Path,
    models_dir: Path,
    distress_clip: Any,  # noqa: F811  (the fixture imported above)
    ray_cluster: Any,
) -> None:
    """`raksha run --cluster ADDRESS --exit-at-end` as an operator runs it: another process
    joins the loopback cluster, both file cameras run on its nodes, the summary names each
    camera's node, and the incidents are stored."""
    from test_run_pipeline import camera, run_cli, write_config

    cams = [camera("cam-north", distress_clip.path), camera("cam-south", distress_clip.path)]
    with pg_schema_url() as url:
        cfg = write_config(tmp_path / "raksha.yaml", cams, url)
        proc = run_cli(
            "run",
            "--config",
            str(cfg),
            "--cluster",
            ray_cluster.address,
            "--exit-at-end",
            "--no-table",
            models_dir=models_dir,
            timeout=240,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        assert "2 new incident(s) stored" in proc.stdout, out[-3000:]
        for cam in ("cam-north", "cam-south"):
            line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(f"camera {cam} "))
            assert "(node " in line and " events (ok)" in line, line
        assert _per_camera(url) == {"cam-north": 1, "cam-south": 1}
        assert "Traceback" not in out


def test_the_coordinator_needs_no_models_camera_secrets_or_evidence_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The head runs no camera: its runtime starts without the models, the cameras'
    passwords or the evidence key, which a single `raksha run` refuses to start without."""
    from raksha.app import build_runtime
    from raksha.pipeline.spool import Spool
    from test_run_pipeline import camera, write_config

    cams = [camera("cam-1", "rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.5/s1")]
    cfg = load_run_config(
        write_config(tmp_path / "raksha.yaml", cams, f"sqlite:///{tmp_path / 'r.db'}")
    )
    cfg = cfg.model_copy(
        update={"incidents": cfg.incidents.model_copy(update={"spool": tmp_path / "s.db"})}
    )
    spool = Spool(tmp_path / "s.db")
    spool.put("i-1", {"files": []})
    spool.close()
    bare: dict[str, str] = {}  # no CAM_USER, CAM_PASS, RAKSHA_EVIDENCE_KEY
    with pytest.raises(ConfigError) as refused:
        build_runtime(cfg, models_dir=tmp_path / "no-models", env=bare)
    for need in ("CAM_USER", "evidence"):
        assert need in str(refused.value)
    caplog.set_level("WARNING", logger="raksha.app")
    runtime = build_runtime(cfg, models_dir=tmp_path / "no-models", env=bare, local_cameras=False)
    try:
        assert runtime.sink is None and runtime.pipelines == []
        assert any("1 incident(s) from an earlier run" in r.getMessage() for r in caplog.records)
        runtime.start()
    finally:
        runtime.stop(drain_s=0.5)

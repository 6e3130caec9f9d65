"""The Ray side of a cluster run: connecting, the nodes that may run cameras, and one host
actor per node.

A node says how many cameras it may run with a custom resource, `raksha_cameras`
(`ray start --resources '{"raksha_cameras": 16}'`). When no node declares it, every node
with CPUs gets `CAMERAS_PER_CPU` cameras per CPU. The host actor is pinned to its node
(never moved by Ray: a lost node's cameras are re-placed by the coordinator on the hosts that
are left) and is never restarted by Ray (the coordinator makes a new one when the node is
back).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raksha.errors import ConfigError

log = logging.getLogger(__name__)

#: The node resource that declares how many cameras a node may run.
CAMERA_RESOURCE = "raksha_cameras"
#: Cameras per CPU on nodes that declare nothing (`benchmarks/cameras.py`: 10 cameras used
#: 0.60 of this project's 2-core machine at 5 fps, about 8 per core).
CAMERAS_PER_CPU = 8
#: Calls a host actor serves at once (a report while an assignment starts cameras).
HOST_CONCURRENCY = 4

_ADDRESS = re.compile(r"^(auto|ray://[A-Za-z0-9.\-\[\]:]+:\d{1,5}|[A-Za-z0-9.\-\[\]:]+:\d{1,5})$")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    address: str
    #: Cameras this node may run (0: none, e.g. a head node kept for the control plane).
    capacity: int


def check_address(address: str) -> str:
    """`auto` (the cluster this machine belongs to), `ray://HOST:PORT` (Ray Client) or
    `HOST:PORT` (the head's GCS); anything else is refused with what is accepted."""
    if not _ADDRESS.match(address):
        raise ConfigError(
            f"--cluster {address!r}: expected auto, ray://HOST:PORT or HOST:PORT (the head node)"
        )
    return address


def connect(address: str) -> None:
    """Join the Ray cluster at `address` as its driver. Ray's usage statistics are turned
    off for a cluster this call starts; a running cluster follows its head node's setting
    (`RAY_USAGE_STATS_ENABLED=0` there: docs/deploy-cluster.md)."""
    check_address(address)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if ray.is_initialized():
        return
    try:
        ray.init(
            address=address,
            namespace="raksha",
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"--cluster {address}: no Ray cluster to join ({reason}); start its head with "
            "`ray start --head` (see docs/deploy-cluster.md)"
        ) from None


def disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


def node_capacity(resources: Mapping[str, float], declared_anywhere: bool) -> int:
    if declared_anywhere:
        return int(resources.get(CAMERA_RESOURCE, 0))
    return int(resources.get("CPU", 0) * CAMERAS_PER_CPU)


def camera_nodes() -> list[NodeInfo]:
    """The live nodes of the cluster and how many cameras each may run."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    declared = any(CAMERA_RESOURCE in n.get("Resources", {}) for n in nodes)
    return [
        NodeInfo(
            node_id=str(n["NodeID"]),
            address=str(n.get("NodeManagerAddress", "")),
            capacity=node_capacity(n.get("Resources", {}), declared),
        )
        for n in nodes
    ]


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=HOST_CONCURRENCY)  # type: ignore[call-overload]
class HostActor:
    """A camera host (or, for the simulation, a simulated one) in a Ray worker process."""

    def __init__(
        self,
        kind: str,
        host_id: str,
        cfg_json: dict[str, Any] | None,
        models_dir: str | None,
        exit_at_end: bool,
    ) -> None:
        # Raksha's own messages (cameras started, incidents stored) reach the driver's log;
        # the libraries' (alembic's migration chatter) only from warnings up.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("raksha").setLevel(logging.INFO)
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        self.host: Any
        if kind == "simulated":
            from raksha.cluster.sim import SimulatedHost

            self.host = SimulatedHost(host_id)
            return
        from raksha.cluster.host import CameraHost
        from raksha.config import RunConfig

        assert cfg_json is not None
        self.host = CameraHost(
            RunConfig.model_validate(cfg_json),
            host_id=host_id,
            models_dir=Path(models_dir) if models_dir else None,
            exit_at_end=exit_at_end,
        )

    def ready(self) -> str:
        return str(self.host.host_id)

    def assign(self, camera_ids: list[str], generation: int = 0) -> list[str]:
        return list(self.host.assign(camera_ids, generation))

    def report(self) -> Any:
        return self.host.report()

    def stop(self) -> Any:
        return self.host.stop()


def start_host(
    node: NodeInfo,
    *,
    kind: str = "cameras",
    cfg_json: dict[str, Any] | None = None,
    models_dir: Path | None = None,
    exit_at_end: bool = False,
) -> Any:
    """A new host actor on `node` (its handle; `ready` answers once it has loaded)."""
    host_id = f"node-{node.node_id[:12]}"
    return HostActor.options(  # type: ignore[attr-defined]
        scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        name=None,
    ).remote(kind, host_id, cfg_json, None if models_dir is None else str(models_dir), exit_at_end)


#: The name of the actor that marks the one `raksha run --cluster` coordinating a cluster.
LEASE_NAME = "raksha-coordinator"


@ray.remote(num_cpus=0, max_restarts=0)
class _Lease:
    """Held by the coordinating process while it runs (it dies with that process)."""

    def held(self) -> bool:
        return True


def hold_coordination() -> Any:
    """Become the cluster's one coordinator; a second `raksha run --cluster` against the same
    cluster would run every camera twice, so it is refused."""
    try:
        lease = _Lease.options(name=LEASE_NAME, namespace="raksha").remote()  # type: ignore[attr-defined]
        ray.get(lease.held.remote(), timeout=60)
    except ValueError:
        raise ConfigError(
            "another raksha run --cluster already coordinates this cluster; stop it first "
            "(two would run every camera twice)"
        ) from None
    return lease


def release_coordination(lease: Any) -> None:
    if lease is not None:
        with contextlib.suppress(Exception):
            ray.kill(lease)

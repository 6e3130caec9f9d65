"""`raksha run --cluster ADDRESS`: this process keeps the store, the outbox dispatcher and the
timers (the runtime without local cameras) and coordinates the cluster's camera hosts."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from raksha.app import build_runtime
from raksha.cluster.coordinator import CameraSpec, Coordinator
from raksha.cluster.ray_hosts import (
    camera_nodes,
    check_address,
    connect,
    disconnect,
    start_host,
)
from raksha.config import RunConfig
from raksha.errors import ConfigError, RakshaError
from raksha.pipeline.runtime import Runtime
from raksha.site.load import load_site_secrets, storage_url
from raksha.sources.targets import SourceKind, parse_target
from raksha.store.engine import parse_url
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)

#: Seconds between outbox rounds in a cluster run (hosts store incidents in other processes
#: and cannot wake this one's dispatcher, so it looks more often).
DISPATCH_EVERY_S = 0.5


class ClusterCoordination:
    """The coordinator as one of the runtime's background services: started with it,
    stopped (hosts first, so their incidents are stored) before its store closes."""

    def __init__(self, coordinator: Coordinator, store: IncidentStore) -> None:
        self.coordinator = coordinator
        self.store = store
        self._started = datetime.now(UTC)

    def start(self) -> None:
        self._started = datetime.now(UTC)
        self.coordinator.start()

    def stop(self) -> None:
        try:
            self.coordinator.stop()
        finally:
            disconnect()
        try:  # what the hosts opened, for the run's summary line
            opened = self.store.list_incidents(since=self._started, limit=None)
            self.coordinator.opened = len(opened)
        except RakshaError as exc:
            log.warning("cannot count this run's incidents: %s", exc)


def check_shared_store(cfg: RunConfig, env: Mapping[str, str]) -> None:
    url = parse_url(storage_url(cfg, env, load_site_secrets(cfg)))
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            "storage.url: a cluster run needs a store every node reaches; "
            f"{url.get_backend_name()} is local to one machine, use PostgreSQL"
        )


def cluster_runtime(
    cfg: RunConfig,
    address: str,
    *,
    models_dir: Path | None = None,
    exit_at_end: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[Runtime, Coordinator]:
    """The runtime of the coordinating process and its coordinator (not started)."""
    env = os.environ if env is None else env
    check_address(address)
    check_shared_store(cfg, env)
    runtime = build_runtime(
        cfg, models_dir=models_dir, exit_at_end=exit_at_end, env=env, local_cameras=False
    )
    runtime.dispatch_every_s = DISPATCH_EVERY_S
    try:
        connect(address)
    except ConfigError:
        runtime.store.close()
        raise
    cfg_json = cfg.model_dump(mode="json")
    cameras = [
        CameraSpec(c.id, parse_target(c.url).kind is SourceKind.FILE)
        for c in cfg.cameras
        if c.enabled
    ]
    coordinator = Coordinator(
        cameras,
        lambda node: start_host(
            node, cfg_json=cfg_json, models_dir=models_dir, exit_at_end=exit_at_end
        ),
        camera_nodes,
        exit_at_end=exit_at_end,
    )
    runtime.background.append(ClusterCoordination(coordinator, runtime.store))
    runtime.done = coordinator.done  # (never done without exit_at_end: until stopped)
    return runtime, coordinator

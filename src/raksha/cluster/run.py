"""`raksha run --cluster ADDRESS`: this process keeps the store, the outbox dispatcher and the
timers (the runtime without local cameras) and coordinates the cluster's camera hosts."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from ray.exceptions import RayError

from raksha.app import build_runtime
from raksha.cluster.coordinator import CameraSpec, Coordinator
from raksha.cluster.ray_hosts import (
    camera_nodes,
    check_address,
    connect,
    disconnect,
    hold_coordination,
    release_coordination,
    start_host,
)
from raksha.config import RunConfig
from raksha.errors import ConfigError, RakshaError
from raksha.pipeline.runtime import Runtime
from raksha.redact import has_literal_secret
from raksha.site.load import load_site_secrets, storage_url
from raksha.sources.targets import SourceKind, parse_target
from raksha.store.engine import parse_url
from raksha.store.repository import IncidentStore

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

#: Seconds between outbox rounds in a cluster run (hosts store incidents in other processes
#: and cannot wake this one's dispatcher, so it looks more often).
DISPATCH_EVERY_S = 0.5


class ClusterCoordination:
    """The coordinator as one of the runtime's background services: started with it,
    stopped (hosts first, so their incidents are stored) before its store closes."""

    def __init__(self, coordinator: Coordinator, store: IncidentStore, lease: Any = None) -> None:
        self.coordinator = coordinator
        self.store = store
        #: The named actor that marks this process as the cluster's one coordinator.
        self.lease = lease
        self._started = datetime.now(UTC)

    def start(self) -> None:
        self._started = datetime.now(UTC)
        self.coordinator.start()

    def stop(self) -> None:
        try:
            self.coordinator.stop()
        finally:
            release_coordination(self.lease)
            disconnect()
        try:  # what the hosts opened, for the run's summary line
            opened = self.store.list_incidents(since=self._started, limit=None)
            self.coordinator.opened = len(opened)
        except RakshaError as exc:
            log.warning("cannot count this run's incidents: %s", exc)


def absolute_paths(model: M, base: Path) -> M:
    """`model` with every relative path in it (at any depth) made absolute against `base`:
    the hosts run in Ray's working folders, not in the one `raksha run` started in."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            update[name] = base / value
        elif isinstance(value, BaseModel):
            new = absolute_paths(value, base)
            if new is not value:
                update[name] = new
        elif isinstance(value, tuple | list) and any(isinstance(v, BaseModel) for v in value):
            items = [absolute_paths(v, base) if isinstance(v, BaseModel) else v for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                update[name] = type(value)(items)
    return model.model_copy(update=update) if update else model


def absolute_file_cameras(cfg: RunConfig, base: Path) -> RunConfig:
    """File cameras given by a relative path, made absolute against `base` (the hosts run
    in Ray's working folders)."""
    cams = []
    for cam in cfg.cameras:
        target = parse_target(cam.url)
        if target.kind is SourceKind.FILE and not Path(target.location).is_absolute():
            cam = cam.model_copy(update={"url": str(base / target.location)})
        cams.append(cam)
    return cfg.model_copy(update={"cameras": type(cfg.cameras)(cams)})


def check_no_literal_secrets(cfg: RunConfig) -> None:
    """The config travels to every node: a password written into a camera URL would too."""
    held = [c.id for c in cfg.cameras if has_literal_secret(c.url)]
    if held:
        raise ConfigError(
            f"cameras {', '.join(held)}: a cluster run sends the config to every node, and "
            "these camera URLs hold a credential; move it to the environment or the secrets "
            "file as ${NAME} placeholders"
        )


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
    check_no_literal_secrets(cfg)
    cfg = absolute_file_cameras(absolute_paths(cfg, Path.cwd()), Path.cwd())
    if models_dir is not None:
        models_dir = models_dir.resolve()
    runtime = build_runtime(
        cfg, models_dir=models_dir, exit_at_end=exit_at_end, env=env, local_cameras=False
    )
    runtime.dispatch_every_s = DISPATCH_EVERY_S
    try:
        connect(address)
        lease = hold_coordination()
    except (ConfigError, RayError) as exc:
        runtime.store.close()
        disconnect()
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"--cluster {address}: {type(exc).__name__}: {exc}") from None
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
    runtime.background.append(ClusterCoordination(coordinator, runtime.store, lease))
    runtime.done = coordinator.done  # (never done without exit_at_end: until stopped)
    return runtime, coordinator

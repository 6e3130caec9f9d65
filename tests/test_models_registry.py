"""The model registry and `raksha models`, on the real weights in ../shared/models."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from raksha import models as registry
from raksha.cli import app
from raksha.errors import ModelError

EXPECTED_NAMES = {
    "yunet-s",
    "yunet-n",
    "ultraface-rfb-320",
    "fer-mini-xception",
    "fer-big-xception",
    "mobileface-v2",
}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty RAKSHA_MODELS and home cache, so that only the directories a test fills count."""
    env_dir = tmp_path / "env-models"
    home = tmp_path / "home"
    env_dir.mkdir()
    home.mkdir()
    monkeypatch.setenv("RAKSHA_MODELS", str(env_dir))
    monkeypatch.setenv("HOME", str(home))
    return {"env": env_dir, "cache": home / ".cache" / "raksha" / "models"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(models_dir: Path, name: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    file = registry.get_entry(name).file
    return Path(shutil.copy2(models_dir / file, dest / file))


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# --- entries ---------------------------------------------------------------------------------


def test_builtin_entries_match_manifest_and_files(models_dir: Path) -> None:
    manifest = (models_dir / "MANIFEST.md").read_text(encoding="utf-8")
    listed: dict[str, tuple[str, int]] = {}
    for line in manifest.splitlines():
        m = re.match(r"\| `([^`]+\.onnx)` \|", line)
        if m:
            sha = re.search(r"\b([0-9a-f]{64})\b", line)
            size = re.search(r"\| ([\d,]+) \|", line)
            assert sha and size, line
            listed[m.group(1)] = (sha.group(1), int(size.group(1).replace(",", "")))
    assert len(listed) == 6

    builtin = {e.name: e for e in registry.BUILTIN}
    assert set(builtin) == EXPECTED_NAMES
    assert {e.file for e in builtin.values()} == set(listed)
    assert builtin["yunet-s"].file == "face_detection_yunet_2023mar.onnx"
    for e in builtin.values():
        assert (e.sha256, e.size) == listed[e.file], e.name
        assert _sha256(models_dir / e.file) == e.sha256
        assert e.source is not None
        assert re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/", e.source)
        assert e.task in {"face-detection", "expression", "face-embedding"}
        assert e.license and e.description
    # Only verbatim upstream files can be fetched; converted ones say how they were made.
    fetchable = {n for n, e in builtin.items() if e.fetch_url is not None}
    assert fetchable == {"yunet-s", "yunet-n", "ultraface-rfb-320"}
    assert all(builtin[n].conversion for n in EXPECTED_NAMES - fetchable)


def test_present_model_verifies(models_dir: Path, isolated: dict[str, Path]) -> None:
    for name in EXPECTED_NAMES:
        path = registry.model_path(name, models_dir)
        assert path == models_dir / registry.get_entry(name).file
        assert registry.verify(name, models_dir).status == "present"


def test_lookup_order(models_dir: Path, isolated: dict[str, Path], tmp_path: Path) -> None:
    cached = _copy(models_dir, "yunet-s", isolated["cache"])
    assert registry.model_path("yunet-s") == cached
    in_env = _copy(models_dir, "yunet-s", isolated["env"])
    assert registry.model_path("yunet-s") == in_env
    explicit = _copy(models_dir, "yunet-s", tmp_path / "explicit")
    assert registry.model_path("yunet-s", tmp_path / "explicit") == explicit
    dirs = registry.search_dirs(tmp_path / "explicit")
    assert dirs[:3] == [tmp_path / "explicit", isolated["env"], isolated["cache"]]
    assert dirs[3] == registry.PACKAGED_DIR


def test_corrupt_model_names_file_and_both_hashes(
    models_dir: Path, isolated: dict[str, Path], tmp_path: Path
) -> None:
    bad = _copy(models_dir, "fer-mini-xception", tmp_path / "m")
    _flip_byte(bad)
    expected = registry.get_entry("fer-mini-xception").sha256
    with pytest.raises(ModelError) as err:
        registry.model_path("fer-mini-xception", tmp_path / "m")
    msg = str(err.value)
    assert "sha256" in msg and str(bad) in msg
    assert expected in msg and _sha256(bad) in msg
    assert "\n" not in msg


def test_missing_model_lists_searched_dirs_and_remedies(
    isolated: dict[str, Path], tmp_path: Path
) -> None:
    empty = tmp_path / "nothing-here"
    with pytest.raises(ModelError) as err:
        registry.model_path("yunet-s", empty)
    msg = str(err.value)
    for d in (empty, isolated["env"], isolated["cache"], registry.PACKAGED_DIR):
        assert str(d) in msg
    assert "raksha models fetch yunet-s" in msg
    assert "RAKSHA_MODELS" in msg
    assert "face_detection_yunet_2023mar.onnx" in msg
    # A converted model cannot be fetched, so the message must not suggest it.
    with pytest.raises(ModelError) as err2:
        registry.model_path("fer-big-xception", empty)
    assert "raksha models fetch" not in str(err2.value)
    assert "copy fer_big_xception_fer2013.onnx" in str(err2.value)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ModelError) as err:
        registry.model_path("no-such-model")
    msg = str(err.value)
    assert "no-such-model" in msg
    for name in EXPECTED_NAMES:
        assert name in msg


def test_hash_is_cached_by_path_size_mtime(
    models_dir: Path, isolated: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(models_dir, "yunet-n", tmp_path / "m")
    assert registry.verify("yunet-n", tmp_path / "m").ok
    st = path.stat()
    # Change a byte but keep size and mtime: the cached hash is used, so no re-hash happens.
    _flip_byte(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert registry.verify("yunet-n", tmp_path / "m").ok
    # A new mtime invalidates the cache entry and the corruption is found.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert registry.verify("yunet-n", tmp_path / "m").status == "corrupt"


# --- model cards -----------------------------------------------------------------------------


def test_model_cards_become_entries(tmp_path: Path) -> None:
    card = {
        "name": "raksha-fer-test",
        "task": "expression",
        "file": "raksha-fer-test.onnx",
        "sha256": "ab" * 32,
        "license": "Apache-2.0",
        "metrics": {"acc": 0.7},
    }
    (tmp_path / "raksha-fer-test.json").write_text(json.dumps(card))
    (tmp_path / "broken.json").write_text("{not json")
    entries = registry.discover_cards(tmp_path)
    assert [e.name for e in entries] == ["raksha-fer-test"]
    e = entries[0]
    assert (e.file, e.sha256, e.task, e.license) == (
        "raksha-fer-test.onnx",
        "ab" * 32,
        "expression",
        "Apache-2.0",
    )
    assert e.card == tmp_path / "raksha-fer-test.json"
    assert e.fetch_url is None
    # Whatever the package ships is part of the registry.
    names = {m.name for m in registry.list_models()}
    assert {p.name for p in registry.discover_cards(registry.PACKAGED_DIR)} <= names
    assert names >= EXPECTED_NAMES


# --- fetch from a local server ---------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a temporary folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_fetch_downloads_and_verifies(
    models_dir: Path, served: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = served
    _copy(models_dir, "yunet-s", root)
    dest = tmp_path / "dest"
    got = registry.fetch("yunet-s", dest, url=f"{base}/face_detection_yunet_2023mar.onnx")
    assert got == dest / "face_detection_yunet_2023mar.onnx"
    assert _sha256(got) == registry.get_entry("yunet-s").sha256
    assert sorted(p.name for p in dest.iterdir()) == [got.name]


def test_fetch_rejects_wrong_hash_and_leaves_nothing(
    models_dir: Path, served: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = served
    # Serve YuNet-n's bytes under YuNet-s's name.
    shutil.copy(models_dir / "yunet_n_640_640.onnx", root / "face_detection_yunet_2023mar.onnx")
    dest = tmp_path / "dest"
    with pytest.raises(ModelError) as err:
        registry.fetch("yunet-s", dest, url=f"{base}/face_detection_yunet_2023mar.onnx")
    msg = str(err.value)
    assert "sha256" in msg and registry.get_entry("yunet-s").sha256 in msg
    assert list(dest.iterdir()) == []
    with pytest.raises(ModelError, match="HTTP 404"):
        registry.fetch("yunet-s", dest, url=f"{base}/missing.onnx")
    assert list(dest.iterdir()) == []


def test_fetch_refuses_converted_model_without_url(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot be fetched"):
        registry.fetch("fer-mini-xception", tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- CLI ------------------------------------------------------------------------------------


def test_cli_list_json_and_table(models_dir: Path, isolated: dict[str, Path]) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["models", "list", "--models", str(models_dir), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert set(rows) >= EXPECTED_NAMES
    assert all(rows[n]["status"] == "present" for n in EXPECTED_NAMES)

    res = runner.invoke(app, ["models", "list", "--models", str(isolated["env"] / "x")])
    assert res.exit_code == 0, res.output
    assert "yunet-s" in res.stdout and "missing" in res.stdout


def test_cli_verify_exit_codes(models_dir: Path, isolated: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["models", "verify", "--models", str(models_dir)])
    assert res.exit_code == 0, res.output

    bad_dir = tmp_path / "bad"
    _flip_byte(_copy(models_dir, "yunet-s", bad_dir))
    res = runner.invoke(app, ["models", "verify", "--models", str(bad_dir), "yunet-s", "yunet-n"])
    assert res.exit_code == 2
    problems = res.stderr.strip().splitlines()
    assert len(problems) == 2  # one corrupt, one missing
    assert "corrupt" in problems[0] and "sha256" in problems[0]
    assert "not found" in problems[1]

    res = runner.invoke(app, ["models", "verify", "no-such-model"])
    assert res.exit_code == 2 and "known models" in res.stderr


def test_cli_fetch(models_dir: Path, served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    _copy(models_dir, "ultraface-rfb-320", root)
    dest = tmp_path / "dest"
    url = f"{base}/ultraface_version-RFB-320.onnx"
    runner = CliRunner()
    res = runner.invoke(
        app, ["models", "fetch", "ultraface-rfb-320", "--models", str(dest), "--url", url]
    )
    assert res.exit_code == 0, res.output
    assert (dest / "ultraface_version-RFB-320.onnx").is_file()
    res = runner.invoke(app, ["models", "fetch", "--models", str(dest)])
    assert res.exit_code == 2


@pytest.mark.slow
def test_console_script_exit_codes(
    models_dir: Path, isolated: dict[str, Path], tmp_path: Path
) -> None:
    # The script pip installed beside this interpreter, else the one on PATH.
    beside = Path(sys.executable).with_name("raksha")
    exe = str(beside) if beside.exists() else shutil.which("raksha")
    assert exe is not None, "the raksha console script is not installed (pip install -e .)"
    env = {**os.environ}
    ok = subprocess.run(
        [exe, "models", "verify", "--models", str(models_dir), "yunet-s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        [exe, "models", "verify", "--models", str(tmp_path / "empty"), "yunet-s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "not found in" in missing.stderr and "Traceback" not in missing.stderr

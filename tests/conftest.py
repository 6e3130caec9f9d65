"""Shared fixtures. Tests use real models and real data from ../shared.

Where ../shared is missing, a test that needs it is skipped on a developer's machine and
fails with a clear message in CI (CI=true), so a broken checkout never passes silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Evidence is encrypted by default: the tests' processes (and the CLI subprocesses they
# start) get one evidence key unless the environment has one; tests of a missing or wrong
# key pass their own environment.
if not os.environ.get("RAKSHA_EVIDENCE_KEY"):
    from cryptography.fernet import Fernet

    os.environ["RAKSHA_EVIDENCE_KEY"] = Fernet.generate_key().decode()
SHARED = Path(os.environ.get("RAKSHA_SHARED", REPO.parent / "shared")).resolve()


def _need(path: Path, what: str) -> Path:
    if path.exists():
        return path
    msg = (
        f"{what} not found at {path}. Tests need ../shared beside the checkout "
        "(or RAKSHA_SHARED pointing at it)."
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED, "the shared folder")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    env = os.environ.get("RAKSHA_MODELS")
    return _need(Path(env).resolve() if env else SHARED / "models", "the model directory")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _need(SHARED / "data", "the shared data folder")


@pytest.fixture(scope="session")
def videos_dir(data_dir: Path) -> Path:
    return _need(data_dir / "videos", "the sample videos")


@pytest.fixture(scope="session")
def faces_dir(data_dir: Path) -> Path:
    return _need(data_dir / "faces", "the sample face photos")

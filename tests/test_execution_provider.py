"""`execution.provider`: the detector's and the expression model's onnxruntime sessions run on
the provider asked for; `cuda` where onnxruntime has no CUDA provider (as here) is a one-line
error, never a silent fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
from pydantic import ValidationError

from raksha import ort_session
from raksha.app import preflight
from raksha.config import AnalysisConfig, RunConfig
from raksha.errors import ConfigError
from raksha.pipeline.analyzer import Models

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(autouse=True)
def cpu_afterwards() -> Iterator[None]:
    yield
    ort_session.use_provider("cpu")


def test_the_setting() -> None:
    assert AnalysisConfig().execution.provider == "cpu"
    assert AnalysisConfig.model_validate({"execution": {"provider": "cuda"}}).execution.provider
    with pytest.raises(ValidationError, match="provider"):
        AnalysisConfig.model_validate({"execution": {"provider": "tpu"}})


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has a CUDA provider")
def test_cuda_without_a_cuda_provider_is_a_one_line_error(models_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        ort_session.use_provider("cuda")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("execution.provider: cuda asked for")
    assert "CUDAExecutionProvider" in message and "execution.provider: cpu" in message
    assert ort_session.current_provider() == "cpu"  # unchanged
    cfg = AnalysisConfig.model_validate({"execution": {"provider": "cuda"}})
    with pytest.raises(ConfigError, match="cuda asked for"):
        Models.load(cfg, models_dir)
    run = RunConfig.model_validate({"execution": {"provider": "cuda"}})
    problems = preflight(run, models_dir=models_dir, env={})
    assert [p for p in problems if p.startswith("execution.provider: cuda asked for")]


class Cuda:
    """A CPU session that says it runs on CUDA (a CUDA machine, pretended)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def get_providers(self) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_cuda_listed_but_the_session_falls_back_to_the_cpu_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path
) -> None:
    """onnxruntime-gpu lists CUDA even where CUDA cannot start (no driver, no cuDNN), and
    then runs the session on the CPU: that is refused, not run silently on the CPU."""
    real = ort.InferenceSession

    def session(source: Any, sess_options: Any = None, providers: Any = None) -> Any:
        return real(source, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort, "InferenceSession", session)
    with pytest.raises(ConfigError) as err:
        Models.load(AnalysisConfig.model_validate({"execution": {"provider": "cuda"}}), models_dir)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("execution.provider: cuda asked for")
    assert "CUDAExecutionProvider" in message and "execution.provider: cpu" in message


def test_the_detector_and_expression_sessions_ask_for_the_provider(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path
) -> None:
    """With a CUDA provider present (pretended), the detector's and the expression model's
    sessions ask for it first and the CPU behind it; other sessions stay on the CPU."""
    asked: list[list[str]] = []
    real = ort.InferenceSession

    def session(source: Any, sess_options: Any = None, providers: Any = None) -> Any:
        asked.append(list(providers))
        return Cuda(real(source, sess_options=sess_options, providers=["CPUExecutionProvider"]))

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort, "InferenceSession", session)
    models = Models.load(
        AnalysisConfig.model_validate({"execution": {"provider": "cuda"}}), models_dir
    )
    assert models.detector is not None and models.classifier is not None
    assert asked and all(p == ["CUDAExecutionProvider", "CPUExecutionProvider"] for p in asked)
    asked.clear()
    ort_session.use_provider("cpu")
    Models.load(AnalysisConfig(), models_dir)
    assert asked and all(p == ["CPUExecutionProvider"] for p in asked)

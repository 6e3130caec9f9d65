"""One way to open an onnxruntime session, with load failures as ModelError.

Sessions run on the CPU provider. The face detector's and the expression model's sessions
(`accelerated=True`) run on the provider the config's `execution.provider` names instead
(`use_provider`, set once when a run or an analysis starts), with the CPU provider behind it
for any operator the accelerator lacks. Asking for `cuda` where onnxruntime has no CUDA
provider, or where a session asked for CUDA starts on the CPU anyway (onnxruntime-gpu lists
CUDA even where its libraries cannot load), is a one-line ConfigError, never a silent
fallback to the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from raksha.errors import ConfigError, ModelError

#: `execution.provider` values and onnxruntime's names for them.
PROVIDERS: Final[dict[str, str]] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
}
_CPU: Final = PROVIDERS["cpu"]

#: The provider of the accelerated sessions (`use_provider`).
_provider = "cpu"


def check_provider(provider: str) -> None:
    """Raise a one-line ConfigError when onnxruntime here cannot run `provider`."""
    if provider not in PROVIDERS:
        raise ConfigError(
            f"execution.provider: unknown provider {provider!r} (known: {', '.join(PROVIDERS)})"
        )
    if provider == "cpu":
        return
    import onnxruntime as ort

    available = list(ort.get_available_providers())
    if PROVIDERS[provider] not in available:
        raise ConfigError(
            f"execution.provider: {provider} asked for, but this onnxruntime has no "
            f"{PROVIDERS[provider]} (it has {', '.join(available) or 'none'}); install "
            f"onnxruntime-gpu with CUDA, or set execution.provider: cpu"
        )


def use_provider(provider: str) -> None:
    """Run the detector's and the expression model's sessions opened from now on on
    `provider` ("cpu" or "cuda"); ConfigError when onnxruntime here cannot."""
    global _provider
    check_provider(provider)
    _provider = provider


def current_provider() -> str:
    return _provider


def cpu_session(model: Path | bytes, threads: int, what: str, *, accelerated: bool = False) -> Any:
    """An onnxruntime session for `model` (a file, or a serialized model), with `threads`
    intra-op threads (0 = onnxruntime's default) and one inter-op thread, on the CPU provider
    (`accelerated`: on `execution.provider`'s, the CPU provider behind it). `what` names the
    model in the error raised when it cannot be loaded."""
    import onnxruntime as ort

    # Nothing leaves the premises: onnxruntime's own telemetry is off before any session.
    ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    providers = [_CPU]
    if accelerated and _provider != "cpu":
        providers = [PROVIDERS[_provider], _CPU]
    try:
        session = ort.InferenceSession(source, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {what}: {first}") from None
    if providers[0] != _CPU:
        # onnxruntime-gpu lists CUDA whether or not CUDA can start here (no driver, no
        # cuDNN), then quietly runs the session on the CPU: refuse that.
        got = list(session.get_providers())
        if not got or got[0] != providers[0]:
            raise ConfigError(
                f"execution.provider: {_provider} asked for, but onnxruntime could not start "
                f"{providers[0]} for {what} (it runs on {', '.join(got) or 'nothing'}); check "
                f"the GPU driver, CUDA and cuDNN, or set execution.provider: cpu"
            )
    return session

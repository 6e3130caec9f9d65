"""One way to open an onnxruntime CPU session, with load failures as ModelError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raksha.errors import ModelError


def cpu_session(model: Path | bytes, threads: int, what: str) -> Any:
    """An onnxruntime session on the CPU provider for `model` (a file, or a serialized model),
    with `threads` intra-op threads (0 = onnxruntime's default) and one inter-op thread.
    `what` names the model in the error raised when it cannot be loaded."""
    import onnxruntime as ort

    # Nothing leaves the premises: onnxruntime's own telemetry is off before any session.
    ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {what}: {first}") from None

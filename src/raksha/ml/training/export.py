"""Export a trained network to ONNX with its model card JSON, checking parity with PyTorch."""

from __future__ import annotations

import hashlib
import json
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import ModelError
from raksha.ml.training.loop import INPUT_OFFSET, INPUT_SCALE
from raksha.ml.training.model import WithSoftmax

PARITY_TOLERANCE = 1e-4


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(
    net: nn.Module,
    path: Path,
    size: int = 48,
    opset: int = 17,
    *,
    temperature: float = 1.0,
    flip_tta: bool = False,
) -> float:
    """Write ``net`` (logits) as an ONNX graph ``input`` (N,1,size,size) -> ``probs`` (N,8) with a
    dynamic batch axis (softmax of logits / ``temperature``, averaged over the mirrored face with
    ``flip_tta``); return the largest |ONNX - PyTorch| difference on random inputs, and raise
    ModelError if it exceeds PARITY_TOLERANCE."""
    import onnxruntime as ort

    wrapped = WithSoftmax(net, temperature, flip_tta).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 1, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapped,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["probs"],
            opset_version=opset,
            dynamic_axes={"input": {0: "batch"}, "probs": {0: "batch"}},
            dynamo=False,
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for n in (1, 7, 32):
        pix = torch.randint(0, 256, (n, 1, size, size), generator=gen).float()
        x = pix * INPUT_SCALE + INPUT_OFFSET
        with torch.no_grad():
            ref = wrapped(x).numpy()
        got = sess.run(["probs"], {"input": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    if worst > PARITY_TOLERANCE:
        raise ModelError(f"ONNX export of {path.name} differs from PyTorch by {worst:.2e}")
    return worst


def write_card(
    onnx_path: Path, name: str, extra: dict[str, Any] | None = None, size: int = 48
) -> Path:
    """Write ``<name>.json`` beside the ONNX file in the schema the runtime reads, plus ``extra``
    keys (training recipe, data, metrics, hardware, time, licence, intended use, limits)."""
    card: dict[str, Any] = {
        "name": name,
        "task": "expression",
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "classes": list(EXPRESSION_CLASSES),
        "input": {
            "name": "input",
            "layout": "NCHW",
            "size": size,
            "channels": 1,
            "scale": INPUT_SCALE,
            "offset": INPUT_OFFSET,
        },
        "output": {"name": "probs", "kind": "probs"},
        "crop": {"method": "box", "scale": 1.2},
    }
    card.update(extra or {})
    out = onnx_path.with_suffix(".json")
    out.write_text(json.dumps(card, indent=2) + "\n")
    return out


def hardware_description() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} (CPU)"

"""Turn a finished training run into a shippable model: best checkpoint -> calibrated ONNX +
model card (the recipe, data, timing and hardware are taken from the run's checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raksha.ml.evaluation.calibration import fit_temperature
from raksha.ml.evaluation.datasets import FaceDataset
from raksha.ml.training.export import export_onnx, hardware_description, write_card
from raksha.ml.training.loop import load_checkpoint_model, predict_probs
from raksha.ml.training.model import count_parameters


@dataclass(frozen=True, slots=True)
class Finalized:
    onnx: Path
    card: Path
    temperature: float
    parity_max_abs_diff: float
    val_accuracy: float | None


def _val_probs(net: torch.nn.Module, data: FaceDataset, flip_tta: bool) -> np.ndarray:
    probs = predict_probs(net, data.images)
    if flip_tta:
        probs = 0.5 * (probs + predict_probs(net, np.ascontiguousarray(data.images[:, :, ::-1])))
    return probs


def finalize_run(
    run_dir: Path,
    name: str,
    val_data: FaceDataset | None,
    *,
    flip_tta: bool = True,
    calibrate: bool = True,
    out_dir: Path | None = None,
    card_extra: dict[str, Any] | None = None,
) -> Finalized:
    """Export ``run_dir/best.pt`` to ``out_dir/<name>.onnx`` (default: the run folder) with its
    card. With ``calibrate`` and validation data, the softmax temperature is fitted on it."""
    net, best = load_checkpoint_model(run_dir / "best.pt")
    last: dict[str, Any] = {}
    if (run_dir / "last.pt").is_file():
        last = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
    temperature = 1.0
    val_acc: float | None = None
    if val_data is not None and len(val_data):
        raw = _val_probs(net, val_data, flip_tta)
        if calibrate:
            temperature = fit_temperature(raw, val_data.labels)
        keep = val_data.labels >= 0
        val_acc = float((raw[keep].argmax(axis=1) == val_data.labels[keep]).mean())
    target = (out_dir or run_dir) / f"{name}.onnx"
    diff = export_onnx(net, target, temperature=temperature, flip_tta=flip_tta)
    history = last.get("history", [])
    extra: dict[str, Any] = {
        "architecture": {
            "kind": "compact residual CNN (ExpressionNet)",
            "parameters": count_parameters(net),
            "widths": list(best["config"]["widths"]),
            "blocks": list(best["config"]["blocks"]),
            "export": {
                "opset": 17,
                "softmax_temperature": temperature,
                "mirror_averaging": flip_tta,
                "onnx_parity_max_abs_diff": diff,
            },
        },
        "training": {
            "recipe": best["config"],
            "best_epoch": best["epoch"],
            "epochs_run": last.get("epoch", best["epoch"]),
            "seconds": round(float(last.get("elapsed", 0.0)), 1),
            "hardware": hardware_description(),
            "best_val_accuracy_pytorch_no_tta": best.get("val_accuracy"),
            "val_accuracy_exported_recipe": val_acc,
            "history": history,
        },
    }
    extra.update(card_extra or {})
    card = write_card(target, name, extra)
    return Finalized(target, card, temperature, diff, val_acc)

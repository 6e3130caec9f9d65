"""Teach an expression network to give, in one forward pass, what a mirror-averaged model gives
in two.

The teacher is an exported `ExpressionNet` ONNX file (as `raksha train expression` writes it:
BatchNorm folded into the convolutions, softmax with a temperature, optionally averaged with the
mirrored face). `net_from_onnx` rebuilds the PyTorch network from that file, so the student can
start from the teacher's own weights: each folded convolution keeps its weight, and its bias
becomes the shift of a BatchNorm layer whose statistics are fixed at mean 0 and variance 1.
The training loop's `freeze_bn` keeps those statistics fixed while the affine parameters train.

`teacher_targets` runs the teacher over the training faces once (no augmentation) and mixes its
probabilities with the crowd votes; the ordinary training loop then fine-tunes the student on
those targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import ModelError
from raksha.ml.evaluation.datasets import FaceDataset
from raksha.ml.training.loop import INPUT_OFFSET, INPUT_SCALE
from raksha.ml.training.model import ExpressionNet, WithSoftmax
from raksha.ort_session import cpu_session

#: Largest |rebuilt PyTorch - ONNX| probability difference accepted by `net_from_onnx`.
REBUILD_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class RebuiltTeacher:
    net: ExpressionNet
    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    temperature: float
    flip_tta: bool
    max_abs_diff: float


def _conv_layers(model: Any) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(weight, bias, stride) of the Conv nodes of the first forward pass, in graph order.

    A mirror-averaging graph runs the same convolutions twice on the same initializers; the
    second pass is recognised by reusing an initializer already seen."""
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # The exporter hands the second pass its weights through Identity nodes.
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}
    seen: set[str] = set()
    convs: list[tuple[np.ndarray, np.ndarray, int]] = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        names = [alias.get(x, x) for x in node.input]
        if len(names) != 3 or names[1] not in init or names[2] not in init:
            raise ModelError("teacher: a Conv node lacks a folded weight and bias")
        if names[1] in seen:
            break
        seen.add(names[1])
        strides = [list(a.ints) for a in node.attribute if a.name == "strides"]
        stride = strides[0][0] if strides else 1
        convs.append((init[names[1]], init[names[2]], int(stride)))
    return convs


def _architecture(
    convs: list[tuple[np.ndarray, np.ndarray, int]],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """ExpressionNet widths and residual blocks per stage from the convolution sequence: a stem,
    then per stage one stride-2 convolution and pairs of width-preserving ones."""
    if not convs or convs[0][2] != 1:
        raise ModelError("teacher: the first convolution is not an ExpressionNet stem")
    widths = [int(convs[0][0].shape[0])]
    blocks: list[int] = []
    i = 1
    while i < len(convs):
        w, _, stride = convs[i]
        if stride != 2:
            raise ModelError(f"teacher: convolution {i} was expected to halve the size")
        widths.append(int(w.shape[0]))
        i += 1
        n = 0
        while i + 1 < len(convs) and convs[i][2] == 1 and convs[i + 1][2] == 1:
            n += 1
            i += 2
        blocks.append(n)
    return tuple(widths), tuple(blocks)


def _set_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, weight: np.ndarray, bias: np.ndarray) -> None:
    if tuple(conv.weight.shape) != weight.shape:
        raise ModelError(
            f"teacher: weight shape {weight.shape} does not fit {tuple(conv.weight.shape)}"
        )
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.array(weight, np.float32)))
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))
        mean, var = bn.running_mean, bn.running_var
        if mean is None or var is None:
            raise ModelError("teacher: a BatchNorm layer keeps no running statistics")
        mean.zero_()
        # (x - 0) / sqrt(var + eps) must be x: the variance is 1 - eps.
        var.fill_(1.0 - bn.eps)


def _read_card(onnx_path: Path) -> dict[str, Any]:
    import json

    card = onnx_path.with_suffix(".json")
    if not card.is_file():
        raise ModelError(f"teacher {onnx_path.name} has no model card beside it ({card.name})")
    doc: dict[str, Any] = json.loads(card.read_text(encoding="utf-8"))
    return doc


def net_from_onnx(onnx_path: Path) -> RebuiltTeacher:
    """The ExpressionNet an exported ONNX file was made from, checked against the file."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # protobuf DecodeError, OSError
        raise ModelError(f"cannot load teacher {onnx_path}: {exc}") from None
    card = _read_card(onnx_path)
    if list(card.get("classes", [])) != list(EXPRESSION_CLASSES):
        raise ModelError(
            f"teacher {onnx_path.name}: its classes {card.get('classes')} are not "
            f"{list(EXPRESSION_CLASSES)} in that order"
        )
    export = card.get("architecture", {}).get("export", {})
    temperature = float(export.get("softmax_temperature", 1.0))
    flip_tta = bool(export.get("mirror_averaging", False))
    convs = _conv_layers(model)
    widths, blocks = _architecture(convs)
    net = ExpressionNet(num_classes=len(EXPRESSION_CLASSES), widths=widths, blocks=blocks)
    # Convolutions and their BatchNorm layers in the order the exporter wrote them.
    mods = list(net.features.modules())
    conv_layers = [m for m in mods if isinstance(m, nn.Conv2d)]
    bn_layers = [m for m in mods if isinstance(m, nn.BatchNorm2d)]
    pairs = list(zip(conv_layers, bn_layers, strict=True))
    if len(pairs) != len(convs):
        raise ModelError(f"teacher: {len(convs)} convolutions, the network has {len(pairs)}")
    for (conv, bn), (w, b, _) in zip(pairs, convs, strict=True):
        _set_conv_bn(conv, bn, w, b)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if "net.head.weight" not in init or "net.head.bias" not in init:
        raise ModelError("teacher: no classifier head (net.head.weight / net.head.bias)")
    with torch.no_grad():
        net.head.weight.copy_(torch.from_numpy(np.array(init["net.head.weight"], np.float32)))
        net.head.bias.copy_(torch.from_numpy(np.array(init["net.head.bias"], np.float32)))
    net.eval()

    sess = cpu_session(onnx_path, 0, f"teacher {onnx_path}")
    wrapped = WithSoftmax(net, temperature, flip_tta).eval()
    gen = torch.Generator().manual_seed(0)
    pix = torch.randint(0, 256, (16, 1, 48, 48), generator=gen).float()
    x = pix * INPUT_SCALE + INPUT_OFFSET
    with torch.no_grad():
        ref = wrapped(x).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    if diff > REBUILD_TOLERANCE:
        raise ModelError(f"teacher {onnx_path.name}: rebuilt network differs by {diff:.2e}")
    return RebuiltTeacher(net, widths, blocks, temperature, flip_tta, diff)


def teacher_targets(
    teacher_onnx: Path, data: FaceDataset, weight: float, batch: int = 256
) -> tuple[FaceDataset, npt.NDArray[np.float32]]:
    """`data` with targets ``weight * teacher + (1 - weight) * votes``, and the teacher's
    probabilities (canonical class order) on its faces as they are (no augmentation)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError("teacher weight must be within 0..1")
    sess = cpu_session(teacher_onnx, 0, f"teacher {teacher_onnx}")
    name = sess.get_inputs()[0].name
    parts: list[npt.NDArray[np.float32]] = []
    for i in range(0, len(data), batch):
        x = data.images[i : i + batch].astype(np.float32)[:, None] * INPUT_SCALE + INPUT_OFFSET
        parts.append(np.asarray(sess.run(None, {name: x})[0], dtype=np.float32))
    probs = np.concatenate(parts) if parts else np.zeros((0, len(EXPRESSION_CLASSES)), np.float32)
    mixed = (weight * probs + (1.0 - weight) * data.targets).astype(np.float32)
    mixed /= np.maximum(mixed.sum(axis=1, keepdims=True), 1e-9)
    out = FaceDataset(names=data.names, images=data.images, labels=data.labels, targets=mixed)
    return out, probs

"""The two passes of a mirror-averaging expression model, as two models of their own.

The project's expression models are exported with mirror averaging inside the graph: the
face is read as it is and flipped left to right, and the two probability rows are averaged
(`probs = (softmax(f(x)) + softmax(f(flip(x)))) / 2`). Most faces are read with confidence
on the first pass alone, and the mirror pass changes nothing for them. `split_mirror_passes`
finds the two passes in such a graph and cuts each out as a model of its own (same weights,
same quantization), so the classifier can run the mirror pass only for the faces whose
first reading was unsure (`expression.mirror_below`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raksha.errors import ModelError


@dataclass(frozen=True, slots=True)
class MirrorPasses:
    """Serialized ONNX models of the two passes; each takes the model's input and gives one
    probability row per face (`output`)."""

    plain: bytes
    mirror: bytes
    output: str


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def _ancestors(graph: Any, tensor: str) -> list[Any]:
    """The nodes `tensor` is computed from (itself included), nearest first."""
    producers = _producers(graph)
    seen: set[str] = set()
    order: list[Any] = []
    todo = [tensor]
    while todo:
        name = todo.pop()
        node = producers.get(name)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        order.append(node)
        todo.extend(node.input)
    return order


def _reads_flipped(nodes: Iterable[Any], graph_input: str) -> bool:
    """Whether one of `nodes` flips the graph input (a Slice of it, with a negative step)."""
    return any(n.op_type == "Slice" and n.input and n.input[0] == graph_input for n in nodes)


def _constant(graph: Any, producers: dict[str, Any], name: str) -> float | None:
    """The value of a one-element constant tensor (an initializer or a Constant node)."""
    from onnx import numpy_helper

    tensor = next((t for t in graph.initializer if t.name == name), None)
    node = producers.get(name)
    if tensor is None and node is not None and node.op_type == "Constant":
        tensor = next((a.t for a in node.attribute if a.name == "value"), None)
    if tensor is None:
        return None
    value = numpy_helper.to_array(tensor)
    return float(value.reshape(-1)[0]) if value.size == 1 else None


def split_mirror_passes(model_file: Path, output: str) -> MirrorPasses | None:
    """The two passes of the mirror-averaging model in `model_file`, or None when its graph
    is not one (output `output` = (softmax(plain) + softmax(mirror)) x 0.5, the mirror pass
    reading a Slice of the input)."""
    import onnx
    import onnx.utils

    try:
        model = onnx.load(str(model_file))
    except Exception as exc:  # onnx raises its own decode errors
        raise ModelError(f"cannot read expression model {model_file}: {exc}") from None
    graph = model.graph
    if len(graph.input) != 1:
        return None
    graph_input = graph.input[0].name
    producers = _producers(graph)
    last = producers.get(output)
    if last is None or last.op_type != "Mul":
        return None
    add = next((producers[i] for i in last.input if producers.get(i, last).op_type == "Add"), None)
    if add is None or len(add.input) != 2 or len(last.input) != 2:
        return None
    half = next(i for i in last.input if i not in add.output)
    if _constant(graph, producers, half) != 0.5:
        return None
    branches = list(add.input)
    if any(producers.get(b) is None or producers[b].op_type != "Softmax" for b in branches):
        return None
    flipped = [_reads_flipped(_ancestors(graph, b), graph_input) for b in branches]
    if sorted(flipped) != [False, True]:
        return None
    plain_out, mirror_out = branches if flipped[1] else branches[::-1]
    known = {v.name for v in graph.value_info} | {v.name for v in graph.output}
    for name in branches:  # the extractor needs a type for each output it cuts at
        if name not in known:
            graph.value_info.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    extractor = onnx.utils.Extractor(model)
    passes = []
    for out in (plain_out, mirror_out):
        part = extractor.extract_model([graph_input], [out])
        # One output name for both, so the caller reads them alike.
        for node in part.graph.node:
            node.output[:] = [output if o == out else o for o in node.output]
        part.graph.output[0].name = output
        passes.append(part.SerializeToString())
    return MirrorPasses(plain=passes[0], mirror=passes[1], output=output)

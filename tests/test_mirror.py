"""The mirror pass of a mirror-averaging expression model, run only for unsure faces
(`expression.mirror_below`): the two passes cut out of the shipped graphs, and the
classifier's answers against the model as exported, on real FER+ faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from pydantic import ValidationError

from raksha import models as registry
from raksha.expression import ExpressionConfig, build_expression_classifier
from raksha.expression.mirror import split_mirror_passes
from raksha.expression.preprocess import to_input
from raksha.expression.spec import ExpressionSpec
from raksha.ml.evaluation.datasets import FaceDataset, read_ferplus
from raksha.ort_session import cpu_session

FLOAT = "raksha-fer-resnet"
INT8 = "raksha-fer-resnet-int8"
ONEPASS = "raksha-fer-resnet-onepass-int8"


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> FaceDataset:
    return read_ferplus(data_dir / "ferplus-valid", keep="majority").subset(np.arange(600))


def _spec(name: str) -> ExpressionSpec:
    entry = registry.get_entry(name)
    assert entry.card is not None
    return ExpressionSpec.from_card(entry.card)


def _flips_input(model: bytes) -> bool:
    graph = onnx.load_from_string(model).graph
    name = graph.input[0].name
    return any(n.op_type == "Slice" and n.input[0] == name for n in graph.node)


@pytest.mark.parametrize("name", [FLOAT, INT8])
def test_the_two_passes_average_to_the_exported_model(name: str, faces: FaceDataset) -> None:
    spec = _spec(name)
    path = registry.model_path(name)
    passes = split_mirror_passes(path, spec.output.name)
    assert passes is not None
    assert not _flips_input(passes.plain) and _flips_input(passes.mirror)

    batch = to_input(list(faces.images[:64]), spec.input)
    feeds = {spec.input.name: batch}
    whole = cpu_session(path, 1, "whole").run([spec.output.name], feeds)[0]
    plain = cpu_session(passes.plain, 1, "plain").run([passes.output], feeds)[0]
    mirror = cpu_session(passes.mirror, 1, "mirror").run([passes.output], feeds)[0]
    np.testing.assert_allclose((plain + mirror) * 0.5, whole, atol=1e-6)
    np.testing.assert_allclose(plain.sum(axis=1), 1.0, atol=1e-5)
    # The passes differ (a face and its mirror image are read differently)...
    assert float(np.abs(plain - mirror).max()) > 1e-3
    if name == FLOAT:
        # ...and the mirror pass is the plain pass of the flipped face (same float weights).
        flipped = {spec.input.name: np.ascontiguousarray(batch[..., ::-1])}
        again = cpu_session(passes.plain, 1, "plain").run([passes.output], flipped)[0]
        np.testing.assert_allclose(again, mirror, atol=1e-5)


def test_a_one_pass_model_has_no_passes_to_split() -> None:
    spec = _spec(ONEPASS)
    assert split_mirror_passes(registry.model_path(ONEPASS), spec.output.name) is None
    clf = build_expression_classifier(ExpressionConfig(model=ONEPASS))
    assert not clf.skips_mirror


@pytest.mark.slow
def test_unsure_faces_get_the_exported_answer_and_sure_ones_the_first_pass(
    faces: FaceDataset,
) -> None:
    crops = list(faces.images)
    exported = build_expression_classifier(ExpressionConfig(mirror_below=1.0))
    skipping = build_expression_classifier(ExpressionConfig(mirror_below=0.8))
    first_only = build_expression_classifier(ExpressionConfig(mirror_below=0.0))
    assert not exported.skips_mirror and skipping.skips_mirror and first_only.skips_mirror

    full = exported.predict_crops(crops)
    mixed = skipping.predict_crops(crops)
    first = first_only.predict_crops(crops)
    sure = first.max(axis=1) >= 0.8
    assert 0.3 < sure.mean() < 0.95  # both kinds of face are in the sample
    np.testing.assert_allclose(mixed[~sure], full[~sure], atol=1e-6)
    np.testing.assert_allclose(mixed[sure], first[sure], atol=1e-6)
    # A sure first reading is the exported model's top expression, here every time.
    assert (mixed.argmax(axis=1) == full.argmax(axis=1)).mean() >= 0.99
    assert ExpressionConfig().mirror_below == 0.8


def test_mirror_below_outside_zero_to_one_is_refused() -> None:
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError, match="mirror_below"):
            ExpressionConfig(mirror_below=bad)


def test_a_graph_that_does_not_average_the_two_passes_is_run_whole(tmp_path: Path) -> None:
    """Only (a + b) x 0.5 is split: a graph that weighs its passes otherwise is left whole."""
    from onnx import numpy_helper

    spec = _spec(INT8)
    model = onnx.load(str(registry.model_path(INT8)))
    graph = model.graph
    last = next(n for n in graph.node if spec.output.name in n.output)
    producers = {o: n for n in graph.node for o in n.output}
    for name in last.input:
        node = producers.get(name)
        init = next((t for t in graph.initializer if t.name == name), None)
        if init is not None:
            init.CopyFrom(numpy_helper.from_array(np.array(0.7, np.float32), name))
        elif node is not None and node.op_type == "Constant":
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(0.7, np.float32)))
    changed = tmp_path / "weighted.onnx"
    onnx.save(model, str(changed))
    assert split_mirror_passes(registry.model_path(INT8), spec.output.name) is not None
    assert split_mirror_passes(changed, spec.output.name) is None

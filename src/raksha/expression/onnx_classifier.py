"""Expression recognition with an ONNX model on onnxruntime's CPU provider."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES, ExpressionScores, FaceDetections
from raksha.errors import ModelError
from raksha.expression.config import ExpressionConfig
from raksha.expression.mirror import split_mirror_passes
from raksha.expression.preprocess import crop_faces, to_input
from raksha.expression.spec import ExpressionSpec
from raksha.ort_session import cpu_session

F32 = npt.NDArray[np.float32]


def softmax(x: F32) -> F32:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: F32 = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


class OnnxExpressionClassifier:
    """Runs one expression model described by an ExpressionSpec.

    Output columns are reordered into canonical order (the order of EXPRESSION_CLASSES, minus
    the classes the model lacks), so every model reports the same names in the same order.
    """

    def __init__(self, spec: ExpressionSpec, model_file: Path, cfg: ExpressionConfig) -> None:
        self._spec = spec
        self._cfg = cfg
        self._file = Path(model_file)
        what = f"expression model {self._file}"
        self._session = cpu_session(self._file, cfg.threads, what, accelerated=True)
        self._check_io()
        # The two passes of a mirror-averaging model, each a session of its own, when the
        # mirror pass is to be skipped for confident faces.
        self._plain: Any = None
        self._mirror: Any = None
        if cfg.mirror_below < 1.0 and spec.output.kind == "probs":
            passes = split_mirror_passes(self._file, spec.output.name)
            if passes is not None:
                self._plain = cpu_session(
                    passes.plain, cfg.threads, f"{what} (first pass)", accelerated=True
                )
                self._mirror = cpu_session(
                    passes.mirror, cfg.threads, f"{what} (mirror pass)", accelerated=True
                )
                self._session = self._plain  # the whole graph is not run: let it go
        self._labels = tuple(c for c in EXPRESSION_CLASSES if c in spec.classes)
        self._order = np.array([spec.classes.index(c) for c in self._labels], dtype=np.int64)

    def _check_io(self) -> None:
        spec = self._spec
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        where = f"expression model {self._file.name} ({spec.name})"
        if spec.input.name not in inputs:
            raise ModelError(
                f"{where}: no input named {spec.input.name!r}; it has {sorted(inputs)}"
            )
        if spec.output.name not in outputs:
            raise ModelError(
                f"{where}: no output named {spec.output.name!r}; it has {sorted(outputs)}"
            )
        s, c = spec.input.size, spec.input.channels
        want = (c, s, s) if spec.input.layout == "NCHW" else (s, s, c)
        got = list(inputs[spec.input.name].shape)[1:]
        if len(got) != 3 or any(
            isinstance(g, int) and g != w for g, w in zip(got, want, strict=False)
        ):
            raise ModelError(
                f"{where}: input shape {inputs[spec.input.name].shape} does not fit the spec "
                f"({spec.input.layout}, size {s}, {c} channel(s))"
            )
        width = list(outputs[spec.output.name].shape)[-1]
        if isinstance(width, int) and width != len(spec.classes):
            raise ModelError(
                f"{where}: output has {width} columns but the spec names "
                f"{len(spec.classes)} classes"
            )

    @property
    def skips_mirror(self) -> bool:
        """Whether the mirror pass runs only for unsure faces (`expression.mirror_below`)."""
        return self._plain is not None

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def spec(self) -> ExpressionSpec:
        return self._spec

    @property
    def model_file(self) -> Path:
        return self._file

    def classify(self, image: npt.NDArray[np.uint8], faces: FaceDetections) -> ExpressionScores:
        """One probability row per face of the BGR image; all faces in one (chunked) batch."""
        if len(faces) == 0:
            return ExpressionScores(np.zeros((0, len(self._labels)), np.float32), self._labels)
        crops = crop_faces(image, faces, self._spec.crop, self._spec.input.size)
        return ExpressionScores(self.predict_crops(crops), self._labels)

    def predict_crops(self, crops: Sequence[npt.NDArray[np.uint8]]) -> F32:
        """Probabilities (N,K) over `labels` for ready-made face crops (grey HxW or BGR
        HxWx3 uint8): only resize, channel conversion and normalisation are applied."""
        k = len(self._labels)
        if len(crops) == 0:
            return np.zeros((0, k), np.float32)
        parts = []
        step = self._cfg.batch_size
        for start in range(0, len(crops), step):
            batch = to_input(crops[start : start + step], self._spec.input)
            parts.append(self._run(batch))
        return np.concatenate(parts, axis=0)

    def _run(self, batch: F32) -> F32:
        raw = self._raw(batch) if self._plain is None else self._raw_skipping_mirror(batch)
        probs = softmax(raw) if self._spec.output.kind == "logits" else raw
        return np.ascontiguousarray(probs[:, self._order], dtype=np.float32)

    def _raw(self, batch: F32, session: Any = None) -> F32:
        feeds: dict[str, Any] = {self._spec.input.name: batch}
        run = self._session if session is None else session
        (out,) = run.run([self._spec.output.name], feeds)
        return np.asarray(out, dtype=np.float32).reshape(batch.shape[0], -1)

    def _raw_skipping_mirror(self, batch: F32) -> F32:
        """The first pass for every face; the mirror pass, averaged in as the model does,
        only for faces whose top probability is below `mirror_below`."""
        first = self._raw(batch, self._plain)
        unsure = np.flatnonzero(first.max(axis=1) < self._cfg.mirror_below)
        if unsure.size:
            mirrored = self._raw(np.ascontiguousarray(batch[unsure]), self._mirror)
            first[unsure] = (first[unsure] + mirrored) * np.float32(0.5)
        return first

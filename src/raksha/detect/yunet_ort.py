"""YuNet run directly on onnxruntime, with our own decoding of its raw outputs.

The published YuNet file declares a fixed 640x640 input; the network itself is fully
convolutional, so at load time the input's height and width are made free and each frame is
run at its own size (padded up to a multiple of 32, the coarsest stride), not at 640x640.

For every stride s in (8, 16, 32) the network gives, per cell (row r, column c) of a grid of
(padded height / s) x (padded width / s) cells, in row-major order:
``cls`` and ``obj`` (face class and objectness, 0-1), ``bbox`` (dx, dy, log w, log h) and ``kps``
(five landmark offsets). A cell's face has score sqrt(cls * obj), centre ((c + dx) s, (r + dy) s),
size (exp(log w) s, exp(log h) s) and landmarks ((c + kx) s, (r + ky) s). Faces scoring above
the threshold are merged by non-maximum suppression, as `cv2.FaceDetectorYN` does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from raksha.detect.config import YuNetConfig
from raksha.detect.nms import nms, xywh_to_xyxy
from raksha.errors import ModelError
from raksha.ort_session import cpu_session

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

STRIDES = (8, 16, 32)
#: The padded input is a multiple of this (the coarsest stride).
ALIGN = 32
_HEADS = ("cls", "obj", "bbox", "kps")
_ROW = 15


def _free_input_size(model_path: Path) -> bytes:
    """The model with its input height and width (and the outputs' anchor counts) left free."""
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - onnx is a dependency
        raise ModelError(f"the onnxruntime YuNet backend needs the onnx package: {err}") from None
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # onnx raises protobuf DecodeError and others
        raise ModelError(f"cannot load face detector model {model_path}: {exc}") from None
    graph = model.graph
    if len(graph.input) != 1 or len(graph.input[0].type.tensor_type.shape.dim) != 4:
        raise ModelError(f"{model_path.name} is not a YuNet model: expected one NCHW input")
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param = "height"
    dims[3].dim_param = "width"
    names = {o.name for o in graph.output}
    missing = [f"{h}_{s}" for s in STRIDES for h in _HEADS if f"{h}_{s}" not in names]
    if missing:
        raise ModelError(f"{model_path.name} is not a YuNet model: no output(s) {missing}")
    for out in graph.output:
        shape = out.type.tensor_type.shape
        if len(shape.dim) == 3:
            shape.dim[1].dim_param = "anchors"
    del graph.value_info[:]
    data: bytes = model.SerializeToString()
    return data


class OrtYuNet:
    """YuNet on onnxruntime's CPU provider; `run` returns the rows `cv2.FaceDetectorYN` gives:
    x, y, w, h, five landmark (x, y) pairs, score, in the pixels of the image passed in."""

    def __init__(self, model_path: Path, cfg: YuNetConfig) -> None:
        self._cfg = cfg
        self._session = cpu_session(
            _free_input_size(model_path),
            cfg.threads,
            f"face detector model {model_path}",
            accelerated=True,
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [f"{h}_{s}" for s in STRIDES for h in _HEADS]
        self._blob: F32 | None = None
        self._filled = (0, 0)

    def _input_blob(self, image: U8) -> F32:
        h, w = image.shape[:2]
        ph, pw = math.ceil(h / ALIGN) * ALIGN, math.ceil(w / ALIGN) * ALIGN
        blob = self._blob
        if blob is None or blob.shape[2:] != (ph, pw) or self._filled != (h, w):
            # A new buffer for each image size, so the padding is always zero.
            blob = np.zeros((1, 3, ph, pw), np.float32)
            self._blob = blob
            self._filled = (h, w)
        blob[0, :, :h, :w] = image.transpose(2, 0, 1)
        return blob

    def run(self, image: U8) -> F32:
        """(N,15) rows in `image` pixel coordinates, best score first."""
        blob = self._input_blob(image)
        pw = blob.shape[3]
        outs = self._session.run(self._outputs, {self._input: blob})
        found: list[F32] = []
        for i, stride in enumerate(STRIDES):
            cls, obj, bbox, kps = (np.asarray(o, np.float32) for o in outs[4 * i : 4 * i + 4])
            c01 = np.minimum(np.maximum(cls.reshape(-1), 0.0), 1.0)
            score = np.sqrt(c01 * np.minimum(np.maximum(obj.reshape(-1), 0.0), 1.0))
            idx = np.flatnonzero(score > self._cfg.score_threshold)
            if idx.size == 0:
                continue
            cols = pw // stride
            c = (idx % cols).astype(np.float32)
            r = (idx // cols).astype(np.float32)
            b = bbox.reshape(-1, 4)[idx]
            k = kps.reshape(-1, 10)[idx]
            rows = np.empty((idx.size, _ROW), np.float32)
            bw = np.exp(b[:, 2]) * stride
            bh = np.exp(b[:, 3]) * stride
            rows[:, 0] = (c + b[:, 0]) * stride - bw / 2
            rows[:, 1] = (r + b[:, 1]) * stride - bh / 2
            rows[:, 2] = bw
            rows[:, 3] = bh
            rows[:, 4:14:2] = (k[:, 0::2] + c[:, None]) * stride
            rows[:, 5:14:2] = (k[:, 1::2] + r[:, None]) * stride
            rows[:, 14] = score[idx]
            found.append(rows)
        if not found:
            return np.zeros((0, _ROW), np.float32)
        rows = np.concatenate(found)
        keep = nms(xywh_to_xyxy(rows), rows[:, 14], self._cfg.nms_threshold)[: self._cfg.top_k]
        return np.ascontiguousarray(rows[keep])

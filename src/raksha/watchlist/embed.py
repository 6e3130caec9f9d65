"""Face embeddings with MobileFace V2 on onnxruntime: aligned 112x112 crops in, unit vectors out.

The model (registry name "mobileface-v2", shared/models/MANIFEST.md) takes NCHW float32 with
**raw 0-255** pixel values: no mean or scale. Normalising to [-1, 1], as the upstream example
does, collapses every embedding to about the same direction (measured: cosine ~0.999 between
different people). Its 256 outputs are not normalised; they are L2-normalised here, so the
dot product of two embeddings is their cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.errors import ModelError
from raksha.ort_session import cpu_session
from raksha.watchlist.align import CROP_SIDE

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: Registry name of the embedding model (`raksha models list`).
DEFAULT_MODEL = "mobileface-v2"
EMBEDDING_DIM = 256


def l2_normalise(x: npt.ArrayLike) -> F32:
    """Rows of `x` scaled to unit length (a zero row stays zero)."""
    a = np.asarray(x, np.float32)
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    out: F32 = (a / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class FaceEmbedder:
    """256-d unit embeddings of aligned BGR face crops (raksha.watchlist.align.align_face).

    `rgb`: the crops are given to the model in RGB order (the MXNet model was trained on
    RGB images; BGR also separates people, slightly less well: MANIFEST.md).
    """

    def __init__(
        self, model_file: Path, *, threads: int = 1, batch_size: int = 32, rgb: bool = True
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._file = Path(model_file)
        self._session: Any = cpu_session(self._file, threads, f"face embedding model {model_file}")
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [3, CROP_SIDE, CROP_SIDE]:
            got = [list(i.shape) for i in inputs]
            raise ModelError(
                f"face embedding model {self._file.name}: expected one input "
                f"[N,3,{CROP_SIDE},{CROP_SIDE}], got {got}"
            )
        width = list(outputs[0].shape)[-1] if outputs else None
        if len(outputs) != 1 or (isinstance(width, int) and width != EMBEDDING_DIM):
            raise ModelError(
                f"face embedding model {self._file.name}: expected one output "
                f"[N,{EMBEDDING_DIM}], got {[list(o.shape) for o in outputs]}"
            )
        self._input = str(inputs[0].name)
        self._output = str(outputs[0].name)
        self._batch = batch_size
        self._rgb = rgb

    @classmethod
    def from_registry(
        cls, models_dir: Path | None = None, name: str = DEFAULT_MODEL, **kwargs: Any
    ) -> FaceEmbedder:
        """The embedder on registered model `name`, its file found and sha256-checked by
        raksha.models (ModelError when missing, corrupt or not an embedding model)."""
        from raksha import models as registry

        entry = registry.get_entry(name)
        if entry.task != "face-embedding":
            raise ModelError(f"model {name!r} is a {entry.task} model, not a face embedding")
        return cls(registry.model_path(name, models_dir), **kwargs)

    @property
    def model_file(self) -> Path:
        return self._file

    def embed(self, crops: Sequence[U8] | U8) -> F32:
        """(N,256) unit float32 rows for N aligned 112x112x3 uint8 BGR crops (a sequence,
        or one (N,112,112,3) array)."""
        batch = np.asarray(crops) if not isinstance(crops, np.ndarray) else crops
        if batch.ndim == 3:
            raise ValueError("embed takes a batch of crops; wrap a single crop in a list")
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        if batch.shape[1:] != (CROP_SIDE, CROP_SIDE, 3) or batch.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 crops of {CROP_SIDE}x{CROP_SIDE}x3, got {batch.shape[1:]} "
                f"{batch.dtype}"
            )
        parts = []
        for start in range(0, len(batch), self._batch):
            chunk = batch[start : start + self._batch]
            if self._rgb:
                chunk = chunk[..., ::-1]
            x = np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32)
            (out,) = self._session.run([self._output], {self._input: x})
            parts.append(np.asarray(out, np.float32))
        return l2_normalise(np.concatenate(parts))

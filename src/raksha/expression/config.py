"""Settings for expression recognition."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BatchingConfig(BaseModel):
    """`raksha run`: one shared service reads the faces of every camera's frames in batches
    (raksha.pipeline.batcher), instead of each camera running the model on its own faces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    #: Most faces in one batch (a frame with more runs as a batch of its own).
    max_batch: int = Field(64, ge=1, le=4096)
    #: Longest wait for more faces after the first of a batch arrived, in milliseconds.
    max_wait_ms: float = Field(10.0, ge=0, le=1000)


class ExpressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Registry name of the expression model (`raksha models list`) or a path to an .onnx
    #: file with a model card JSON beside it.
    model: str = "raksha-fer-xd-int8"
    #: Largest batch sent to the model at once.
    batch_size: int = Field(64, ge=1, le=4096)
    #: onnxruntime intra-op threads (0 = library default).
    threads: int = Field(1, ge=0)
    #: `raksha analyze`: read each frame's expressions on a thread of their own while the
    #: next frame's faces are found, so that both use a core (the results are the same).
    overlap: bool = True
    #: Models that average each face with its mirror image (two passes): the mirror pass is
    #: run only for faces whose first pass gave no expression at least this probability.
    #: Most faces are read with confidence on the first pass, and on ferplus-valid 0.8
    #: skips 71 % of mirror passes with the same accuracy and fear recall as always running
    #: both (docs/expression-model.md). 1 = always both passes (the model as exported).
    mirror_below: float = Field(0.8, ge=0, le=1)
    #: Cross-camera batching of the expression model in `raksha run` (off by default).
    batching: BatchingConfig = Field(default_factory=BatchingConfig)

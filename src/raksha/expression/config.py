"""Settings for expression recognition."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExpressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Registry name of the expression model (`raksha models list`) or a path to an .onnx
    #: file with a model card JSON beside it.
    model: str = "raksha-fer-resnet-int8"
    #: Largest batch sent to the model at once.
    batch_size: int = Field(64, ge=1, le=4096)
    #: onnxruntime intra-op threads (0 = library default).
    threads: int = Field(1, ge=0)
    #: `raksha analyze`: read each frame's expressions on a thread of their own while the
    #: next frame's faces are found, so that both use a core (the results are the same).
    overlap: bool = True

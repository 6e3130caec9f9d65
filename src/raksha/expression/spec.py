"""How to run an expression ONNX model: input tensor, output, labels and face crop.

A spec is either built in (the third-party FER2013 models) or read from a model card JSON::

    {"name": "...", "task": "expression", "file": "x.onnx", "sha256": "...",
     "classes": ["neutral", "happiness", ...],          # canonical names, output column order
     "input": {"name": "input", "layout": "NCHW", "size": 64, "channels": 1,
               "scale": 0.00784, "offset": -1.0},       # model_input = pixel(0..255)*scale+offset
     "output": {"name": "probs", "kind": "probs"},      # or "logits" (softmax is applied)
     "crop": {"method": "box", "scale": 1.2},           # or "aligned" (eye line levelled)
     ...}                                                # other keys are kept, not used here
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import ModelError


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "input"
    layout: Literal["NCHW", "NHWC"]
    #: Side of the square input image in pixels.
    size: int = Field(ge=8, le=1024)
    channels: Literal[1, 3]
    #: model_input = pixel (0..255) * scale + offset
    scale: float
    offset: float
    #: Channel order of 3-channel inputs (ignored for 1 channel).
    color: Literal["rgb", "bgr"] = "rgb"


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "probs"
    kind: Literal["probs", "logits"] = "probs"


class CropSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: "box": square around the detector box; "aligned": the same square, rotated so that the
    #: line through the eyes is horizontal.
    method: Literal["box", "aligned"] = "box"
    #: Side of the square crop as a multiple of max(box width, box height).
    scale: float = Field(1.2, gt=0.2, le=4.0)


class ExpressionSpec(BaseModel):
    """Everything the runtime needs to turn face crops into canonical class probabilities."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    task: Literal["expression"] = "expression"
    file: str
    sha256: str
    #: Canonical class names (raksha.domain.EXPRESSION_CLASSES) in model output column order.
    classes: tuple[str, ...]
    input: InputSpec
    output: OutputSpec = Field(default_factory=OutputSpec)
    crop: CropSpec = Field(default_factory=CropSpec)

    @field_validator("classes")
    @classmethod
    def _canonical(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in v if c not in EXPRESSION_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown class name(s) {unknown}; use names from {list(EXPRESSION_CLASSES)}"
            )
        if len(set(v)) != len(v):
            raise ValueError(f"class names repeat: {list(v)}")
        if len(v) < 2:
            raise ValueError("a classifier needs at least two classes")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.lower()
        if len(v) != 64 or any(ch not in "0123456789abcdef" for ch in v):
            raise ValueError("must be 64 hex digits")
        return v

    @classmethod
    def from_card(cls, path: Path) -> ExpressionSpec:
        """Load a model card JSON; ModelError with one line naming the card and the field."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model card not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read model card {path}: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            parts = []
            for e in err.errors():
                field = ".".join(str(p) for p in e["loc"]) or "(top level)"
                parts.append(f"{field}: {str(e['msg']).removeprefix('Value error, ')}")
            raise ModelError(f"invalid model card {path}: " + "; ".join(parts)) from None


#: FER2013 output order, mapped onto canonical names (angry->anger, happy->happiness, ...).
FER2013_CLASSES: tuple[str, ...] = (
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
    "neutral",
)

_FER2013_INPUT = InputSpec(
    name="input", layout="NHWC", size=64, channels=1, scale=1.0 / 127.5, offset=-1.0
)


#: Registry names of the built-in models that take the FER2013 recipe above.
_FER2013_MODELS = frozenset({"fer-mini-xception", "fer-big-xception"})


def _fer2013(name: str, file: str, sha256: str) -> ExpressionSpec:
    return ExpressionSpec(
        name=name,
        file=file,
        sha256=sha256,
        classes=FER2013_CLASSES,
        input=_FER2013_INPUT,
        output=OutputSpec(name="probs", kind="probs"),
        crop=CropSpec(method="box", scale=1.2),
    )


def builtin_spec(name: str) -> ExpressionSpec | None:
    """The built-in spec of a registered third-party expression model, else None."""
    from raksha.models import BUILTIN

    if name not in _FER2013_MODELS:
        return None
    for entry in BUILTIN:
        if entry.name == name:
            return _fer2013(entry.name, entry.file, entry.sha256)
    return None

"""Build the configured expression classifier: a registry name or an .onnx with its card."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from raksha import models as registry
from raksha.errors import ModelError
from raksha.expression.config import ExpressionConfig
from raksha.expression.spec import ExpressionSpec, builtin_spec

if TYPE_CHECKING:
    from raksha.expression.onnx_classifier import OnnxExpressionClassifier


def _looks_like_path(model: str) -> bool:
    return model.endswith(".onnx") or "/" in model or "\\" in model


def resolve_expression_model(
    model: str, models_dir: Path | None = None
) -> tuple[ExpressionSpec, Path]:
    """The spec and verified file of `model` (a registry name, or a path to an .onnx file
    whose model card `<stem>.json` sits beside it)."""
    if _looks_like_path(model):
        onnx = Path(model).expanduser()
        if not onnx.is_file():
            raise ModelError(f"expression model file not found: {onnx}")
        card = onnx.with_suffix(".json")
        if not card.is_file():
            raise ModelError(
                f"expression model {onnx} has no model card: expected {card} beside it"
            )
        spec = ExpressionSpec.from_card(card)
        registry.verify_file(onnx, spec.sha256, f"expression model {spec.name!r}")
        return spec, onnx

    entry = registry.get_entry(model)
    if entry.task != "expression":
        raise ModelError(f"model {model!r} is a {entry.task} model, not an expression model")
    found = builtin_spec(model)
    if found is None:
        if entry.card is None:
            raise ModelError(f"model {model!r} has no expression spec")
        found = ExpressionSpec.from_card(entry.card)
    return found, registry.model_path(model, models_dir)


def build_expression_classifier(
    cfg: ExpressionConfig, models_dir: Path | None = None
) -> OnnxExpressionClassifier:
    """The ONNX expression classifier that `cfg.model` names, with its sha256 checked."""
    spec, path = resolve_expression_model(cfg.model, models_dir)
    from raksha.expression.onnx_classifier import OnnxExpressionClassifier

    return OnnxExpressionClassifier(spec, path, cfg)

"""Expression recognition: the ExpressionClassifier seam, model specs and the ONNX runner.

`build_expression_classifier(cfg, models_dir)` is the way in; onnxruntime is imported only
when a classifier is built.
"""

from raksha.expression.base import ExpressionClassifier
from raksha.expression.config import ExpressionConfig
from raksha.expression.factory import build_expression_classifier, resolve_expression_model
from raksha.expression.spec import ExpressionSpec, builtin_spec

__all__ = [
    "ExpressionClassifier",
    "ExpressionConfig",
    "ExpressionSpec",
    "build_expression_classifier",
    "builtin_spec",
    "resolve_expression_model",
]

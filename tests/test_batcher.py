"""Cross-camera batching of expression inference (raksha.pipeline.batcher).

The rows are those of the classifier itself, on real faces; batches form under concurrent
load; a lone request waits no longer than its budget plus a run; errors and stop() reach
every waiting caller. Timings use generous margins (a loaded 2-core CI machine).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from dashboard_support import site_config
from raksha.app import build_runtime
from raksha.config import AnalysisConfig
from raksha.domain import FaceDetections, Frame
from raksha.expression import ExpressionConfig, build_expression_classifier
from raksha.expression.config import BatchingConfig
from raksha.expression.onnx_classifier import OnnxExpressionClassifier
from raksha.expression.preprocess import crop_faces
from raksha.pipeline.analyzer import FaceReadings
from raksha.pipeline.batcher import BatchedClassifier, BatcherStopped, InferenceBatcher
from raksha.pipeline.runtime import Runtime

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
PHOTOS = ("astronaut.jpg", "women_4faces_smiling.jpg", "group_selfie_6faces.jpg")


def _detect(models_dir: Path, image: U8) -> FaceDetections:
    """Faces found by YuNet through OpenCV, threshold 0.8."""
    h, w = image.shape[:2]
    det = cv2.FaceDetectorYN.create(
        str(models_dir / "face_detection_yunet_2023mar.onnx"), "", (w, h), 0.8, 0.3, 5000
    )
    det.setInputSize((w, h))
    _, rows = det.detect(image)
    assert rows is not None
    boxes = np.c_[rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]]
    return FaceDetections(
        boxes=boxes.astype(np.float32),
        scores=rows[:, 14].astype(np.float32),
        landmarks=rows[:, 4:14].reshape(-1, 5, 2).astype(np.float32),
    )


@pytest.fixture(scope="module")
def classifier(models_dir: Path) -> OnnxExpressionClassifier:
    """The default expression model (registry), as `raksha run` builds it."""
    return build_expression_classifier(ExpressionConfig(), models_dir)


@pytest.fixture(scope="module")
def photos(models_dir: Path, faces_dir: Path) -> list[tuple[U8, FaceDetections]]:
    out = []
    for name in PHOTOS:
        img = cv2.imread(str(faces_dir / name))
        assert img is not None, name
        out.append((img, _detect(models_dir, img)))
    assert [len(f) for _, f in out] == [1, 4, 6]
    return out


@pytest.fixture(scope="module")
def crops(
    classifier: OnnxExpressionClassifier, photos: list[tuple[U8, FaceDetections]]
) -> list[U8]:
    spec = classifier.spec
    return [c for img, faces in photos for c in crop_faces(img, faces, spec.crop, spec.input.size)]


class Counting:
    """Wraps a predict function, recording the size of every batch it is given."""

    def __init__(self, predict: Callable[[Sequence[U8]], F32]) -> None:
        self._predict = predict
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, crops: Sequence[U8]) -> F32:
        with self._lock:
            self.sizes.append(len(crops))
        return self._predict(crops)


def _concurrently(n: int, work: Callable[[int], object]) -> list[object]:
    """Run work(0..n-1) on n threads released together; their results (or exceptions)."""
    out: list[object] = [None] * n
    gate = threading.Barrier(n)

    def one(i: int) -> None:
        gate.wait()
        try:
            out[i] = work(i)
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    return out


def test_batched_rows_are_the_classifiers_own(
    classifier: OnnxExpressionClassifier, photos: list[tuple[U8, FaceDetections]]
) -> None:
    """Three "cameras" (one photo each: 1, 4 and 6 faces) read through one batcher, in one
    batch: each gets exactly the rows of calling the classifier on its own frame."""
    alone = [classifier.classify(img, faces).probs for img, faces in photos]
    counting = Counting(classifier.predict_crops)
    # The batch runs as soon as the 11 faces are in (max_batch), or after 5 s.
    batched = BatchedClassifier(
        classifier, InferenceBatcher(counting, max_batch=11, max_wait_ms=5000)
    )
    try:
        for _ in range(3):
            got = _concurrently(3, lambda i: batched.classify(*photos[i]))
            for i, scores in enumerate(got):
                assert not isinstance(scores, BaseException), scores
                assert scores.labels == classifier.labels
                np.testing.assert_array_equal(scores.probs, alone[i])
        # The 11 faces ran together: one model call per round of three frames.
        assert counting.sizes == [11, 11, 11], counting.sizes
        assert sum(counting.sizes) == 33
        # A frame without faces never reaches the model.
        empty = batched.classify(photos[0][0], FaceDetections.empty())
        assert empty.probs.shape == (0, len(classifier.labels))
    finally:
        batched.stop()


def test_batches_form_under_concurrent_load(
    classifier: OnnxExpressionClassifier, crops: list[U8]
) -> None:
    """Eight cameras, each sending frames of two faces: the model runs on batches of many
    frames (few calls), never above max_batch, and every camera gets its own rows."""
    counting = Counting(classifier.predict_crops)
    batcher = InferenceBatcher(counting, max_batch=16, max_wait_ms=500).start()
    frames = 5

    def camera(i: int) -> list[F32]:
        pair = [crops[i % len(crops)], crops[(i + 3) % len(crops)]]
        return [batcher.predict(pair) for _ in range(frames)]

    try:
        got = _concurrently(8, camera)
    finally:
        batcher.stop()
    for i, rows in enumerate(got):
        assert isinstance(rows, list), rows
        want = classifier.predict_crops([crops[i % len(crops)], crops[(i + 3) % len(crops)]])
        for r in rows:
            np.testing.assert_array_equal(r, want)
    assert sum(counting.sizes) == 8 * frames * 2
    assert max(counting.sizes) <= 16
    # 40 requests; alone they would be 40 calls. Batched, most calls carry several frames.
    assert len(counting.sizes) <= 20, counting.sizes
    assert max(counting.sizes) >= 8, counting.sizes
    assert batcher.stats.requests == 40 and batcher.stats.batches == len(counting.sizes)


def test_a_lone_request_waits_its_budget_and_no_more(
    classifier: OnnxExpressionClassifier, crops: list[U8]
) -> None:
    one = crops[:1]
    classifier.predict_crops(one)  # warm
    t0 = time.perf_counter()
    classifier.predict_crops(one)
    run_s = time.perf_counter() - t0

    batcher = InferenceBatcher(classifier.predict_crops, max_batch=64, max_wait_ms=300)
    try:
        t0 = time.monotonic()
        batcher.predict(one)
        waited = time.monotonic() - t0
    finally:
        batcher.stop()
    # It waited for company (the budget), then ran alone: budget + one run (+ slack for a
    # loaded machine's scheduling).
    assert waited >= 0.29, waited
    assert waited <= 0.3 + run_s + 1.5, (waited, run_s)


def test_a_full_batch_runs_without_waiting(crops: list[U8]) -> None:
    counting = Counting(lambda c: np.zeros((len(c), 3), np.float32))
    batcher = InferenceBatcher(counting, max_batch=4, max_wait_ms=30_000)
    try:
        t0 = time.monotonic()
        rows = _concurrently(2, lambda i: batcher.predict(crops[2 * i : 2 * i + 2]))
        took = time.monotonic() - t0
        assert all(isinstance(r, np.ndarray) and r.shape == (2, 3) for r in rows), rows
        assert took < 10, took  # not the 30 s budget
        # A frame larger than max_batch is never split: it runs as a batch of its own.
        assert batcher.predict(crops[:6]).shape == (6, 3)
        assert 6 in counting.sizes
    finally:
        batcher.stop()


def test_an_error_reaches_every_caller_of_its_batch(crops: list[U8]) -> None:
    calls: list[int] = []

    def failing(c: Sequence[U8]) -> F32:
        calls.append(len(c))
        if len(calls) == 1:
            raise ValueError("model broke")
        return np.ones((len(c), 2), np.float32)

    # The batch runs when all three requests (6 faces) are in: max_batch reached.
    batcher = InferenceBatcher(failing, max_batch=6, max_wait_ms=30_000)
    try:
        got = _concurrently(3, lambda i: batcher.predict(crops[2 * i : 2 * i + 2]))
        assert calls == [6]
        assert all(isinstance(e, ValueError) for e in got), got
        assert got[0] is got[1] is got[2]  # the same exception, to each caller
        assert batcher.stats.failed_batches == 1
        # The batcher goes on serving after a failed batch.
        assert batcher.submit(crops[:6]).result(timeout=30).shape == (6, 2)
    finally:
        batcher.stop()


def test_wrong_row_count_is_an_error_for_the_callers(crops: list[U8]) -> None:
    batcher = InferenceBatcher(lambda c: np.zeros((1, 2), np.float32), max_batch=2)
    try:
        with pytest.raises(RuntimeError, match="1 rows for 2 faces"):
            batcher.predict(crops[:2])
    finally:
        batcher.stop()


def test_stop_wakes_waiting_callers(crops: list[U8]) -> None:
    """A request queued (waiting for company) and one waiting behind a running batch both end
    with BatcherStopped at stop(); the running batch's caller gets its rows."""
    running, release = threading.Event(), threading.Event()

    def slow(c: Sequence[U8]) -> F32:
        running.set()
        assert release.wait(30)
        return np.zeros((len(c), 2), np.float32)

    batcher = InferenceBatcher(slow, max_batch=1, max_wait_ms=60_000)
    in_flight = batcher.submit(crops[:1])
    assert running.wait(30)
    queued = batcher.submit(crops[1:2])
    waiter_error: list[BaseException] = []

    def wait_queued() -> None:
        try:
            queued.result(timeout=30)
        except BaseException as exc:
            waiter_error.append(exc)

    waiter = threading.Thread(target=wait_queued)
    waiter.start()
    stopper = threading.Thread(target=batcher.stop, kwargs={"timeout": 30})
    t0 = time.monotonic()
    stopper.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert time.monotonic() - t0 < 10
    assert len(waiter_error) == 1 and isinstance(waiter_error[0], BatcherStopped)
    assert "stopped" in str(waiter_error[0])
    release.set()
    assert in_flight.result(timeout=30).shape == (1, 2)
    stopper.join(timeout=30)
    assert not batcher.running
    with pytest.raises(BatcherStopped):
        batcher.submit(crops[:1])


def test_stop_wakes_a_lone_request_waiting_for_company(crops: list[U8]) -> None:
    batcher = InferenceBatcher(lambda c: np.zeros((len(c), 2), np.float32), max_wait_ms=60_000)
    pending = batcher.submit(crops[:1])
    time.sleep(0.05)
    assert not pending.done()
    batcher.stop()
    with pytest.raises(BatcherStopped):
        pending.result(timeout=10)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        InferenceBatcher(lambda c: np.zeros((0, 1), np.float32), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        InferenceBatcher(lambda c: np.zeros((0, 1), np.float32), max_wait_ms=-1)


def test_batching_is_off_by_default() -> None:
    batching = AnalysisConfig().expression.batching
    assert (batching.enabled, batching.max_batch, batching.max_wait_ms) == (False, 64, 10.0)
    on = ExpressionConfig.model_validate({"batching": {"enabled": True, "max_wait_ms": 5}})
    assert on.batching.enabled and on.batching.max_wait_ms == 5.0


def _runtime(tmp_path: Path, models_dir: Path, batching: dict[str, object]) -> Runtime:
    cameras = [
        {"id": "cam-a", "hotspot": "a-crossing", "url": "rtsp://10.0.0.5/s1"},
        {"id": "cam-b", "hotspot": "b-gate", "url": "rtsp://10.0.0.6/s1"},
    ]
    cfg = site_config(f"sqlite:///{tmp_path / 'raksha.db'}", tmp_path / "ev", cameras=cameras)
    expression = cfg.expression.model_copy(
        update={"batching": BatchingConfig.model_validate(batching)}
    )
    return build_runtime(cfg.model_copy(update={"expression": expression}), models_dir=models_dir)


def test_raksha_run_wiring_shares_one_batcher_between_cameras(
    tmp_path: Path,
    models_dir: Path,
    classifier: OnnxExpressionClassifier,
    photos: list[tuple[U8, FaceDetections]],
) -> None:
    """With `expression.batching.enabled`, every camera's analyzer reads its faces through the
    same batcher (a background service of the runtime), with the classifier's own rows."""
    rt = _runtime(tmp_path, models_dir, {"enabled": True, "max_batch": 64, "max_wait_ms": 1000})
    try:
        shared = [b for b in rt.background if isinstance(b, BatchedClassifier)]
        assert len(shared) == 1
        analyzers = [p.make_analyzer() for p in rt.pipelines]
        assert [a.models.classifier for a in analyzers] == [shared[0], shared[0]]
        shared[0].start()
        img = photos[2][0]
        frames = [Frame(img, 0.0, 0, a.source_id, time.monotonic()) for a in analyzers]
        located = [a.locate(f) for a, f in zip(analyzers, frames, strict=True)]
        assert all(len(loc.faces) > 0 for loc in located)
        read = _concurrently(2, lambda i: analyzers[i].read_faces(located[i]))
        for loc, readings in zip(located, read, strict=True):
            assert isinstance(readings, FaceReadings), readings
            np.testing.assert_array_equal(
                readings.scores.probs, classifier.classify(img, loc.faces).probs
            )
        assert shared[0].batcher.stats.requests == 2
    finally:
        rt.stop(drain_s=0, store_wait_s=0)
    assert not shared[0].batcher.running


def test_raksha_run_without_batching_uses_the_classifier(tmp_path: Path, models_dir: Path) -> None:
    rt = _runtime(tmp_path, models_dir, {})
    try:
        assert not any(isinstance(b, BatchedClassifier) for b in rt.background)
        analyzer = rt.pipelines[0].make_analyzer()
        assert isinstance(analyzer.models.classifier, OnnxExpressionClassifier)
    finally:
        rt.stop(drain_s=0, store_wait_s=0)

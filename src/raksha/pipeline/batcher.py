"""Cross-camera batching of expression inference (`expression.batching`).

Each camera's analysis thread reads the expressions of its own frame's faces: a batch of a
few faces, often one. `InferenceBatcher` is a shared service with one worker thread that
gathers the face crops of many cameras' frames into one batch and runs the model once for
all of them, so a batched runtime (a GPU most of all) does its work in few large calls.

Rules:

* A batch runs as soon as it holds `max_batch` faces, or `max_wait_ms` after its *first*
  request (the crops of one frame) arrived. A request that finds the worker free is
  therefore answered within `max_wait_ms` plus its batch's run time; one that arrives while
  a batch runs waits for that run to end (or its own `max_wait_ms`, the longer) before its
  batch runs. That holds as long as the model keeps up with the cameras; a backlog runs at
  once, batch by batch.
* A request is never split: a frame with more than `max_batch` faces runs as a batch of its
  own (the model chunks it by `expression.batch_size` as it always does).
* Every caller gets exactly its own rows, in its own order.
* An error raised by the model reaches every caller of that batch, as the same exception.
* `stop()` fails every waiting request with `BatcherStopped`; later requests fail at once.

`BatchedClassifier` is the `ExpressionClassifier` the cameras' analyzers use when batching is
on: it crops the faces on the caller's thread (as the classifier does) and sends the crops
to the batcher, so its results are those of the classifier itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from raksha.domain import ExpressionScores, FaceDetections
from raksha.errors import RakshaError
from raksha.expression.preprocess import crop_faces
from raksha.expression.spec import ExpressionSpec

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
#: Probabilities (N, K) for N face crops: the model's `predict_crops`.
Predict = Callable[[Sequence[U8]], F32]


class BatcherStopped(RakshaError):
    """The inference batcher was stopped before (or while) a request waited for its rows."""


class _Request:
    """One caller's crops, and where its rows (or its error) are left for it."""

    __slots__ = ("crops", "done", "error", "rows", "submitted")

    def __init__(self, crops: Sequence[U8]) -> None:
        self.crops = crops
        self.submitted = time.monotonic()
        self.done = threading.Event()
        self.rows: F32 | None = None
        self.error: BaseException | None = None

    def finish(self, rows: F32 | None, error: BaseException | None) -> None:
        self.rows, self.error = rows, error
        self.done.set()


class Pending:
    """A submitted request: `result()` blocks until its rows are ready."""

    __slots__ = ("_request",)

    def __init__(self, request: _Request) -> None:
        self._request = request

    def done(self) -> bool:
        return self._request.done.is_set()

    def result(self, timeout: float | None = None) -> F32:
        """This request's rows (N, K); raises the batch's error, `BatcherStopped`, or
        `TimeoutError` when `timeout` seconds pass first."""
        if not self._request.done.wait(timeout):
            raise TimeoutError(f"no expression result within {timeout} s")
        if self._request.error is not None:
            raise self._request.error
        assert self._request.rows is not None
        return self._request.rows


@dataclass
class BatcherStats:
    requests: int = 0
    faces: int = 0
    batches: int = 0
    #: The largest batch run, in faces.
    largest: int = 0
    failed_batches: int = 0


class InferenceBatcher:
    """Runs `predict` for the requests of many threads, batched (see the module doc)."""

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 10.0,
        name: str = "expression-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, not {max_wait_ms}")
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = BatcherStats()
        self._queue: deque[_Request] = deque()
        self._queued_faces = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    # Lifecycle (the runtime's `Background` protocol: start with the cameras, stop after).

    def start(self) -> InferenceBatcher:
        """Start the worker (idempotent; `submit` also starts it)."""
        with self._cond:
            self._start_locked()
        return self

    def _start_locked(self) -> None:
        if self._stopped:
            raise BatcherStopped("the expression inference batcher is stopped")
        if self._thread.ident is None:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Fail every waiting request with `BatcherStopped` and end the worker (a batch that is
        running finishes and its callers get their rows)."""
        with self._cond:
            self._stopped = True
            waiting = list(self._queue)
            self._queue.clear()
            self._queued_faces = 0
            self._cond.notify_all()
        self._fail(waiting, BatcherStopped("the expression inference batcher was stopped"))
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # Callers.

    def submit(self, crops: Sequence[U8]) -> Pending:
        """Queue one frame's face crops; the rows come back through `Pending.result()`."""
        request = _Request(crops)
        if len(crops) == 0:  # nothing to run: never wait for a batch
            request.finish(np.zeros((0, 0), np.float32), None)
            return Pending(request)
        with self._cond:
            self._start_locked()
            self._queue.append(request)
            self._queued_faces += len(crops)
            self._cond.notify_all()
        return Pending(request)

    def predict(self, crops: Sequence[U8]) -> F32:
        """`submit(crops).result()`: the rows of these crops, computed in a shared batch."""
        return self.submit(crops).result()

    # The worker.

    def _work(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                self._run(batch)
        except BaseException as exc:  # never leave a caller waiting on a dead worker
            log.exception("expression inference batcher failed")
            with self._cond:
                self._stopped = True
                waiting = list(self._queue)
                self._queue.clear()
                self._queued_faces = 0
            self._fail(waiting, BatcherStopped(f"the expression inference batcher failed: {exc}"))
            raise

    def _next_batch(self) -> list[_Request] | None:
        """Wait for a first request, then for more until `max_batch` faces are queued or
        `max_wait_s` has passed since the first arrived; take whole requests up to
        `max_batch` faces (at least one). None: stopped."""
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            deadline = self._queue[0].submitted + self.max_wait_s
            while self._queued_faces < self.max_batch and not self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._stopped:  # stop() has failed the queued requests
                return None
            batch = [self._queue.popleft()]
            size = len(batch[0].crops)
            while self._queue and size + len(self._queue[0].crops) <= self.max_batch:
                request = self._queue.popleft()
                batch.append(request)
                size += len(request.crops)
            self._queued_faces -= size
            return batch

    def _run(self, batch: list[_Request]) -> None:
        crops = [c for request in batch for c in request.crops]
        try:
            probs = self._predict(crops)
            if len(probs) != len(crops):
                raise RuntimeError(f"the model gave {len(probs)} rows for {len(crops)} faces")
        except BaseException as exc:
            self.stats.failed_batches += 1
            self._fail(batch, exc)
            if not isinstance(exc, Exception):  # the worker ends (and fails the queue)
                raise
            return
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.faces += len(crops)
        self.stats.largest = max(self.stats.largest, len(crops))
        start = 0
        for request in batch:
            end = start + len(request.crops)
            request.finish(probs[start:end], None)
            start = end

    @staticmethod
    def _fail(requests: Sequence[_Request], error: BaseException) -> None:
        for request in requests:
            request.finish(None, error)


class CropClassifier(Protocol):
    """What `BatchedClassifier` needs of the expression classifier (OnnxExpressionClassifier)."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def spec(self) -> ExpressionSpec: ...

    def predict_crops(self, crops: Sequence[U8]) -> F32: ...


class BatchedClassifier:
    """An `ExpressionClassifier` whose model runs in a shared `InferenceBatcher`.

    The crops are made on the caller's thread exactly as the classifier makes them, and the
    batcher runs the classifier's own `predict_crops`, so the rows are the classifier's."""

    def __init__(self, classifier: CropClassifier, batcher: InferenceBatcher) -> None:
        self._classifier = classifier
        self.batcher = batcher

    @classmethod
    def around(
        cls, classifier: CropClassifier, *, max_batch: int = 64, max_wait_ms: float = 10.0
    ) -> BatchedClassifier:
        """A classifier with a batcher of its own around `classifier.predict_crops`."""
        batcher = InferenceBatcher(
            classifier.predict_crops, max_batch=max_batch, max_wait_ms=max_wait_ms
        )
        return cls(classifier, batcher)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._classifier.labels

    def classify(self, image: U8, faces: FaceDetections) -> ExpressionScores:
        labels = self._classifier.labels
        if len(faces) == 0:
            return ExpressionScores(np.zeros((0, len(labels)), np.float32), labels)
        spec = self._classifier.spec
        crops = crop_faces(image, faces, spec.crop, spec.input.size)
        return ExpressionScores(self.batcher.predict(crops), labels)

    # The runtime's `Background` protocol: the batcher starts and stops with the cameras.

    def start(self) -> BatchedClassifier:
        self.batcher.start()
        return self

    def stop(self) -> None:
        self.batcher.stop()

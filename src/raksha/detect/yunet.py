"""YuNet face detector: on onnxruntime (`yunet_ort`) or through OpenCV's `cv2.FaceDetectorYN`."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from raksha.detect.config import RELIABLE_FACE_PX, YuNetConfig
from raksha.detect.nms import nms, xywh_to_xyxy
from raksha.detect.resize import shrink
from raksha.detect.yunet_ort import OrtYuNet
from raksha.domain import FaceDetections
from raksha.errors import ModelError

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: Columns of one cv2 result row: x, y, w, h, five landmark (x, y) pairs, score.
_ROW = 15
#: Columns holding x and y coordinates (box corner and landmarks; not the width/height).
_XS = [0, 4, 6, 8, 10, 12]
_YS = [1, 5, 7, 9, 11, 13]
#: The detector's fixed cost of one run, in input pixels of work: measured with onnxruntime
#: on one thread, a run takes about 0.45 ms plus 0.039 ms per 1,000 input pixels
#: (64x64: 0.57 ms, 128x128: 1.04 ms, 320x192: 3.1 ms, 640x384: 10.1 ms; AMD EPYC).
_RUN_OVERHEAD_PX = 12_000


class _CvYuNet:
    """One `cv2.FaceDetectorYN`; `setInputSize` is called only when the image size changes."""

    def __init__(self, model_path: Path, cfg: YuNetConfig) -> None:
        self._size = (320, 320)
        logging = cv2.utils.logging
        old_level = logging.getLogLevel()
        # OpenCV 5 warns on stderr that the new graph engine ignores targets; not our concern.
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)
        try:
            self._det = cv2.FaceDetectorYN.create(
                str(model_path), "", self._size, cfg.score_threshold, cfg.nms_threshold, cfg.top_k
            )
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
            raise ModelError(f"cannot load face detector model {model_path}: {reason}") from None
        finally:
            logging.setLogLevel(old_level)

    def run(self, image: U8) -> F32:
        """(N,15) rows in `image` pixel coordinates."""
        size = (int(image.shape[1]), int(image.shape[0]))
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, faces = self._det.detect(np.ascontiguousarray(image))
        if faces is None:
            return np.zeros((0, _ROW), np.float32)
        return np.asarray(faces, np.float32).reshape(-1, _ROW)


def _backend(model_path: Path, cfg: YuNetConfig) -> _CvYuNet | OrtYuNet:
    if cfg.backend == "onnxruntime":
        return OrtYuNet(model_path, cfg)
    return _CvYuNet(model_path, cfg)


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length), evenly spread.

    Neighbouring tiles overlap by at least `overlap` × `tile` pixels; the last tile ends
    exactly at `length`. A length that fits in one tile gives [0].
    """
    if length <= tile:
        return [0]
    stride = max(1.0, tile * (1.0 - overlap))
    count = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _cores(starts: list[int], tile: int, length: int) -> list[tuple[float, float]]:
    """The part of the axis each tile answers for: overlaps are split at their midpoint."""
    bounds = [0.0] + [(starts[i] + tile + starts[i + 1]) / 2 for i in range(len(starts) - 1)]
    bounds.append(float(length))
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


class YuNetDetector:
    """Faces with five landmarks from a YuNet ONNX model, in full-resolution pixels.

    The frame is resized so its long side is `cfg.max_long_side` (never upscaled) before
    detection, or smaller with `cfg.min_face_px` (a face of that size then spans
    `RELIABLE_FACE_PX` at the detector's input). With `small_faces="upscale"` it is resized
    to `cfg.small_faces_long_side` instead (upscaled if need be). With `small_faces="tiles"`
    the `max_long_side` pass (which finds the large faces) is followed by one over
    overlapping full-resolution tiles of `cfg.tile_size` (which finds the small ones); each
    tile keeps the faces whose centre lies in its share of the overlaps, and all boxes are
    merged with NMS.

    `cfg.threads` > 0 sets OpenCV's thread count (process-wide) and onnxruntime's for this
    detector's sessions. `detect` may be called from several threads but runs one call at a
    time; give each worker its own detector for parallel detection.
    """

    def __init__(self, model_path: Path, cfg: YuNetConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else YuNetConfig()
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"face detector model not found: {model_path}")
        if self.cfg.threads > 0:
            cv2.setNumThreads(self.cfg.threads)
        self._whole = _backend(model_path, self.cfg)
        # Tiles share one size, so they get their own detector instead of resizing the
        # whole-frame one back and forth on every frame.
        self._tiles = _backend(model_path, self.cfg) if self.cfg.small_faces == "tiles" else None
        # Regions, too, share one input size (`region_side`); made on first use.
        self._model_path = model_path
        self._regions: _CvYuNet | OrtYuNet | None = None
        # Both backends keep per-size state between calls (input size, input buffer): one
        # caller at a time.
        self._lock = threading.Lock()

    def detect(self, image: npt.NDArray[np.uint8]) -> FaceDetections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR image, got {image.shape} {image.dtype}")
        h, w = int(image.shape[0]), int(image.shape[1])
        if h == 0 or w == 0:
            return FaceDetections.empty()
        with self._lock:
            return self._detect(image, h, w)

    def _scan_long_side(self, h: int, w: int) -> int:
        """Long side of the image the whole-frame search runs on."""
        long_side = max(h, w)
        if self.cfg.small_faces == "upscale":
            return self.cfg.small_faces_long_side
        target = min(self.cfg.max_long_side, long_side)
        if self.cfg.min_face_px > 0:
            fit = long_side * RELIABLE_FACE_PX / self.cfg.min_face_px
            target = min(target, max(round(fit), min(64, long_side)))
        return target

    def regions_pay(self, height: int, width: int, count: int) -> bool:
        """Whether searching `count` regions costs less than one whole-frame search (by the
        detector's input pixels plus its fixed cost per run; tiles count as whole-frame)."""
        if count == 0:
            return True
        if self.cfg.small_faces == "tiles":
            return count <= 2
        k = self._scan_long_side(height, width) / max(height, width, 1)
        scan_w = math.ceil(round(width * k) / 32) * 32
        scan_h = math.ceil(round(height * k) / 32) * 32
        side = self.cfg.region_side
        return count * (side * side + _RUN_OVERHEAD_PX) < scan_w * scan_h + _RUN_OVERHEAD_PX

    def detect_regions(self, image: U8, regions: npt.NDArray[np.float32]) -> FaceDetections:
        """Faces found in the (M,4) xyxy `regions` of `image` (each made square about its
        centre and searched at `region_side` px), merged with NMS, in image pixels. A face
        whose box is cut by a region edge that lies inside the image is left out."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR image, got {image.shape} {image.dtype}")
        boxes = np.asarray(regions, np.float32).reshape(-1, 4)
        h, w = int(image.shape[0]), int(image.shape[1])
        if h == 0 or w == 0 or len(boxes) == 0:
            return FaceDetections.empty()
        with self._lock:
            if self._regions is None:
                self._regions = _backend(self._model_path, self.cfg)
            found = [self._detect_region(self._regions, image, box) for box in boxes]
        rows = np.concatenate(found)
        if len(boxes) > 1 and len(rows) > 1:
            rows = rows[nms(xywh_to_xyxy(rows), rows[:, 14], self.cfg.nms_threshold)]
        return _to_detections(rows, w, h)

    def _detect_region(self, backend: _CvYuNet | OrtYuNet, image: U8, box: F32) -> F32:
        h, w = image.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(float(box[2] - box[0]), float(box[3] - box[1]), 2.0)
        x0, y0 = math.floor(cx - side / 2), math.floor(cy - side / 2)
        n = math.ceil(side)
        # The part of the square inside the image, placed in a black square input.
        vx0, vy0, vx1, vy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
        if vx1 - vx0 < 2 or vy1 - vy0 < 2:
            return np.zeros((0, _ROW), np.float32)
        out = self.cfg.region_side
        k = out / n
        px0, py0 = min(round((vx0 - x0) * k), out - 1), min(round((vy0 - y0) * k), out - 1)
        pw = max(1, min(round((vx1 - vx0) * k), out - px0))
        ph = max(1, min(round((vy1 - vy0) * k), out - py0))
        visible = image[vy0:vy1, vx0:vx1]
        if pw <= visible.shape[1] and ph <= visible.shape[0]:
            small = shrink(visible, pw, ph)
        else:
            small = np.asarray(cv2.resize(visible, (pw, ph), interpolation=cv2.INTER_LINEAR))
        patch = np.zeros((out, out, 3), np.uint8)
        patch[py0 : py0 + ph, px0 : px0 + pw] = small
        rows = backend.run(patch)
        if rows.shape[0] == 0:
            return rows
        sx, sy = (vx1 - vx0) / pw, (vy1 - vy0) / ph
        rows[:, _XS] = (rows[:, _XS] - px0) * sx + vx0
        rows[:, _YS] = (rows[:, _YS] - py0) * sy + vy0
        rows[:, 2] *= sx
        rows[:, 3] *= sy
        # Left out: boxes reaching (within one input pixel) an edge of the region that
        # lies inside the image; that face may be cut, and is the whole-frame search's.
        bx0, by0 = rows[:, 0], rows[:, 1]
        bx1, by1 = bx0 + rows[:, 2], by0 + rows[:, 3]
        cut = (
            ((vx0 > 0) & (bx0 <= vx0 + sx))
            | ((vy0 > 0) & (by0 <= vy0 + sy))
            | ((vx1 < w) & (bx1 >= vx1 - sx))
            | ((vy1 < h) & (by1 >= vy1 - sy))
        )
        return np.ascontiguousarray(rows[~cut])

    def _detect(self, image: U8, h: int, w: int) -> FaceDetections:
        long_side = max(h, w)
        target = self._scan_long_side(h, w)
        rows = self._detect_resized(image, target / long_side)
        if self._tiles is not None and (target < long_side or long_side > self.cfg.tile_size):
            rows = np.concatenate([rows, self._detect_tiles(image)])
            rows = rows[nms(xywh_to_xyxy(rows), rows[:, 14], self.cfg.nms_threshold)]
        return _to_detections(rows, w, h)

    def _detect_resized(self, image: U8, scale: float) -> F32:
        h, w = image.shape[:2]
        if scale == 1.0:
            return self._whole.run(image)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        if scale < 1.0:
            small = shrink(image, nw, nh)
        else:
            small = np.asarray(cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR))
        rows = self._whole.run(small)
        sx, sy = w / nw, h / nh
        rows[:, 0:14:2] *= sx
        rows[:, 1:14:2] *= sy
        return rows

    def _detect_tiles(self, image: U8) -> F32:
        assert self._tiles is not None
        h, w = image.shape[:2]
        size = self.cfg.tile_size
        overlap = self.cfg.tile_overlap
        xs, ys = tile_starts(w, size, overlap), tile_starts(h, size, overlap)
        x_cores, y_cores = _cores(xs, size, w), _cores(ys, size, h)
        found = []
        for y0, (cy0, cy1) in zip(ys, y_cores, strict=True):
            for x0, (cx0, cx1) in zip(xs, x_cores, strict=True):
                rows = self._tiles.run(image[y0 : y0 + size, x0 : x0 + size])
                rows[:, _XS] += x0
                rows[:, _YS] += y0
                cx = rows[:, 0] + rows[:, 2] / 2
                cy = rows[:, 1] + rows[:, 3] / 2
                found.append(rows[(cx >= cx0) & (cx < cx1) & (cy >= cy0) & (cy < cy1)])
        return np.concatenate(found)


def _to_detections(rows: F32, width: int, height: int) -> FaceDetections:
    if rows.shape[0] == 0:
        return FaceDetections.empty()
    boxes = xywh_to_xyxy(rows)
    boxes[:, 0::2] = np.minimum(np.maximum(boxes[:, 0::2], 0.0), width)
    boxes[:, 1::2] = np.minimum(np.maximum(boxes[:, 1::2], 0.0), height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not keep.any():
        return FaceDetections.empty()
    return FaceDetections(
        boxes=np.ascontiguousarray(boxes[keep], np.float32),
        scores=np.ascontiguousarray(rows[keep, 14], np.float32),
        landmarks=np.ascontiguousarray(rows[keep, 4:14].reshape(-1, 5, 2), np.float32),
    )

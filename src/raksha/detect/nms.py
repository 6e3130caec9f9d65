"""Greedy non-maximum suppression on xyxy boxes (pure numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def nms(
    boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou_threshold: float
) -> npt.NDArray[np.int64]:
    """Indices of the boxes kept, best score first.

    A box is dropped when its IoU with an already kept, higher-scoring box exceeds
    `iou_threshold`.
    """
    n = boxes.shape[0]
    if n == 0:
        return np.zeros((0,), np.int64)
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0.0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0.0)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def xywh_to_xyxy(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Corner boxes (x1, y1, x2, y2) from the first four columns (x, y, w, h) of `rows`."""
    boxes = rows[:, 0:4].copy()
    boxes[:, 2] += boxes[:, 0]
    boxes[:, 3] += boxes[:, 1]
    return boxes

"""`--detect`: find the face in a labelled still with the runtime's detector and cut it out with
the runtime's crop policy, so a model is measured on the crops it would see in `raksha analyze`
rather than on a whole image squashed into its input.

Two steps are specific to stills, and only widen what the detector can see: an image whose long
side is under `min_long_side` is enlarged first (FER+'s 48 px crops would be too small for
YuNet), and every image gets a replicated border of `pad` times its size on each side (a face
that fills a tight crop touches the image edge, where detectors miss it). The crop itself is
`raksha.expression.preprocess.crop_faces` with the model's own CropSpec, as at run time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from raksha.detect.base import FaceDetector
from raksha.domain import FaceDetections
from raksha.expression.preprocess import crop_faces
from raksha.expression.spec import CropSpec

U8 = npt.NDArray[np.uint8]


class DetectCropper:
    """Callable: whole BGR image -> a `size` x `size` BGR crop of its main face, or None."""

    def __init__(
        self,
        detector: FaceDetector,
        crop: CropSpec,
        size: int,
        *,
        pad: float = 0.25,
        min_long_side: int = 192,
    ) -> None:
        self.detector = detector
        self.crop = crop
        self.size = size
        self.pad = pad
        self.min_long_side = min_long_side

    def prepare(self, image: U8) -> U8:
        """The image as the detector is shown it: enlarged if small, then padded."""
        if image.ndim == 2:
            image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        h, w = image.shape[:2]
        long_side = max(h, w)
        if long_side < self.min_long_side:
            k = self.min_long_side / long_side
            image = np.asarray(
                cv2.resize(image, (round(w * k), round(h * k)), interpolation=cv2.INTER_CUBIC),
                dtype=np.uint8,
            )
            h, w = image.shape[:2]
        py, px = round(self.pad * h), round(self.pad * w)
        return np.asarray(
            cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE), dtype=np.uint8
        )

    def main_face(self, image: U8) -> FaceDetections:
        """The largest face the detector finds in the prepared image (empty when none)."""
        faces = self.detector.detect(image)
        if len(faces) <= 1:
            return faces
        area = faces.widths * faces.heights
        keep = np.zeros(len(faces), dtype=bool)
        keep[int(np.argmax(area))] = True
        return faces[keep]

    def __call__(self, image: U8) -> U8 | None:
        prepared = self.prepare(image)
        face = self.main_face(prepared)
        if len(face) == 0:
            return None
        return crop_faces(prepared, face, self.crop, self.size)[0]


def build_detect_cropper(
    crop: CropSpec, size: int, models_dir: Path | None = None
) -> DetectCropper:
    """A DetectCropper with the default runtime detector (`detector:` defaults)."""
    from raksha.detect.config import DetectorConfig
    from raksha.detect.factory import build_detector

    return DetectCropper(build_detector(DetectorConfig(), models_dir), crop, size)

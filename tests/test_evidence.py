"""Evidence capture on a real photo with four faces found by YuNet."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from cryptography.fernet import Fernet

from raksha.errors import ConfigError
from raksha.incidents.evidence import EvidenceWriter, load_key, read_evidence, sha256_file
from raksha.incidents.model import EvidenceKind
from raksha.site.config import EvidenceConfig

Boxes = list[tuple[float, float, float, float]]


@pytest.fixture(scope="module")
def photo(faces_dir: Path, models_dir: Path) -> tuple[npt.NDArray[np.uint8], Boxes]:
    image = cv2.imread(str(faces_dir / "women_4faces_smiling.jpg"))
    assert image is not None
    h, w = image.shape[:2]
    detector = cv2.FaceDetectorYN.create(
        str(models_dir / "face_detection_yunet_2023mar.onnx"), "", (w, h), 0.8, 0.3, 5000
    )
    _, faces = detector.detect(image)
    assert faces is not None and len(faces) == 4
    boxes = sorted(
        (float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3])) for f in faces
    )
    return image, boxes


def _region(
    img: npt.NDArray[np.uint8], box: tuple[float, float, float, float]
) -> npt.NDArray[np.uint8]:
    x1, y1, x2, y2 = (round(v) for v in box)
    return img[y1:y2, x1:x2]


def _sharpness(img: npt.NDArray[np.uint8]) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_face_crop_and_blurred_frame(
    tmp_path: Path, photo: tuple[npt.NDArray[np.uint8], Boxes]
) -> None:
    image, boxes = photo
    subject, others = boxes[1], boxes[:1] + boxes[2:]
    writer = EvidenceWriter(tmp_path / "ev", face_margin=0.3)
    files = writer.capture("inc-0001", image, subject, others)
    assert [f.kind for f in files] == [EvidenceKind.FACE, EvidenceKind.FRAME_BLURRED]
    for f in files:
        path = Path(f.path)
        assert path.parent == tmp_path / "ev" / "inc-0001"
        assert path.suffix == ".jpg"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256 == sha256_file(path)
        assert path.stat().st_size == f.bytes
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "ev" / "inc-0001").iterdir()) == [
        "face.jpg",
        "frame_blurred.jpg",
    ]

    face = cv2.imread(files[0].path)
    bw, bh = subject[2] - subject[0], subject[3] - subject[1]
    assert face.shape[1] == pytest.approx(bw * 1.6, abs=3) and face.shape[0] == pytest.approx(
        bh * 1.6, abs=3
    )

    scene = cv2.imread(files[1].path)
    assert scene.shape == image.shape
    # The subject's face is untouched (only JPEG re-encoding noise).
    subj_diff = np.abs(
        _region(scene, subject).astype(int) - _region(image, subject).astype(int)
    ).mean()
    assert subj_diff < 2.0
    assert _sharpness(_region(scene, subject)) > 0.8 * _sharpness(_region(image, subject))
    # Every other face is changed strongly and has lost its detail.
    for box in others:
        diff = np.abs(_region(scene, box).astype(int) - _region(image, box).astype(int)).mean()
        assert diff > 10.0
        assert _sharpness(_region(scene, box)) < 0.05 * _sharpness(_region(image, box))
    # Away from the faces the frame is as it was.
    corner = (0.0, 300.0, 120.0, 480.0)
    assert (
        np.abs(_region(scene, corner).astype(int) - _region(image, corner).astype(int)).mean() < 2.0
    )


def test_a_neighbour_inside_the_face_crop_is_blurred_there_too(
    tmp_path: Path, photo: tuple[npt.NDArray[np.uint8], Boxes]
) -> None:
    """The face crop is cut from the blurred frame: a bystander whose face falls inside the
    subject's margin is as anonymous in face.jpg as in the frame."""
    image, boxes = photo
    subject, others = boxes[1], boxes[:1] + boxes[2:]
    margin = 2.0  # wide enough to take in a neighbour
    files = EvidenceWriter(tmp_path / "ev", face_margin=margin).capture(
        "inc-1", image, subject, others
    )
    face = cv2.imread(files[0].path)
    bw, bh = subject[2] - subject[0], subject[3] - subject[1]
    left = max(0, round(subject[0] - margin * bw))
    top = max(0, round(subject[1] - margin * bh))
    checked = 0
    for box in others:
        x1, y1 = max(box[0], left), max(box[1], top)
        x2 = min(box[2], left + face.shape[1])
        y2 = min(box[3], top + face.shape[0])
        if x2 - x1 < 0.6 * (box[2] - box[0]) or y2 - y1 < 0.6 * (box[3] - box[1]):
            continue  # this neighbour is not (mostly) inside the crop
        inside = (x1 - left, y1 - top, x2 - left, y2 - top)
        assert _sharpness(_region(face, inside)) < 0.05 * _sharpness(
            _region(image, (x1, y1, x2, y2))
        )
        checked += 1
    assert checked >= 1, "no neighbour fell inside the crop; widen the margin"
    # The subject itself stays sharp.
    own = (subject[0] - left, subject[1] - top, subject[2] - left, subject[3] - top)
    assert _sharpness(_region(face, own)) > 0.8 * _sharpness(_region(image, subject))


ARCFACE_5PT = np.float32(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def test_blurred_faces_lose_their_identity(
    tmp_path: Path, faces_dir: Path, models_dir: Path
) -> None:
    """Other faces are no longer found at the pipeline's threshold, and a face-recognition
    embedding taken at their original landmarks no longer matches them."""
    import onnxruntime as ort

    image = cv2.imread(str(faces_dir / "women_4faces_smiling.jpg"))
    h, w = image.shape[:2]
    detector = cv2.FaceDetectorYN.create(
        str(models_dir / "face_detection_yunet_2023mar.onnx"), "", (w, h), 0.8, 0.3, 5000
    )
    _, faces = detector.detect(image)
    assert faces is not None and len(faces) == 4
    session = ort.InferenceSession(
        str(models_dir / "mobileface_identification_v2.onnx"), providers=["CPUExecutionProvider"]
    )

    def embed(img: npt.NDArray[np.uint8], row: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        m, _ = cv2.estimateAffinePartial2D(row[4:14].reshape(5, 2), ARCFACE_5PT, method=cv2.LMEDS)
        crop = cv2.warpAffine(img, m, (112, 112)).astype(np.float32)
        e = session.run(None, {"data": crop.transpose(2, 0, 1)[None]})[0][0]
        return np.asarray(e / np.linalg.norm(e), np.float32)

    boxes = [(float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3])) for f in faces]
    files = EvidenceWriter(tmp_path).capture("inc-2", image, boxes[0], boxes[1:])
    scene = cv2.imread(files[1].path)
    _, found = detector.detect(scene)
    assert found is not None and len(found) == 1
    cx, cy = found[0][0] + found[0][2] / 2, found[0][1] + found[0][3] / 2
    assert boxes[0][0] < cx < boxes[0][2] and boxes[0][1] < cy < boxes[0][3]
    assert float(embed(image, faces[0]) @ embed(scene, faces[0])) > 0.9  # subject kept
    for row in faces[1:]:
        # Same person scores about 0.7 with this model, different people about 0.0-0.3.
        assert float(embed(image, row) @ embed(scene, row)) < 0.2


def test_encrypted_evidence_hash_covers_stored_bytes_and_decrypts(
    tmp_path: Path, photo: tuple[npt.NDArray[np.uint8], Boxes]
) -> None:
    image, boxes = photo
    key = Fernet.generate_key()
    cfg = EvidenceConfig(dir=tmp_path / "enc", encrypt=True, key_env="EV_KEY")
    writer = EvidenceWriter.from_config(cfg, {"EV_KEY": key.decode()})
    assert writer.encrypts and key.decode() not in repr(writer)
    files = writer.capture("inc-3", image, boxes[2], [boxes[0], boxes[1], boxes[3]])
    plain = EvidenceWriter(tmp_path / "plain").capture(
        "inc-3", image, boxes[2], [boxes[0], boxes[1], boxes[3]]
    )
    for f, p in zip(files, plain, strict=True):
        stored = Path(f.path).read_bytes()
        assert f.path.endswith(".jpg.enc")
        assert not stored.startswith(b"\xff\xd8")  # not a JPEG on disk
        assert hashlib.sha256(stored).hexdigest() == f.sha256 and len(stored) == f.bytes
        jpeg = read_evidence(f.path, key)
        assert jpeg.startswith(b"\xff\xd8") and jpeg == Path(p.path).read_bytes()
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.ndim == 3
        with pytest.raises(ValueError, match="cannot be decrypted"):
            read_evidence(f.path, Fernet.generate_key())
        with pytest.raises(ValueError, match="key is needed"):
            read_evidence(f.path)


def test_key_errors_name_the_variable_not_the_value() -> None:
    with pytest.raises(ConfigError, match=r"no key: .* the EV_KEY environment variable"):
        load_key("EV_KEY", {})
    with pytest.raises(ConfigError) as info:
        load_key("EV_KEY", {"EV_KEY": "not-a-key-42"})
    assert "EV_KEY" in str(info.value) and "not-a-key-42" not in str(info.value)
    with pytest.raises(ConfigError):
        EvidenceWriter.from_config(EvidenceConfig(encrypt=True, key_env="EV_KEY"), {})


def test_repeat_capture_keeps_earlier_files_and_leaves_no_temp_files(
    tmp_path: Path, photo: tuple[npt.NDArray[np.uint8], Boxes]
) -> None:
    image, boxes = photo
    writer = EvidenceWriter(tmp_path)
    first = writer.capture("inc-4", image, boxes[0], boxes[1:])
    second = writer.capture("inc-4", image, boxes[1], [boxes[0]])
    assert {Path(f.path).name for f in second} == {"face-1.jpg", "frame_blurred-1.jpg"}
    for f in first + second:
        assert sha256_file(Path(f.path)) == f.sha256
    assert len(list((tmp_path / "inc-4").iterdir())) == 4  # no leftover temporary files


def test_bad_inputs_are_refused(tmp_path: Path, photo: tuple[npt.NDArray[np.uint8], Boxes]) -> None:
    image, boxes = photo
    writer = EvidenceWriter(tmp_path)
    for bad_id in ("../escape", "a/b", "", ".."):
        with pytest.raises(ValueError, match="safe folder name"):
            writer.capture(bad_id, image, boxes[0])
    with pytest.raises(ValueError, match="outside"):
        writer.capture("inc-5", image, (5000, 5000, 5100, 5100))
    with pytest.raises(ValueError, match="HxWx3"):
        writer.capture("inc-5", image[:, :, 0], boxes[0])
    assert not (tmp_path / "inc-5").exists()
    # Boxes partly outside the frame are clipped, not refused.
    files = writer.capture(
        "inc-6", image, (-20, -20, 60, 60), [(image.shape[1] - 30, 10, image.shape[1] + 40, 90)]
    )
    assert len(files) == 2

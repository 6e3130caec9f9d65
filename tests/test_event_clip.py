"""Event clips: the ring buffer keeps only the last seconds in memory and hands a clip the
frames around a decision; every face but the subject's is blurred in every frame (also where
the detector missed it for a frame); the stored clip is an encrypted MP4 with its hashes;
the dashboard plays it pixelated and unmasked only with a reason, audited. The end-to-end
run (a real distress clip through `raksha run`) is in tests/test_run_pipeline.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.fernet import Fernet

from dashboard_support import STATION_A, new_incident
from raksha.audit.log import AuditLog
from raksha.auth.roles import Role
from raksha.domain import DistressSample, FaceResult, Frame
from raksha.incidents.clip import ClipFrame, decode_mp4, make_clip, pixelated_clip
from raksha.incidents.evidence import EvidenceWriter
from raksha.incidents.model import EvidenceKind
from raksha.pipeline.clip_recorder import ClipRecorder, PendingClip
from raksha.store import IncidentStore, evidence_rows

SUBJECT = (340.0, 100.0, 500.0, 300.0)
BYSTANDER = (60.0, 120.0, 200.0, 280.0)


def _scene(faces_dir: Path) -> np.ndarray:  # type: ignore[type-arg]
    """A 640x400 scene with two copies of a real face: the subject and a bystander."""
    face = cv2.imread(str(faces_dir / "astronaut.jpg"), cv2.IMREAD_COLOR)
    assert face is not None
    scene = np.full((400, 640, 3), 90, np.uint8)
    for x1, y1, x2, y2 in (SUBJECT, BYSTANDER):
        w, h = int(x2 - x1), int(y2 - y1)
        scene[int(y1) : int(y1) + h, int(x1) : int(x1) + w] = cv2.resize(face, (w, h))
    return scene


def _face(track: int, box: tuple[float, float, float, float]) -> FaceResult:
    sample = DistressSample(evidence=0.0, score=0.0, active=False, quality=1.0)
    return FaceResult(track, box, 0.9, {"neutral": 1.0}, sample)


def _frame(image: np.ndarray, t: float) -> Frame:  # type: ignore[type-arg]
    return Frame(image, t, round(t * 5), "cam-1", 0.0)


def test_the_buffer_keeps_only_the_last_seconds_and_a_clip_spans_the_decision() -> None:
    done: list[PendingClip] = []
    rec = ClipRecorder("cam-1", done.append, pre_s=2.0, post_s=1.0, max_width=320)
    image = np.zeros((240, 640, 3), np.uint8)
    for i in range(50):  # 10 s at 5 fps, no incident: at most 2 s stay
        rec.push(_frame(image, i * 0.2), [_face(7, (64.0, 40.0, 128.0, 104.0))])
        assert rec.buffered <= 11
    assert done == [] and rec.pending == 0
    rec.start("inc-1", 7, decided_t=49 * 0.2)
    rec.start("inc-1", 7, decided_t=49 * 0.2)  # a re-detection: still one clip
    for i in range(50, 60):
        rec.push(_frame(image, i * 0.2), [])
    assert len(done) == 1 and rec.pending == 0
    clip = done[0]
    times = [f.t for f in clip.frames]
    assert times[0] == pytest.approx(49 * 0.2 - 2.0) and times[-1] >= 49 * 0.2 + 1.0
    assert times == sorted(times) and len(times) == len(set(times))
    # Scaled to the width asked for, the boxes with it.
    first = clip.frames[0]
    assert first.image.shape[:2] == (120, 320)
    assert first.faces == ((7, (32.0, 20.0, 64.0, 52.0)),)


def test_flush_ends_clips_in_progress_with_what_there_is() -> None:
    done: list[PendingClip] = []
    rec = ClipRecorder("cam-1", done.append, pre_s=1.0, post_s=5.0)
    image = np.zeros((100, 100, 3), np.uint8)
    for i in range(5):
        rec.push(_frame(image, i * 0.2), [])
    rec.start("inc-2", 3, decided_t=0.8)
    rec.push(_frame(image, 1.0), [])
    rec.flush()
    assert [c.incident_id for c in done] == ["inc-2"] and len(done[0].frames) == 6
    assert rec.buffered == 0


def test_every_face_but_the_subjects_is_blurred_in_every_frame(faces_dir: Path) -> None:
    scene = _scene(faces_dir)
    frames = [
        ClipFrame(scene, i * 0.2, ((1, SUBJECT), (2, BYSTANDER)) if i != 3 else ((1, SUBJECT),))
        for i in range(8)
    ]
    images, _times = decode_mp4(make_clip(frames, subject_track=1))
    assert len(images) == 8
    sx1, sy1, sx2, sy2 = (int(v) for v in SUBJECT)
    bx1, by1, bx2, by2 = (int(v) for v in BYSTANDER)
    original_subject = cv2.cvtColor(scene[sy1:sy2, sx1:sx2], cv2.COLOR_BGR2GRAY)
    original_bystander = cv2.cvtColor(scene[by1:by2, bx1:bx2], cv2.COLOR_BGR2GRAY)
    for i, img in enumerate(images):
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        same = cv2.matchTemplate(grey[sy1:sy2, sx1:sx2], original_subject, cv2.TM_CCOEFF_NORMED)
        assert float(same.max()) > 0.9, f"frame {i}: the subject is altered"
        # Frame 3 lost the bystander's box: the neighbours' boxes still cover the face.
        edges = cv2.Laplacian(grey[by1:by2, bx1:bx2], cv2.CV_64F).var()
        sharp = cv2.Laplacian(original_bystander, cv2.CV_64F).var()
        assert edges < 0.1 * sharp, f"frame {i}: the bystander's face is not blurred"


def test_a_track_that_jumps_onto_a_passer_by_does_not_unblur_them(faces_dir: Path) -> None:
    """The tracker gives the subject's id to the bystander on frames 4-5 (people crossing):
    those boxes are far from where the subject was, so they are blurred like any other."""
    scene = _scene(faces_dir)
    frames = [
        ClipFrame(
            scene,
            i * 0.2,
            ((1, SUBJECT), (2, BYSTANDER)) if i < 4 else ((1, BYSTANDER), (3, SUBJECT)),
        )
        for i in range(6)
    ]
    images, _ = decode_mp4(make_clip(frames, subject_track=1, decided_t=0.4))
    bx1, by1, bx2, by2 = (int(v) for v in BYSTANDER)
    sharp = cv2.Laplacian(
        cv2.cvtColor(scene[by1:by2, bx1:bx2], cv2.COLOR_BGR2GRAY), cv2.CV_64F
    ).var()
    for i, img in enumerate(images):
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[by1:by2, bx1:bx2]
        assert cv2.Laplacian(grey, cv2.CV_64F).var() < 0.1 * sharp, f"frame {i} shows them"


def test_byte_ranges_of_a_clip() -> None:
    from raksha.api.routes_incidents import byte_range

    assert byte_range(None, 100) is None and byte_range("items=0-1", 100) is None
    assert byte_range("bytes=0-", 100) == (0, 99)
    assert byte_range("bytes=10-19", 100) == (10, 19)
    assert byte_range("bytes=90-500", 100) == (90, 99)
    assert byte_range("bytes=-30", 100) == (70, 99)
    assert byte_range("bytes=100-", 100) == (-1, -1)
    assert byte_range("bytes=5-1", 100) == (-1, -1)
    assert byte_range("bytes=0-1,5-6", 100) is None  # several ranges: the whole body


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    s = IncidentStore.open(f"sqlite:///{tmp_path / 'raksha.db'}")
    yield s
    s.close()


def test_a_stored_clip_is_encrypted_hashed_and_joins_its_incident(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    writer = EvidenceWriter(tmp_path / "evidence", key=Fernet.generate_key())
    inc = new_incident(STATION_A)
    iid = store.create_incident(inc, [], {"kind": "distress"}, ["store"])
    scene = _scene(faces_dir)
    mp4 = make_clip([ClipFrame(scene, i * 0.2, ((1, SUBJECT),)) for i in range(5)], 1)
    ev = writer.store_clip(iid, mp4)
    assert ev.kind is EvidenceKind.CLIP and ev.path.endswith("clip.mp4.enc")
    raw = Path(ev.path).read_bytes()
    assert raw[4:8] != b"ftyp" and raw.startswith(b"gAAAAA")  # a Fernet token, not an MP4
    assert hashlib.sha256(raw).hexdigest() == ev.sha256
    assert ev.content_sha256 == hashlib.sha256(mp4).hexdigest()
    assert evidence_rows.append_files(store.engine, iid, [ev])
    incident = store.get_incident(iid)
    assert incident is not None and [e.kind for e in incident.evidence] == [EvidenceKind.CLIP]
    assert writer.read(incident.evidence[0]) == mp4
    assert not evidence_rows.append_files(store.engine, "no-such-incident", [ev])


def test_the_dashboard_plays_a_clip_pixelated_and_unmasks_it_only_with_a_reason(
    tmp_path: Path, store: IncidentStore, faces_dir: Path
) -> None:
    from raksha.auth.users import UserStore
    from raksha.services.errors import Invalid
    from raksha.services.incidents import Caller, IncidentService

    key = Fernet.generate_key()
    writer = EvidenceWriter(tmp_path / "evidence", key=key)
    iid = store.create_incident(new_incident(STATION_A), [], {"kind": "distress"}, ["store"])
    scene = _scene(faces_dir)
    mp4 = make_clip([ClipFrame(scene, i * 0.2, ((1, SUBJECT),)) for i in range(5)], 1)
    assert evidence_rows.append_files(store.engine, iid, [writer.store_clip(iid, mp4)])
    users = UserStore(store.engine)
    sup = users.add("sup_a", Role.SUPERVISOR, "a long river passphrase", station_id=STATION_A)
    audit = AuditLog(store.engine)
    service = IncidentService(store, audit, writer)
    caller = Caller(sup, "sup_a")
    shown = service.evidence(caller, iid, 1, unblur=False, reason=None)
    assert shown.view == "blurred" and shown.kind is EvidenceKind.CLIP
    images, _ = decode_mp4(shown.data)
    sx1, sy1, sx2, sy2 = (int(v) for v in SUBJECT)
    grey = cv2.cvtColor(images[0], cv2.COLOR_BGR2GRAY)[sy1:sy2, sx1:sx2]
    sharp = cv2.Laplacian(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)[sy1:sy2, sx1:sx2], cv2.CV_64F)
    assert cv2.Laplacian(grey, cv2.CV_64F).var() < 0.1 * sharp.var(), "not pixelated"
    with pytest.raises(Invalid):
        service.evidence(caller, iid, 1, unblur=True, reason="")
    unmasked = service.evidence(caller, iid, 1, unblur=True, reason="court order 12/2026")
    assert unmasked.view == "original" and unmasked.data == mp4
    entries = [e for e in audit.entries(limit=None) if e.target == f"incident:{iid}/evidence:1"]
    views = [(e.action, e.details.get("view"), e.details.get("reason")) for e in entries]
    assert ("evidence.view", "blurred", None) in views
    assert ("evidence.unblur", "original", "court order 12/2026") in views
    assert pixelated_clip(mp4) != mp4

"""Serving evidence: integrity check, decryption, and the blurred view.

What "blurred" and "unblurred" mean here (the pipeline stores no unblurred original frame):

- `frame_blurred` (the whole scene, bystanders already pixelated by the pipeline): the blurred
  view also pixelates the subject, found in the frame by matching the subject's face crop; if
  the crop cannot be located, the whole frame is pixelated. The unblurred view is the stored
  file as it is (subject visible, bystanders still pixelated: nobody can see them).
- `face` (the subject's face crop): the blurred view is the crop pixelated; the unblurred view
  is the stored crop.

Every read re-computes the SHA-256 of the bytes on disk and refuses (EvidenceIntegrityError)
when it differs from the one recorded at capture; encrypted files (`.enc`) are decrypted with
the key from the environment variable named in the evidence config.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from raksha.incidents.evidence import EvidenceIntegrityError, anonymize
from raksha.incidents.model import EvidenceKind

#: Pixelation of the blurred views: about this many cells across a face.
FACE_CELLS = 6
#: A crop located with a normalised correlation at least this high counts as found.
MATCH_MIN = 0.8


def _decode(jpeg: bytes) -> npt.NDArray[np.uint8]:
    import cv2

    img = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise EvidenceIntegrityError("evidence file is not a readable JPEG")
    return np.asarray(img, dtype=np.uint8)


def _encode(img: npt.NDArray[np.uint8]) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:  # pragma: no cover
        raise EvidenceIntegrityError("cannot encode the blurred view")
    return bytes(buf.tobytes())


def _locate(
    frame: npt.NDArray[np.uint8], crop: npt.NDArray[np.uint8]
) -> tuple[int, int, int, int] | None:
    """Where `crop` sits in `frame` (x1, y1, x2, y2), or None when not found."""
    import cv2

    fh, fw = frame.shape[:2]
    ch, cw = crop.shape[:2]
    if ch > fh or cw > fw or ch < 4 or cw < 4:
        return None
    scale = min(1.0, 320.0 / max(fw, fh))
    small_f = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small_c = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        small_f = cv2.resize(small_f, (max(1, round(fw * scale)), max(1, round(fh * scale))))
        small_c = cv2.resize(small_c, (max(1, round(cw * scale)), max(1, round(ch * scale))))
    if small_c.shape[0] > small_f.shape[0] or small_c.shape[1] > small_f.shape[1]:
        return None
    if min(small_c.shape[:2]) < 3:
        return None
    res = cv2.matchTemplate(small_f, small_c, cv2.TM_CCOEFF_NORMED)
    _min, best, _minloc, loc = cv2.minMaxLoc(res)
    if not np.isfinite(best) or best < MATCH_MIN:
        return None
    x1, y1 = round(loc[0] / scale), round(loc[1] / scale)
    return x1, y1, min(fw, x1 + cw), min(fh, y1 + ch)


def blurred_view(jpeg: bytes, kind: EvidenceKind, subject_crop: bytes | None) -> bytes:
    """The blurred view of one evidence image (see the module notes)."""
    img = _decode(jpeg)
    if kind is EvidenceKind.FACE:
        return _encode(anonymize(img, FACE_CELLS))
    box = _locate(img, _decode(subject_crop)) if subject_crop is not None else None
    if box is None:
        h, w = img.shape[:2]
        return _encode(anonymize(img, max(8, round(24 * w / max(w, h)))))
    x1, y1, x2, y2 = box
    out = img.copy()
    out[y1:y2, x1:x2] = anonymize(img[y1:y2, x1:x2], FACE_CELLS)
    return _encode(out)


#: The job card's picture: this many pixel cells across, at most this wide.
JOB_CELLS = 40
JOB_MAX_W = 320


def job_picture(jpeg: bytes) -> bytes:
    """A small, coarsely pixelated copy of the (bystander-blurred) frame for a patrol unit's
    job card: enough to see where the person stands and what they wear, not who they are."""
    import cv2

    img = _decode(jpeg)
    h, w = img.shape[:2]
    if w > JOB_MAX_W:
        img = np.asarray(
            cv2.resize(
                img, (JOB_MAX_W, max(1, round(h * JOB_MAX_W / w))), interpolation=cv2.INTER_AREA
            ),
            dtype=np.uint8,
        )
    h, w = img.shape[:2]
    sw, sh = JOB_CELLS, max(1, round(JOB_CELLS * h / w))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    big = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:  # pragma: no cover
        raise EvidenceIntegrityError("cannot encode the job card picture")
    return bytes(buf.tobytes())

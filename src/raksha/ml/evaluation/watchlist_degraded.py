"""How the watchlist holds up when the camera's face is small and compressed.

The identity set's photos are sharp portraits; a street camera sees a face of 30 to 80 px in
a compressed stream. This measures the chain on probes made to look more like that: each
probe photo is shrunk so that its largest face is `face_px` wide (area averaging, as a
camera's lower resolution would), then JPEG-compressed at `jpeg_quality`, and only then
goes through the same chain as a camera face (YuNet on the whole image, alignment,
embedding; no enrolment quality check, which camera faces never meet). The gallery stays
the clean enrolled photos, as a deployment's would.

Reported per size, at a given threshold (the clean set's recommended one): the share of
probes whose face was still found, TMR, misidentification and FMR over the same known and
unknown searches as the clean figures (`watchlist.search_all`). A probe whose face is not
found is a miss when known; an unknown one is left out of the unknown searches (it cannot
match anyone, so it adds nothing to the false-match count nor to its denominator).

This is a synthetic approximation of CCTV (no motion blur, pose, low light or a real
codec's artefacts), so its figures are a lower bound on the loss, not a measurement on
cameras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.ml.evaluation.watchlist import (
    ImageRecord,
    Labelled,
    Searches,
    WatchlistDataError,
    enrol,
    search_all,
)

U8 = npt.NDArray[np.uint8]
JPEG_QUALITY = 60


def degrade(image: U8, face_width: float, face_px: float, jpeg_quality: int = JPEG_QUALITY) -> U8:
    """`image` shrunk so that a face `face_width` px wide becomes `face_px` wide (never
    enlarged), then JPEG-compressed at `jpeg_quality`."""
    import cv2

    if face_width <= 0 or face_px <= 0:
        raise ValueError("face widths must be positive")
    scale = min(1.0, face_px / face_width)
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise WatchlistDataError("cannot JPEG-encode a degraded probe")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(out, np.uint8)


def degraded_embeddings(
    folder: Path,
    rows: Sequence[Labelled],
    clean: Sequence[ImageRecord],
    face_px: float,
    *,
    models_dir: Path | None = None,
    jpeg_quality: int = JPEG_QUALITY,
) -> list[npt.NDArray[np.float32] | None]:
    """Each photo's embedding after `degrade` (None: no face found, or none in the clean
    photo either), aligned with `clean`."""
    import cv2

    from raksha.detect import YuNetConfig, build_detector
    from raksha.watchlist.align import align_face
    from raksha.watchlist.embed import FaceEmbedder

    detector = build_detector(YuNetConfig(), models_dir)
    embedder = FaceEmbedder.from_registry(models_dir)
    crops: list[U8] = []
    at: list[int] = []
    for i, (row, rec) in enumerate(zip(rows, clean, strict=True)):
        if rec.width_px is None:
            continue
        read = cv2.imread(str(folder / row.file), cv2.IMREAD_COLOR)
        if read is None:
            raise WatchlistDataError(f"cannot decode image {folder / row.file}")
        image = degrade(np.ascontiguousarray(read, np.uint8), rec.width_px, face_px, jpeg_quality)
        faces = detector.detect(image)
        if not len(faces):
            continue
        j = int(np.argmax(faces.widths))
        crops.append(align_face(image, faces.landmarks[j]))
        at.append(i)
    out: list[npt.NDArray[np.float32] | None] = [None] * len(clean)
    if crops:
        for i, v in zip(at, embedder.embed(np.stack(crops)), strict=True):
            out[i] = v
    return out


def search_degraded(
    clean: Sequence[ImageRecord],
    probes: Sequence[npt.NDArray[np.float32] | None],
    templates: dict[str, list[int]],
) -> Searches:
    """`watchlist.search_all` with the probes' embeddings taken from `probes` (degraded)
    and the gallery from the clean enrolled photos."""
    return search_all(clean, templates, probes)


def degraded_figures(
    folder: Path,
    rows: Sequence[Labelled],
    clean: Sequence[ImageRecord],
    *,
    per_identity: int,
    threshold: float,
    sizes: Sequence[float],
    models_dir: Path | None = None,
    jpeg_quality: int = JPEG_QUALITY,
    on_size: Callable[[float], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per face size: faces found, TMR, misidentification, FMR at `threshold`."""
    templates, _ = enrol(clean, per_identity)
    used = {i for idx in templates.values() for i in idx}
    out = []
    for px in sizes:
        if on_size is not None:
            on_size(px)
        probes = degraded_embeddings(
            folder, rows, clean, px, models_dir=models_dir, jpeg_quality=jpeg_quality
        )
        tried = [i for i, r in enumerate(clean) if r.width_px is not None and i not in used]
        found = sum(1 for i in tried if probes[i] is not None)
        s = search_degraded(clean, probes, templates)
        rates = s.rates(threshold)
        out.append(
            {
                "face_px": float(px),
                "jpeg_quality": int(jpeg_quality),
                "probes": len(tried),
                "face_found_rate": found / len(tried) if tried else float("nan"),
                "known_probes": len(s.known_score),
                "unknown_probes": len(s.unknown_score),
                "rank1_accuracy": s.rank1_accuracy(),
                "unknown_best_max": float(s.unknown_score.max()) if len(s.unknown_score) else None,
                **rates,
            }
        )
    return out

"""Measuring the face watchlist core (raksha.watchlist) on a labelled identity set.

The set is a folder with ``identities.csv`` (``file,identity``) and ``pairs.csv``
(``file_a,file_b,same``), image paths relative to the folder (the layout of
shared/data/deepface-identities). Every image goes through the whole chain: YuNet on the
whole image, the largest face, alignment to the ArcFace crop, the embedding.

What is measured (docs/watchlist.md):

* enrolment quality: the share of photos `check_enrolment` refuses, with the reasons;
* verification: the ROC of the cosine over the labelled pairs (AUC, EER, accept rate at
  target false-accept rates);
* the 1:N watchlist: each identity enrols its first `enrol` photos that pass the quality
  check (in the order of identities.csv). *Known* probes are the other photos of enrolled
  people, searched against the whole gallery: a true match is the right identity at or
  above the threshold. *Unknown* probes are every photo of one identity searched against a
  gallery of all the others (each identity left out in turn): any result at or above the
  threshold is a false match. Thresholds for target false-match rates come with bootstrap
  95 % intervals that draw whole identities with replacement.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raksha.errors import RakshaError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

#: False-match rates the thresholds are reported for, unless others are asked for.
DEFAULT_TARGET_FMRS = (0.001, 0.01)
#: Thresholds of the table of rates.
SWEEP = tuple(round(0.20 + 0.05 * i, 2) for i in range(14))
DEFAULT_RESAMPLES = 1000


class WatchlistDataError(RakshaError):
    """The identity set cannot be read."""


# --- reading the set ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Labelled:
    file: str
    identity: str


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise WatchlistDataError(f"{path} not found: the identity set needs it")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise WatchlistDataError(f"{path} lacks the column(s): {', '.join(missing)}")
            return [dict(row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WatchlistDataError(f"cannot read {path}: {exc}") from None


def read_identities(folder: Path) -> list[Labelled]:
    """The rows of ``identities.csv``, in file order; each image must exist."""
    if not folder.is_dir():
        raise WatchlistDataError(f"identity set folder {folder} not found")
    rows = _read_csv(folder / "identities.csv", ("file", "identity"))
    out: list[Labelled] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, start=2):
        file, identity = (row.get("file") or "").strip(), (row.get("identity") or "").strip()
        if not file or not identity:
            raise WatchlistDataError(
                f"{folder / 'identities.csv'} line {n}: empty file or identity"
            )
        if file in seen:
            raise WatchlistDataError(f"{folder / 'identities.csv'} line {n}: {file} listed twice")
        if not (folder / file).is_file():
            raise WatchlistDataError(f"image {folder / file} (identities.csv line {n}) not found")
        seen.add(file)
        out.append(Labelled(file, identity))
    if len({r.identity for r in out}) < 2:
        raise WatchlistDataError(f"{folder / 'identities.csv'} needs at least two identities")
    return out


def read_pairs(folder: Path) -> list[tuple[str, str, bool]]:
    """The rows of ``pairs.csv``: (file_a, file_b, same person)."""
    rows = _read_csv(folder / "pairs.csv", ("file_a", "file_b", "same"))
    out = []
    for n, row in enumerate(rows, start=2):
        same = (row.get("same") or "").strip()
        if same not in {"0", "1"}:
            raise WatchlistDataError(f"{folder / 'pairs.csv'} line {n}: same must be 0 or 1")
        out.append((row["file_a"].strip(), row["file_b"].strip(), same == "1"))
    return out


# --- metrics (pure functions of scores) -----------------------------------------------------


def roc_auc(scores: npt.ArrayLike, positive: npt.ArrayLike) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative, ties counting half (Mann-Whitney). nan without both classes."""
    from scipy.stats import rankdata

    s = np.asarray(scores, np.float64)
    p = np.asarray(positive, bool)
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[p].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_points(scores: npt.ArrayLike, positive: npt.ArrayLike) -> tuple[F64, F64, F64]:
    """(false-positive rate, true-positive rate, threshold) at each distinct score, from the
    highest threshold down, a score counting as positive when >= the threshold; the curve
    starts at (0, 0) with threshold +inf."""
    s = np.asarray(scores, np.float64)
    p = np.asarray(positive, bool)
    thr = np.unique(s)[::-1]
    n_pos, n_neg = max(int(p.sum()), 1), max(int((~p).sum()), 1)
    tpr = np.array([0.0] + [float((s[p] >= t).sum()) / n_pos for t in thr])
    fpr = np.array([0.0] + [float((s[~p] >= t).sum()) / n_neg for t in thr])
    return fpr, tpr, np.concatenate([[np.inf], thr])


def threshold_for_rate(negatives: npt.ArrayLike, target: float) -> tuple[float, bool]:
    """The lowest threshold at which at most a share `target` of the `negatives` score at or
    above it, and whether that target is observable at all (at least one negative may pass:
    ``target * n >= 1``). When it is not, the threshold is just above the highest negative
    and says only that none of these n passed. (nan, False) without negatives."""
    if not 0.0 < target < 1.0:
        raise ValueError("target rate must be in (0, 1)")
    s = np.sort(np.asarray(negatives, np.float64))[::-1]
    n = len(s)
    if n == 0:
        return float("nan"), False
    allowed = math.floor(target * n + 1e-9)
    return float(np.nextafter(s[allowed], np.inf)), allowed >= 1


def zero_count_upper95(n: int) -> float:
    """One-sided 95 % upper bound on a rate of which 0 of `n` trials showed one (exact
    binomial: 1 - 0.05^(1/n), about 3/n)."""
    return 1.0 - 0.05 ** (1.0 / n) if n > 0 else 1.0


@dataclass(frozen=True, slots=True)
class Searches:
    """Outcomes of the 1:N searches: for each known probe its best score and whether the
    best identity was its own; for each unknown probe its best score. `*_identity` is the
    probe's person (the bootstrap's cluster). A known probe without a face scores -inf."""

    known_score: F64
    known_correct: B
    known_identity: tuple[str, ...]
    unknown_score: F64
    unknown_identity: tuple[str, ...]
    #: Probe-to-identity comparisons made by the unknown searches (impostor comparisons).
    comparisons: int = 0

    def rates(self, threshold: float) -> dict[str, float]:
        """True-match rate (known, right identity, >= threshold), misidentification rate
        (known, wrong identity, >= threshold) and false-match rate (unknown, >= threshold)."""
        above = self.known_score >= threshold
        n_k, n_u = len(self.known_score), len(self.unknown_score)
        return {
            "threshold": float(threshold),
            "tmr": float((above & self.known_correct).sum() / n_k) if n_k else float("nan"),
            "misidentification": (
                float((above & ~self.known_correct).sum() / n_k) if n_k else float("nan")
            ),
            "fmr": float((self.unknown_score >= threshold).sum() / n_u) if n_u else float("nan"),
        }

    def rank1_accuracy(self) -> float:
        """Share of known probes whose best identity is their own, whatever the score."""
        n = len(self.known_correct)
        return float(self.known_correct.sum() / n) if n else float("nan")


def _interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    v = np.asarray([x for x in values if math.isfinite(x)], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(v, [tail, 100.0 - tail])
    return float(lo), float(hi)


def operating_points(
    searches: Searches,
    targets: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """For each target false-match rate: the threshold from the unknown probes, the rates
    there, and bootstrap 95 % intervals of the threshold and of the true-match rate at it.
    Each resample draws whole identities with replacement (all of a drawn person's known and
    unknown probes, as often as the person was drawn), then sets its own threshold."""
    people = sorted(set(searches.known_identity) | set(searches.unknown_identity))
    index = {p: i for i, p in enumerate(people)}
    kc = np.array([index[p] for p in searches.known_identity], np.int64)
    uc = np.array([index[p] for p in searches.unknown_identity], np.int64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(people), size=(max(resamples, 0), len(people)))
    out = []
    for target in targets:
        thr, observable = threshold_for_rate(searches.unknown_score, target)
        at = searches.rates(thr) if math.isfinite(thr) else {}
        thr_samples: list[float] = []
        tmr_samples: list[float] = []
        for row in draws:
            weight = np.bincount(row, minlength=len(people)).astype(np.int64)
            neg = np.repeat(searches.unknown_score, weight[uc])
            t, _ = threshold_for_rate(neg, target)
            if not math.isfinite(t):
                continue
            thr_samples.append(t)
            wk = weight[kc].astype(np.float64)
            if wk.sum() > 0:
                hit = (searches.known_score >= t) & searches.known_correct
                tmr_samples.append(float((wk * hit).sum() / wk.sum()))
        n_u = len(searches.unknown_score)
        out.append(
            {
                "target_fmr": float(target),
                "threshold": thr,
                "threshold_ci": _interval(thr_samples),
                "observable": observable,
                "unknown_probes": n_u,
                "lowest_observable_fmr": 1.0 / n_u if n_u else float("nan"),
                "fmr": at.get("fmr", float("nan")),
                "tmr": at.get("tmr", float("nan")),
                "tmr_ci": _interval(tmr_samples),
                "misidentification": at.get("misidentification", float("nan")),
                # With no false match seen, the rate is only known to be below this.
                "fmr_upper95_if_zero": zero_count_upper95(n_u),
            }
        )
    return out


def recommend(points: Sequence[dict[str, Any]], searches: Searches) -> dict[str, Any]:
    """The operating threshold to start from: the upper end of the 95 % interval of the
    threshold for the strictest target (the point estimate when no interval), with what
    it gives on this set and why."""
    if not points:
        return {"threshold": None, "basis": "no target false-match rate given"}
    strict = min(points, key=lambda p: p["target_fmr"])
    lo_hi = strict["threshold_ci"]
    thr = lo_hi[1] if math.isfinite(lo_hi[1]) else strict["threshold"]
    thr = max(thr, strict["threshold"]) if math.isfinite(strict["threshold"]) else thr
    basis = f"upper end of the 95 % interval of the threshold for FMR {strict['target_fmr']:g}"
    if not strict["observable"]:
        basis += (
            f"; that rate cannot be observed with {strict['unknown_probes']} unknown probes "
            "(the threshold only excludes every impostor seen here): a lower bound, not a "
            "deployment setting"
        )
    rates = searches.rates(thr) if math.isfinite(thr) else {}
    return {
        "threshold": thr,
        "basis": basis,
        "tmr": rates.get("tmr"),
        "fmr": rates.get("fmr"),
        "misidentification": rates.get("misidentification"),
    }


def verification(
    scores: npt.ArrayLike, same: npt.ArrayLike, targets: Sequence[float]
) -> dict[str, Any]:
    """ROC summary of pair cosines: AUC, equal error rate, the best accuracy and its
    threshold, and the true-accept rate at each target false-accept rate."""
    s = np.asarray(scores, np.float64)
    p = np.asarray(same, bool)
    gen, imp = s[p], s[~p]
    fpr, tpr, thr = roc_points(s, p)
    fnr = 1.0 - tpr
    k = int(np.argmin(np.abs(fpr - fnr)))
    accuracy = [float(((s >= t) == p).mean()) for t in thr[1:]] if len(s) else []
    best = int(np.argmax(accuracy)) if accuracy else -1
    tar = []
    for target in targets:
        t, observable = threshold_for_rate(imp, target)
        tar.append(
            {
                "far": float(target),
                "threshold": t,
                "tar": float((gen >= t).mean()) if len(gen) and math.isfinite(t) else None,
                "observable": observable,
            }
        )
    return {
        "genuine": len(gen),
        "impostor": len(imp),
        "auc": roc_auc(s, p),
        "eer": float((fpr[k] + fnr[k]) / 2) if len(s) else float("nan"),
        "eer_threshold": float(thr[k]),
        "best_accuracy": accuracy[best] if accuracy else float("nan"),
        "best_accuracy_threshold": float(thr[1:][best]) if accuracy else float("nan"),
        "genuine_mean": float(gen.mean()) if len(gen) else float("nan"),
        "impostor_mean": float(imp.mean()) if len(imp) else float("nan"),
        "impostor_max": float(imp.max()) if len(imp) else float("nan"),
        "genuine_min": float(gen.min()) if len(gen) else float("nan"),
        "tar_at_far": tar,
        "roc": {"fpr": [round(float(x), 4) for x in fpr], "tpr": [round(float(x), 4) for x in tpr]},
    }


# --- running the chain over the set ---------------------------------------------------------


@dataclass(slots=True)
class ImageRecord:
    """One photo through the chain. `embedding` is that of the largest face (None without
    a face); `check`/`reason` are the enrolment quality verdict (None: accepted)."""

    file: str
    identity: str
    faces: int
    width_px: float | None
    check: str | None
    reason: str | None
    embedding: F32 | None = field(default=None, repr=False)


def measure_images(
    folder: Path,
    rows: Sequence[Labelled],
    *,
    models_dir: Path | None = None,
    on_image: Callable[[int, ImageRecord], None] | None = None,
) -> tuple[list[ImageRecord], dict[str, Any]]:
    """Detect, check, align and embed every listed photo; the records and a description
    of the models used."""
    import cv2

    from raksha import models as registry
    from raksha.detect import YuNetConfig, build_detector
    from raksha.watchlist.align import align_face
    from raksha.watchlist.embed import DEFAULT_MODEL, FaceEmbedder
    from raksha.watchlist.quality import QualityConfig, check_enrolment

    det_cfg = YuNetConfig()
    detector = build_detector(det_cfg, models_dir)
    embedder = FaceEmbedder.from_registry(models_dir)
    qcfg = QualityConfig()
    records: list[ImageRecord] = []
    crops: list[npt.NDArray[np.uint8]] = []
    with_face: list[int] = []
    for i, row in enumerate(rows):
        path = folder / row.file
        read = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if read is None:
            raise WatchlistDataError(f"cannot decode image {path}")
        image = np.ascontiguousarray(read, np.uint8)
        faces = detector.detect(image)
        verdict = check_enrolment(image, faces, qcfg, detector)
        rec = ImageRecord(
            row.file, row.identity, len(faces), verdict.width_px, verdict.check, verdict.reason
        )
        if len(faces):
            j = int(np.argmax(faces.widths))
            crops.append(
                verdict.aligned
                if verdict.aligned is not None
                else align_face(image, faces.landmarks[j])
            )
            with_face.append(i)
        records.append(rec)
        if on_image is not None:
            on_image(i, rec)
    if crops:
        vectors = embedder.embed(np.stack(crops))
        for i, v in zip(with_face, vectors, strict=True):
            records[i].embedding = v
    emb_entry = registry.get_entry(DEFAULT_MODEL)
    det_entry = registry.get_entry(det_cfg.model)
    meta = {
        "embedding_model": {"name": emb_entry.name, "sha256": emb_entry.sha256},
        "detector": {
            "name": det_entry.name,
            "sha256": det_entry.sha256,
            "score_threshold": det_cfg.score_threshold,
            "max_long_side": det_cfg.max_long_side,
        },
        "quality": {
            "min_face_px": qcfg.min_face_px,
            "other_face_ratio": qcfg.other_face_ratio,
            "min_score": qcfg.min_score,
            "max_roll_deg": qcfg.max_roll_deg,
            "nose_range": list(qcfg.nose_range),
            "min_sharpness": qcfg.min_sharpness,
        },
    }
    return records, meta


def enrol(
    records: Sequence[ImageRecord], per_identity: int
) -> tuple[dict[str, list[int]], list[int]]:
    """Each identity's templates: the indices of its first `per_identity` records (in
    order) that passed the quality check; and the indices of the refused attempts made on
    the way (an identity's attempts stop once it has its templates)."""
    templates: dict[str, list[int]] = {}
    refused: list[int] = []
    for i, rec in enumerate(records):
        got = templates.setdefault(rec.identity, [])
        if len(got) >= per_identity:
            continue
        if rec.check is None and rec.embedding is not None:
            got.append(i)
        else:
            refused.append(i)
    return {k: v for k, v in templates.items() if v}, refused


def search_all(
    records: Sequence[ImageRecord],
    templates: dict[str, list[int]],
    probes: Sequence[F32 | None] | None = None,
) -> Searches:
    """Known probes against the whole gallery, and each identity's photos against the
    gallery of everyone else (see the module's docstring). `probes`, aligned with
    `records`, replaces the probes' embeddings (e.g. of degraded photos; None: no face),
    while the gallery keeps the records' own."""
    probe_of = [r.embedding for r in records] if probes is None else list(probes)
    from raksha.watchlist.matcher import Gallery

    def gallery(leave_out: str | None) -> Gallery | None:
        rows = [(who, i) for who, idx in templates.items() if who != leave_out for i in idx]
        if not rows:
            return None
        vectors = [records[i].embedding for _, i in rows]
        return Gallery(np.stack([v for v in vectors if v is not None]), [w for w, _ in rows])

    used = {i for idx in templates.values() for i in idx}
    full = gallery(None)
    k_score: list[float] = []
    k_ok: list[bool] = []
    k_who: list[str] = []
    for i, rec in enumerate(records):
        if rec.identity not in templates or i in used:
            continue
        k_who.append(rec.identity)
        probe = probe_of[i]
        found = full.best(probe) if full is not None and probe is not None else None
        k_score.append(found.score if found is not None else -math.inf)
        k_ok.append(found is not None and found.identity == rec.identity)
    u_score: list[float] = []
    u_who: list[str] = []
    comparisons = 0
    for person in dict.fromkeys(r.identity for r in records):
        others = gallery(person)
        if others is None:
            continue
        for rec, probe in zip(records, probe_of, strict=True):
            if rec.identity != person or probe is None:
                continue
            found = others.best(probe)
            assert found is not None
            u_score.append(found.score)
            u_who.append(person)
            comparisons += len(others.identities)
    return Searches(
        np.asarray(k_score, np.float64),
        np.asarray(k_ok, bool),
        tuple(k_who),
        np.asarray(u_score, np.float64),
        tuple(u_who),
        comparisons,
    )


def pair_scores(
    records: Sequence[ImageRecord], pairs: Sequence[tuple[str, str, bool]]
) -> tuple[F64, B, int]:
    """Cosine of each pair whose two photos both have a face, their labels, and the number
    of pairs left out (a photo without a face, or not in identities.csv)."""
    by_file = {r.file: r.embedding for r in records}
    scores: list[float] = []
    same: list[bool] = []
    skipped = 0
    for a, b, s in pairs:
        ea, eb = by_file.get(a), by_file.get(b)
        if ea is None or eb is None:
            skipped += 1
            continue
        scores.append(float(np.dot(ea, eb)))
        same.append(s)
    return np.asarray(scores, np.float64), np.asarray(same, bool), skipped


@dataclass(slots=True)
class WatchlistResult:
    meta: dict[str, Any]
    quality: dict[str, Any]
    enrolment: dict[str, Any]
    verification: dict[str, Any]
    watchlist: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_safe(
            {
                "meta": self.meta,
                "quality": self.quality,
                "enrolment": self.enrolment,
                "verification": self.verification,
                "watchlist": self.watchlist,
            }
        )
        return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def evaluate_records(
    records: Sequence[ImageRecord],
    pairs: Sequence[tuple[str, str, bool]],
    *,
    per_identity: int,
    targets: Sequence[float] = DEFAULT_TARGET_FMRS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> WatchlistResult:
    """All the figures from records that went through the chain."""
    n = len(records)
    refused_all = [r for r in records if r.check is not None]
    quality = {
        "images": n,
        "refused": len(refused_all),
        "refusal_rate": len(refused_all) / n if n else float("nan"),
        "by_check": dict(Counter(r.check for r in refused_all if r.check is not None)),
        "refusals": [{"file": r.file, "reason": r.reason} for r in refused_all],
        "no_face": sum(1 for r in records if r.faces == 0),
    }
    templates, refused_idx = enrol(records, per_identity)
    attempts = sum(len(v) for v in templates.values()) + len(refused_idx)
    people = list(dict.fromkeys(r.identity for r in records))
    enrolment = {
        "per_identity": per_identity,
        "attempts": attempts,
        "refused": len(refused_idx),
        "failure_to_enrol_rate": len(refused_idx) / attempts if attempts else float("nan"),
        "identities": len(people),
        "identities_enrolled": len(templates),
        "identities_not_enrolled": [p for p in people if p not in templates],
        "templates": sum(len(v) for v in templates.values()),
        "refusals": [{"file": records[i].file, "reason": records[i].reason} for i in refused_idx],
    }
    scores, same, skipped = pair_scores(records, pairs)
    ver = verification(scores, same, targets)
    ver["pairs"] = len(pairs)
    ver["skipped"] = skipped
    found = search_all(records, templates)
    points = operating_points(found, targets, resamples=resamples, seed=seed)
    watch = {
        "known_probes": len(found.known_score),
        "known_identities": len(set(found.known_identity)),
        "unknown_probes": len(found.unknown_score),
        "unknown_identities": len(set(found.unknown_identity)),
        # The smallest gallery an unknown search met: an enrolled person's photos ran
        # against everyone else (a person never enrolled met the whole gallery).
        "gallery_size": max(len(templates) - 1, 0),
        "impostor_comparisons": found.comparisons,
        "rank1_accuracy": found.rank1_accuracy(),
        "unknown_best_max": float(found.unknown_score.max()) if len(found.unknown_score) else None,
        "sweep": [found.rates(t) for t in SWEEP],
        "targets": points,
        "recommended": recommend(points, found),
    }
    meta = {"resamples": resamples, "seed": seed, "targets": [float(t) for t in targets]}
    return WatchlistResult(meta, quality, enrolment, ver, watch)


def run_watchlist_eval(
    folder: Path,
    *,
    models_dir: Path | None = None,
    per_identity: int = 1,
    targets: Sequence[float] = DEFAULT_TARGET_FMRS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    on_image: Callable[[int, int, ImageRecord], None] | None = None,
    probe_face_px: Sequence[float] = (),
) -> WatchlistResult:
    """Read the set in `folder`, run every photo through the chain, compute the figures;
    with `probe_face_px`, also the figures with probes shrunk to those face widths and
    compressed (`watchlist_degraded`), at the recommended threshold."""
    rows = read_identities(folder)
    pairs = read_pairs(folder)
    known = {r.file for r in rows}
    strangers = sorted({f for a, b, _ in pairs for f in (a, b)} - known)
    if strangers:
        raise WatchlistDataError(
            f"{folder / 'pairs.csv'} names {len(strangers)} photo(s) not in identities.csv, "
            f"e.g. {strangers[0]}"
        )

    def step(i: int, rec: ImageRecord) -> None:
        if on_image is not None:
            on_image(i, len(rows), rec)

    records, models = measure_images(folder, rows, models_dir=models_dir, on_image=step)
    result = evaluate_records(
        records, pairs, per_identity=per_identity, targets=targets, resamples=resamples, seed=seed
    )
    result.meta.update({"data": str(folder), **models})
    threshold = result.watchlist["recommended"].get("threshold")
    if probe_face_px and threshold is not None and math.isfinite(float(threshold)):
        from raksha.ml.evaluation.watchlist_degraded import degraded_figures

        result.watchlist["degraded"] = degraded_figures(
            folder,
            rows,
            records,
            per_identity=per_identity,
            threshold=float(threshold),
            sizes=sorted(set(probe_face_px), reverse=True),
            models_dir=models_dir,
        )
    return result


# --- presenting -----------------------------------------------------------------------------


def _pct(x: Any) -> str:
    return "-" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f}%"


def _num(x: Any) -> str:
    return "-" if x is None or not math.isfinite(float(x)) else f"{float(x):.3f}"


def summary_lines(result: WatchlistResult) -> list[str]:
    """The figures as plain text lines (the terminal and the report's summary)."""
    q, e, v, w = result.quality, result.enrolment, result.verification, result.watchlist
    lines = [
        f"quality: {q['refused']} of {q['images']} photos refused ({_pct(q['refusal_rate'])})"
        + (
            f": {', '.join(f'{k} {n}' for k, n in sorted(q['by_check'].items()))}"
            if q["by_check"]
            else ""
        ),
        f"enrolment ({e['per_identity']} per identity): {e['refused']} of {e['attempts']} "
        f"attempts refused (failure to enrol {_pct(e['failure_to_enrol_rate'])}); "
        f"{e['identities_enrolled']} of {e['identities']} identities enrolled, "
        f"{e['templates']} templates",
        f"verification: {v['genuine']} genuine + {v['impostor']} impostor pairs "
        f"({v['skipped']} left out): AUC {_num(v['auc'])}, EER {_pct(v['eer'])} at "
        f"{_num(v['eer_threshold'])}, best accuracy {_pct(v['best_accuracy'])} at "
        f"{_num(v['best_accuracy_threshold'])}; mean cosine same {_num(v['genuine_mean'])}, "
        f"different {_num(v['impostor_mean'])} (highest {_num(v['impostor_max'])})",
    ]
    for t in v["tar_at_far"]:
        note = "" if t["observable"] else f" (not observable with {v['impostor']} impostor pairs)"
        lines.append(
            f"  FAR {t['far']:g}: threshold {_num(t['threshold'])}, TAR {_pct(t['tar'])}{note}"
        )
    lines.append(
        f"watchlist: {w['known_probes']} known probes of {w['known_identities']} people, "
        f"{w['unknown_probes']} unknown probes of {w['unknown_identities']} people "
        f"({w['impostor_comparisons']} impostor comparisons); rank-1 {_pct(w['rank1_accuracy'])}"
    )
    lines.append("  threshold   TMR     misID   FMR")
    for r in w["sweep"]:
        lines.append(
            f"  {r['threshold']:.2f}      {_pct(r['tmr']):>6}  {_pct(r['misidentification']):>6}"
            f"  {_pct(r['fmr']):>6}"
        )
    for p in w["targets"]:
        lo, hi = p["threshold_ci"]
        tlo, thi = p["tmr_ci"]
        note = (
            ""
            if p["observable"]
            else f" (not observable: lowest observable FMR is {p['lowest_observable_fmr']:.3f};"
            f" 0 false matches seen, so FMR < {p['fmr_upper95_if_zero']:.3f} at 95 %)"
        )
        lines.append(
            f"  target FMR {p['target_fmr']:g}: threshold {_num(p['threshold'])} "
            f"[{_num(lo)}-{_num(hi)}], TMR {_pct(p['tmr'])} [{_pct(tlo)}-{_pct(thi)}]{note}"
        )
    r = w["recommended"]
    lines.append(
        f"recommended threshold on this set: {_num(r['threshold'])} ({r['basis']}); "
        f"TMR {_pct(r.get('tmr'))}, FMR {_pct(r.get('fmr'))}"
    )
    degraded = w.get("degraded") or []
    if degraded:
        lines.append(
            f"probes shrunk and JPEG-compressed (quality {degraded[0]['jpeg_quality']}), "
            f"clean gallery, at threshold {_num(degraded[0]['threshold'])}:"
        )
        lines.append("  face px   found   TMR     misID   FMR     rank-1")
        for d in degraded:
            lines.append(
                f"  {d['face_px']:>7.0f}   {_pct(d['face_found_rate']):>6}  {_pct(d['tmr']):>6}"
                f"  {_pct(d['misidentification']):>6}  {_pct(d['fmr']):>6}"
                f"  {_pct(d['rank1_accuracy']):>6}"
            )
    return lines


def write_report(result: WatchlistResult, folder: Path) -> list[Path]:
    """summary.txt, results.json and two plots (pair-score ROC, rates over the threshold)
    in `folder`. No face image is ever written."""
    import json

    from raksha.ml.evaluation.report import pyplot, save_figure

    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    summary = folder / "summary.txt"
    summary.write_text("\n".join(summary_lines(result)) + "\n", encoding="utf-8")
    written.append(summary)
    data = folder / "results.json"
    data.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    written.append(data)
    sweep = result.watchlist["sweep"]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["threshold"] for r in sweep]
    for key, label in (
        ("tmr", "true match"),
        ("fmr", "false match"),
        ("misidentification", "wrong person"),
    ):
        ax.plot(xs, [r[key] for r in sweep], marker="o", label=label)
    ax.set_xlabel("cosine threshold")
    ax.set_ylabel("rate")
    ax.set_title(
        f"1:N watchlist ({result.watchlist['known_probes']} known, "
        f"{result.watchlist['unknown_probes']} unknown probes)"
    )
    ax.legend()
    written.append(save_figure(fig, folder / "watchlist_rates.png"))
    ver = result.verification
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(ver["roc"]["fpr"], ver["roc"]["tpr"], drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel(f"false accept rate ({ver['impostor']} impostor pairs)")
    ax.set_ylabel(f"true accept rate ({ver['genuine']} genuine pairs)")
    ax.set_title(f"verification ROC, AUC {_num(ver['auc'])}")
    written.append(save_figure(fig, folder / "verification_roc.png"))
    return written

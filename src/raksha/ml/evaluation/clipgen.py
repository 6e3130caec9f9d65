"""Labelled clips for the event-level benchmark, made from posed face photos.

Each clip shows one performer's face photos in turn (one performer per clip, all from one
split of the set, so figures on ``test`` come from people no model was tuned on), blended
into a street video (or a plain gradient) through a soft elliptical mask, drifting slowly,
with 0.3 s crossfades between photos and a camera's degradations. Three kinds, in turn:

* ``distress``: neutral, then fear or sadness (one or two photos of the same class), then
  neutral again;
* ``calm_peak``: neutral, then happiness or surprise, then neutral;
* ``calm_long``: 30-60 s of mostly neutral with brief happiness and surprise.

Every clip gets a sidecar (`raksha.ml.evaluation.clip_labels`) whose segments say which
expression is on screen when. A segment starts on the first frame of the crossfade into
it: from that frame on, the new expression is (partly) visible.

Everything random comes from ``seed`` and the clip's index, so a clip set is reproduced
exactly by the same command. The photos, and so the clips, are for internal research use
only: generate them into a temporary or ignored folder, never into the repository.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from raksha.domain import EXPRESSION_CLASSES
from raksha.errors import RakshaError
from raksha.ml.evaluation.clip_labels import KIND_OF, ClipLabels, Segment, write_sidecar
from raksha.ml.evaluation.clip_render import (
    HEIGHT,
    WIDTH,
    Background,
    BackgroundView,
    Degradations,
    composite,
    degrade,
    elliptical_mask,
    motion_blurred,
    write_mp4,
)

ClipKind = Literal["distress", "calm_peak", "calm_long"]
#: The kinds of clip, made in this order over and over: two in five show distress.
CYCLE: tuple[ClipKind, ...] = ("distress", "calm_peak", "calm_long", "distress", "calm_long")
#: Short side of the face box YuNet finds on these photos / side of the photo (measured on a
#: hundredth of taiwan-tcce-performers at 34-280 px: 0.60-0.63).
FACE_SHARE = 0.6
#: Face sizes (short side of the face, px) a clip is drawn from, log-uniformly.
FACE_PX = (24, 200)
#: Crossfade between two photos, seconds.
FADE_S = 0.3
#: Fastest drift of the face across the frame, px per second.
DRIFT_PX_S = 12.0
DEFAULT_FPS = 10

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Hold:
    """One photo on screen for ``frames`` frames (the first of them fading it in)."""

    image: int
    expression: str
    frames: int


@dataclass(frozen=True, slots=True)
class Shown:
    """What one frame shows: ``image`` at ``weight``, over ``previous`` during a crossfade."""

    image: int
    previous: int | None
    weight: float


@dataclass(frozen=True, slots=True)
class Drift:
    """The face photo's top-left corner: from (x0, y0) to (x1, y1) over the clip, plus a
    sideways sway of ``sway_px`` with period ``sway_s``."""

    x0: float
    y0: float
    x1: float
    y1: float
    sway_px: float
    sway_s: float
    sway_phase: float


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """Everything that decides one clip's frames."""

    name: str
    kind: ClipKind
    performer: str
    fps: int
    face_px: int
    #: Side of the (square) face photo in the frame, px.
    side: int
    holds: tuple[Hold, ...]
    drift: Drift
    view: BackgroundView
    degradations: Degradations
    seed: int

    @property
    def n_frames(self) -> int:
        return sum(h.frames for h in self.holds)

    @property
    def fade_frames(self) -> int:
        return max(1, round(FADE_S * self.fps))

    def shown(self) -> list[Shown]:
        """Frame by frame, the photo(s) on screen: a hold's first ``fade_frames`` frames
        blend it in over the photo before (weights 1/n, 2/n, ... 1)."""
        out: list[Shown] = []
        previous: int | None = None
        for hold in self.holds:
            for j in range(hold.frames):
                fading = previous is not None and previous != hold.image and j < self.fade_frames
                weight = (j + 1) / self.fade_frames if fading else 1.0
                out.append(Shown(hold.image, previous if fading else None, weight))
            previous = hold.image
        return out

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """Frame by frame, the square the face photo covers (x1, y1, x2, y2)."""
        d, n = self.drift, self.n_frames
        out = []
        for k in range(n):
            u = k / max(1, n - 1)
            sway = d.sway_px * math.sin(2 * math.pi * k / (self.fps * d.sway_s) + d.sway_phase)
            x = round(d.x0 + (d.x1 - d.x0) * u + sway)
            y = round(d.y0 + (d.y1 - d.y0) * u)
            out.append((x, y, x + self.side, y + self.side))
        return out

    def segments(self) -> tuple[Segment, ...]:
        """Consecutive holds of one expression make one segment; times on frame edges."""
        segs: list[Segment] = []
        start = end = 0
        for i, hold in enumerate(self.holds):
            end += hold.frames
            if i + 1 == len(self.holds) or self.holds[i + 1].expression != hold.expression:
                segs.append(
                    Segment(
                        start_s=round(start / self.fps, 6),
                        end_s=round(end / self.fps, 6),
                        kind=KIND_OF[hold.expression],
                        expression=hold.expression,
                    )
                )
                start = end
        return tuple(segs)

    def labels(self, image_names: tuple[str, ...], generator: dict[str, object]) -> ClipLabels:
        """The clip's sidecar contents."""
        holds = []
        start = 0
        for h in self.holds:
            holds.append(
                {
                    "image": image_names[h.image],
                    "expression": h.expression,
                    "start_s": round(start / self.fps, 6),
                    "end_s": round((start + h.frames) / self.fps, 6),
                }
            )
            start += h.frames
        return ClipLabels(
            clip=f"{self.name}.mp4",
            fps=self.fps,
            duration_s=round(self.n_frames / self.fps, 6),
            performer=self.performer,
            face_px=self.face_px,
            segments=self.segments(),
            face_boxes=tuple(self.boxes()),
            generator={
                **generator,
                "kind": self.kind,
                "seed": self.seed,
                "face_side_px": self.side,
                "fade_s": self.fade_frames / self.fps,
                "drift": asdict(self.drift),
                "background_view": asdict(self.view),
                "degradations": asdict(self.degradations),
                "holds": holds,
            },
        )


class PhotoPool:
    """One performer's photos by expression; draws without repeating where it can."""

    def __init__(self, rows: dict[str, list[int]], rng: np.random.Generator) -> None:
        self._rows = rows
        self._rng = rng

    def has(self, expression: str) -> bool:
        return bool(self._rows.get(expression))

    def draw(self, expression: str, avoid: int | None = None) -> int:
        rows = self._rows[expression]
        choices = [r for r in rows if r != avoid] or rows
        return int(choices[self._rng.integers(len(choices))])


def _seconds(rng: np.random.Generator, lo: float, hi: float, fps: int, least: int) -> int:
    return max(least, round(rng.uniform(lo, hi) * fps))


def plan_holds(
    kind: ClipKind, pool: PhotoPool, rng: np.random.Generator, fps: int
) -> tuple[Hold, ...]:
    """The photos a clip of ``kind`` shows, in order, and for how many frames each."""
    least = max(1, round(FADE_S * fps)) + 1
    neutral = pool.draw("neutral")

    def hold(expression: str, lo: float, hi: float, avoid: int | None = None) -> Hold:
        return Hold(pool.draw(expression, avoid), expression, _seconds(rng, lo, hi, fps, least))

    if kind == "calm_long":
        total = rng.uniform(30.0, 60.0) * fps
        holds = [Hold(neutral, "neutral", _seconds(rng, 3.0, 8.0, fps, least))]
        while sum(h.frames for h in holds) < total:
            r = rng.uniform()
            if holds[-1].expression != "neutral" or r < 0.55:
                holds.append(hold("neutral", 3.0, 10.0, avoid=holds[-1].image))
            elif r < 0.8 and pool.has("happiness"):
                holds.append(hold("happiness", 1.0, 4.0))
            elif pool.has("surprise"):
                holds.append(hold("surprise", 0.5, 2.0))
            else:
                holds.append(hold("neutral", 3.0, 10.0, avoid=holds[-1].image))
        return tuple(holds)

    if kind == "distress":
        options = [e for e in ("fear", "sadness") if pool.has(e)]
        peak = options[int(rng.integers(len(options)))]
        lo, hi, photos = 4.0, 8.0, 1 + int(rng.uniform() < 0.5)
    else:
        options = [e for e in ("happiness", "surprise") if pool.has(e)]
        peak = options[int(rng.integers(len(options)))]
        lo, hi, photos = 2.0, 5.0, 1 + int(rng.uniform() < 0.3)
    middle = [hold(peak, lo / photos, hi / photos)]
    if photos == 2:
        middle.append(hold(peak, lo / photos, hi / photos, avoid=middle[0].image))
    first = Hold(neutral, "neutral", _seconds(rng, 3.0, 7.0, fps, least))
    return (first, *middle, hold("neutral", 3.0, 7.0))


def _degradations(rng: np.random.Generator) -> Degradations:
    """Each degradation on in about half of the clips, at a random strength."""
    on = rng.uniform(size=5) < np.array([0.4, 0.5, 0.5, 0.5, 0.3])
    return Degradations(
        blur_sigma=round(float(rng.uniform(0.5, 1.5)), 2) if on[0] else 0.0,
        jpeg_quality=int(rng.integers(25, 76)) if on[1] else None,
        noise_sigma=round(float(rng.uniform(2.0, 8.0)), 2) if on[2] else 0.0,
        gain_start=round(float(rng.uniform(0.6, 1.2)), 3) if on[3] else 1.0,
        gain_end=round(float(rng.uniform(0.6, 1.2)), 3) if on[3] else 1.0,
        motion_blur_px=int(rng.integers(3, 10)) if on[4] else 0,
        motion_blur_deg=round(float(rng.uniform(0.0, 180.0)), 1) if on[4] else 0.0,
    )


def _drift(rng: np.random.Generator, side: int, seconds: float) -> Drift:
    margin = 8.0
    sway = float(min(margin, rng.uniform(0.0, 6.0)))
    xmax, ymax = WIDTH - side - margin, HEIGHT - side - margin
    x0 = rng.uniform(margin, max(margin, xmax))
    y0 = rng.uniform(margin, max(margin, ymax))
    angle = rng.uniform(0, 2 * math.pi)
    reach = rng.uniform(0.2, 1.0) * DRIFT_PX_S * seconds
    x1 = float(np.clip(x0 + reach * math.cos(angle), margin, max(margin, xmax)))
    y1 = float(np.clip(y0 + reach * math.sin(angle), margin, max(margin, ymax)))
    return Drift(
        round(x0, 1),
        round(y0, 1),
        round(x1, 1),
        round(y1, 1),
        round(sway, 2),
        round(float(rng.uniform(2.0, 6.0)), 2),
        round(float(rng.uniform(0, 2 * math.pi)), 3),
    )


def plan_clip(
    index: int,
    kind: ClipKind,
    performer: str,
    photos: dict[str, list[int]],
    seed: int,
    fps: int = DEFAULT_FPS,
    background_frames: int = 1,
) -> ClipPlan:
    """Clip ``index`` of the set made with ``seed``: its photos, face size, drift, view of
    the background and degradations, all drawn from (seed, index)."""
    rng = np.random.default_rng([seed, index])
    lo, hi = FACE_PX
    face_px = round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    side = min(HEIGHT - 20, round(face_px / FACE_SHARE))
    holds = plan_holds(kind, PhotoPool(photos, rng), rng, fps)
    seconds = sum(h.frames for h in holds) / fps
    view = BackgroundView(
        start=int(rng.integers(background_frames)),
        zoom=round(float(rng.uniform(1.0, 1.4)), 3),
        cx=round(float(rng.uniform()), 3),
        cy=round(float(rng.uniform()), 3),
        mirror=bool(rng.uniform() < 0.5),
    )
    return ClipPlan(
        name=f"{index:03d}-{kind.replace('_', '-')}-p{performer}",
        kind=kind,
        performer=performer,
        fps=fps,
        face_px=face_px,
        side=side,
        holds=holds,
        drift=_drift(rng, side, seconds),
        view=view,
        degradations=_degradations(rng),
        seed=seed,
    )


def render(plan: ClipPlan, images: Image, background: Background) -> Iterator[Image]:
    """The clip's frames (640x360 BGR), in order. ``images`` are the set's photos (rows as
    in the plan's holds)."""
    import cv2

    mask = elliptical_mask(plan.side)
    d = plan.degradations
    faces: dict[int, npt.NDArray[np.float32]] = {}

    def face(row: int) -> npt.NDArray[np.float32]:
        if row not in faces:
            small = cv2.resize(images[row], (plan.side, plan.side), interpolation=cv2.INTER_AREA)
            faces[row] = motion_blurred(
                small.astype(np.float32), d.motion_blur_px, d.motion_blur_deg
            )
        return faces[row]

    rng = np.random.default_rng([plan.seed, plan.n_frames, 7])
    n = plan.n_frames
    for k, (shown, box) in enumerate(zip(plan.shown(), plan.boxes(), strict=True)):
        picture = face(shown.image)
        if shown.previous is not None:
            picture = shown.weight * picture + (1.0 - shown.weight) * face(shown.previous)
        frame = composite(background.frame(k, plan.view), picture, mask, box[0], box[1])
        yield degrade(frame, d, k / max(1, n - 1), int(rng.integers(2**31)))


@dataclass(frozen=True, slots=True)
class MadeClip:
    path: Path
    labels: ClipLabels
    plan: ClipPlan


def performer_photos(
    labels: npt.NDArray[np.int64], performers: tuple[str, ...], keep: npt.NDArray[np.bool_]
) -> dict[str, dict[str, list[int]]]:
    """Rows of each kept performer's photos, by expression name."""
    out: dict[str, dict[str, list[int]]] = {}
    for row in np.flatnonzero(keep):
        name = EXPRESSION_CLASSES[int(labels[row])]
        out.setdefault(performers[row], {}).setdefault(name, []).append(int(row))
    return out


def _usable(photos: dict[str, list[int]], kind: ClipKind) -> bool:
    if not photos.get("neutral"):
        return False
    if kind == "distress":
        return bool(photos.get("fear") or photos.get("sadness"))
    if kind == "calm_peak":
        return bool(photos.get("happiness") or photos.get("surprise"))
    return True


def resolve_background(data: Path, background: str) -> Path | None:
    """``auto``: the street video beside the data set (``../videos/facenet-pytorch__video.mp4``)
    when there is one, else None (a gradient); ``gradient``: None; else a video path."""
    if background == "gradient":
        return None
    if background == "auto":
        street = data.resolve().parent / "videos" / "facenet-pytorch__video.mp4"
        return street if street.is_file() else None
    path = Path(background)
    if not path.is_file():
        raise RakshaError(f"--background {path}: no such video file")
    return path


def make_clips(
    data: Path,
    out: Path,
    *,
    split: str = "test",
    count: int = 30,
    seed: int = 0,
    fps: int = DEFAULT_FPS,
    background: Path | None = None,
    on_clip: Callable[[MadeClip], None] | None = None,
) -> list[MadeClip]:
    """Write ``count`` clips and their sidecars into ``out`` (a new or empty folder), from
    the performers of ``split`` in the labels-layout set ``data``."""
    from raksha.ml.evaluation.datasets import read_dataset
    from raksha.ml.evaluation.splits import SPLITS, assign_splits, rule_for

    if split not in SPLITS:
        raise RakshaError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if out.exists() and not out.is_dir():
        raise RakshaError(f"--out {out} is a file; give a folder")
    if out.is_dir() and (any(out.glob("*.mp4")) or any(out.glob("*.json"))):
        raise RakshaError(f"--out {out} already holds clips; give a new or empty folder")
    dataset = read_dataset(data, "labels", color=True, size=None)
    rule = rule_for(data.resolve().name, dataset.columns)
    if rule is None:
        raise RakshaError(f"{data}: no performer (subject) column to split by")
    splits = assign_splits(dataset.columns, rule)
    photos = performer_photos(dataset.labels, dataset.columns[rule.subject], splits == split)
    order = sorted(photos)
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]
    backdrop = Background.from_video(background) if background is not None else None
    out.mkdir(parents=True, exist_ok=True)
    made: list[MadeClip] = []
    for index in range(count):
        kind = CYCLE[index % len(CYCLE)]
        usable = [p for p in order if _usable(photos[p], kind)]
        if not usable:
            raise RakshaError(
                f"no performer of the {split} split in {data} has the photos a {kind} clip needs"
            )
        performer = usable[index % len(usable)]
        plan = plan_clip(
            index,
            kind,
            performer,
            photos[performer],
            seed,
            fps,
            len(backdrop.frames) if backdrop is not None else 1,
        )
        scene = backdrop if backdrop is not None else Background.gradient(seed * 1000 + index)
        path = out / f"{plan.name}.mp4"
        write_mp4(path, render(plan, dataset.images, scene), fps)
        labels = plan.labels(
            dataset.names,
            {
                "data": data.resolve().name,
                "split": split,
                "index": index,
                "background": background.name if background is not None else "gradient",
            },
        )
        write_sidecar(labels, path.with_suffix(".json"))
        clip = MadeClip(path, labels, plan)
        made.append(clip)
        if on_clip is not None:
            on_clip(clip)
    return made

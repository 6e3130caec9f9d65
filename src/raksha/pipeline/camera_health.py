"""Cameras that report their own failures: pure detectors over frames and clock ticks.

`CameraHealthMonitor` watches one camera. `observe(image, t)` looks at each analysed frame
(BGR, `t` its stream time in seconds, which a frozen stream still advances); `seen(now)`
notes when a frame arrived and `tick(now, online=..., failures=...)` is called now and then
whether frames arrive or not (a reconnecting read blocks the frame loop), `now` in monotonic
seconds. `observe` and `tick` return the changes: a `Raised` camera alert (kind, how long
it held, a one-line message, a coarsely pixelated JPEG snapshot when there is a frame) or a
`Cleared` one.

Each condition has time hysteresis: it must hold for its seconds to raise, and be gone for
`clear_s` to clear, so a borderline camera does not flap; once cleared, the same kind is not
raised again on that camera for `cooldown_s`. The kinds:

- `video_loss`: no frame for `video_loss_s` (the camera should be live);
- `frozen`: consecutive frames repeat (99 % of the grey pixels, sampled without averaging at
  up to 640 px across, differ by at most `frozen_max_diff`, 0 by default: exact repeats) for
  `frozen_s`, while the stream keeps delivering frames; or the frames' stream times stop
  advancing (timed then by `seen`). Sensor noise makes a still street's frames differ, so a
  quiet night is not a frozen picture;
- `covered`: the whole frame flat (low grey standard deviation) or blurred (low variance of
  its Laplacian) for `covered_s`: a covered, sprayed or defocused lens;
- `moved`: the scene no longer matches the reference learnt over the first `reference_s`
  seconds (normalised correlation of 32x18 edge thumbnails, the gradient magnitude, below
  a floor) for `moved_s`, not checked while the lens is covered;
  `relearn()` (an officer acknowledged the alert) learns a new reference;
- `reconnect`: `reconnect_failures` reconnect attempts failed in a row.

Nothing here touches the store; `raksha.pipeline.camera_faults` records the changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from raksha.site.config import CameraHealthConfig

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

#: The frozen test samples (never averages) the grey frame down to at most this width.
FROZEN_WIDTH = 640
#: Share of the sampled pixels that may differ by more than `frozen_max_diff` in a repeat.
FROZEN_OUTLIERS = 0.01
#: Thumbnail sizes (width, height): scene reference, sharpness.
SCENE_SIZE = (32, 18)
SHARP_SIZE = (160, 90)
#: The snapshot: this many blocks across. 8, not 16: a face close to the lens can fill an
#: eighth of the frame, and at 8 blocks even such a face is one or two flat blocks (no
#: features); a covered lens or a turned camera still shows.
SNAPSHOT_BLOCKS = 8
SNAPSHOT_WIDTH = 192


class FaultKind(StrEnum):
    VIDEO_LOSS = "video_loss"
    FROZEN = "frozen"
    COVERED = "covered"
    MOVED = "moved"
    RECONNECT = "reconnect"


MESSAGES: dict[FaultKind, str] = {
    FaultKind.VIDEO_LOSS: "No video from the camera",
    FaultKind.FROZEN: "The picture is frozen",
    FaultKind.COVERED: "The lens looks covered or out of focus",
    FaultKind.MOVED: "The camera no longer shows its scene (moved?)",
    FaultKind.RECONNECT: "The camera keeps failing to reconnect",
}


@dataclass(frozen=True, slots=True)
class Raised:
    kind: FaultKind
    #: Seconds the condition had held when it was raised (it began that long before).
    held_s: float
    message: str
    snapshot: bytes | None = None


@dataclass(frozen=True, slots=True)
class Cleared:
    kind: FaultKind
    at: float


Change = Raised | Cleared


@dataclass(slots=True)
class _Condition:
    """One condition's hysteresis: bad for `raise_s` raises, good for `clear_s` clears."""

    raise_s: float
    clear_s: float
    cooldown_s: float = 0.0
    bad_since: float | None = None
    good_since: float | None = None
    active: bool = False
    cleared_at: float | None = None

    def update(self, bad: bool, t: float) -> bool | None:
        """True: raise now; False: clear now; None: no change."""
        if bad:
            self.good_since = None
            if self.bad_since is None:
                self.bad_since = t
            cooling = self.cleared_at is not None and t - self.cleared_at < self.cooldown_s
            if not self.active and not cooling and t - self.bad_since >= self.raise_s:
                self.active = True
                return True
            return None
        self.bad_since = None if not self.active else self.bad_since
        if not self.active:
            return None
        if self.good_since is None:
            self.good_since = t
        if t - self.good_since >= self.clear_s:
            self.active, self.bad_since, self.good_since = False, None, None
            self.cleared_at = t
            return False
        return None


def grey(image: U8) -> U8:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # type: ignore[return-value]


def thumbnail(grey_image: U8, size: tuple[int, int]) -> F32:
    """`grey_image` shrunk to `size` (area averages, in floats: no rounding noise)."""
    small = cv2.resize(grey_image.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.float32)


def sampled(grey_image: U8, width: int = FROZEN_WIDTH) -> U8:
    """`grey_image` sampled (every n-th pixel, no averaging: its noise kept) to at most
    `width` pixels across."""
    step = max(1, -(-grey_image.shape[1] // width))
    return np.ascontiguousarray(grey_image[::step, ::step])


def repeat_outliers(a: U8, b: U8, max_diff: float) -> float:
    """Share of the pixels of `a` and `b` (same shape) differing by more than `max_diff`."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(np.count_nonzero(d > max_diff)) / max(1, d.size)


def sharpness(grey_image: U8) -> float:
    """Variance of the Laplacian of a 160x90 grey thumbnail (low: blurred or flat)."""
    small = thumbnail(grey_image, SHARP_SIZE)
    return float(cv2.Laplacian(small, cv2.CV_32F).var())


def edge_thumbnail(small: F32) -> F32:
    """Gradient magnitude of a 160x90 grey thumbnail, shrunk to 32x18: where the scene's
    edges are, which a day/night (IR) switch or a lighting change moves far less than its
    grey levels."""
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    return thumbnail(cv2.magnitude(gx, gy), SCENE_SIZE)  # type: ignore[arg-type]


def correlation(a: F32, b: F32) -> float:
    """Normalised correlation of two thumbnails (1: same scene; a flat one gives 0)."""
    da, db = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / norm) if norm > 1e-6 else 0.0


def pixelated_jpeg(image: U8, blocks: int = SNAPSHOT_BLOCKS, width: int = SNAPSHOT_WIDTH) -> bytes:
    """A small JPEG of `image` pixelated to `blocks` blocks across: enough to see a covered
    lens or a turned camera, too coarse for any face to be recognised."""
    h, w = image.shape[:2]
    bw = max(1, blocks)
    bh = max(1, round(bw * h / max(w, 1)))
    coarse = cv2.resize(image, (bw, bh), interpolation=cv2.INTER_AREA)
    height = max(1, round(width * h / max(w, 1)))
    big = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return bytes(buf.tobytes()) if ok else b""


@dataclass(slots=True)
class FrameMeasures:
    """What the detectors read from one frame (kept for tests and the clip check)."""

    #: Share of the sampled pixels that changed since the previous frame (None: first).
    diff: float | None
    std: float
    sharpness: float
    correlation: float | None


@dataclass
class CameraHealthMonitor:
    """One camera's fault conditions; see the module docstring."""

    cfg: CameraHealthConfig
    conditions: dict[FaultKind, _Condition] = field(default_factory=dict)
    #: Monotonic time of the last frame (`seen`), and of the first tick.
    last_frame_t: float | None = None
    started_t: float | None = None
    last: FrameMeasures | None = None
    _prev: U8 | None = None
    _ref_sum: F32 | None = None
    _ref_n: int = 0
    _ref_start: float | None = None
    _reference: F32 | None = None
    _image: U8 | None = None
    #: The previous frame's stream time, `seen` time and the time conditions ran on.
    _t_in: float | None = None
    _t_mono: float | None = None
    _t_eff: float | None = None

    def __post_init__(self) -> None:
        c = self.cfg
        seconds = {
            FaultKind.VIDEO_LOSS: 0.0,  # the silence itself is the wait
            FaultKind.FROZEN: c.frozen_s,
            FaultKind.COVERED: c.covered_s,
            FaultKind.MOVED: c.moved_s,
            FaultKind.RECONNECT: 0.0,
        }
        self.conditions = {k: _Condition(s, c.clear_s, c.cooldown_s) for k, s in seconds.items()}

    @property
    def active(self) -> list[FaultKind]:
        return [k for k, c in self.conditions.items() if c.active]

    def seed(self, kinds: set[FaultKind]) -> None:
        """Take `kinds` as already raised (open in the store from an earlier run): each clears
        once its condition has been gone for `clear_s`, as if this monitor had raised it."""
        for kind in kinds:
            cond = self.conditions[kind]
            if not cond.active:
                cond.active, cond.bad_since, cond.good_since = True, None, None

    def relearn(self) -> None:
        """Learn the scene's reference again from the next `reference_s` seconds."""
        self._reference, self._ref_sum, self._ref_n, self._ref_start = None, None, 0, None

    def observe(self, image: U8, t: float) -> list[Change]:
        if not self.cfg.enabled:
            return []
        self._image = image
        stuck, t = self._advance(t)
        g = grey(image)
        small = sampled(g)
        prev, self._prev = self._prev, small
        diff = None
        if prev is not None and prev.shape == small.shape:
            diff = repeat_outliers(small, prev, self.cfg.frozen_max_diff)
        mid = thumbnail(g, SHARP_SIZE)
        std = float(mid.std())
        sharp = float(cv2.Laplacian(mid, cv2.CV_32F).var())
        scene = edge_thumbnail(mid)
        corr = self._scene(scene, t, flat=std <= self.cfg.covered_max_std)
        self.last = FrameMeasures(diff, std, sharp, corr)
        c = self.cfg
        changes: list[Change] = []
        covered = std < c.covered_max_std or sharp < c.covered_max_sharpness
        self._step(FaultKind.COVERED, covered, t, changes)
        if diff is not None or stuck:  # a flat picture cannot tell frozen from still: covered
            repeat = stuck or (diff is not None and diff <= FROZEN_OUTLIERS)
            self._step(FaultKind.FROZEN, repeat and not covered, t, changes)
        if corr is not None and not covered:  # a covered lens says nothing of the scene
            self._step(FaultKind.MOVED, corr < c.moved_min_correlation, t, changes)
        return changes

    def _advance(self, t: float) -> tuple[bool, float]:
        """Whether the stream time `t` is stuck (not after the previous frame's), and the time
        the frame conditions run on: the stream time, carried on by the monotonic time of
        `seen` while the stream time is stuck (so a stuck clock can raise `frozen`)."""
        mono = self.last_frame_t
        if self._t_in is None or self._t_eff is None:
            stuck, eff = False, t
        elif t > self._t_in:
            stuck, eff = False, self._t_eff + (t - self._t_in)
        else:
            gap = mono - self._t_mono if mono is not None and self._t_mono is not None else 0.0
            stuck, eff = True, self._t_eff + max(0.0, gap)
        self._t_in, self._t_mono, self._t_eff = t, mono, eff
        return stuck, eff

    def seen(self, now: float) -> None:
        """A frame arrived at monotonic time `now`."""
        self.last_frame_t = now

    def tick(self, t: float, *, online: bool = True, failures: int = 0) -> list[Change]:
        """Video loss and reconnect failures, checked whether or not frames arrive."""
        if not self.cfg.enabled:
            return []
        changes: list[Change] = []
        if self.started_t is None:
            self.started_t = t
        seen = self.last_frame_t if self.last_frame_t is not None else self.started_t
        silent = t - seen >= self.cfg.video_loss_s
        self._step(FaultKind.VIDEO_LOSS, silent, t, changes, since=seen)
        limit = self.cfg.reconnect_failures
        failing = limit > 0 and not online and failures >= limit
        self._step(FaultKind.RECONNECT, failing, t, changes)
        return changes

    def give_up(self, t: float) -> list[Change]:
        """The camera stopped retrying (its thread ends, nothing ticks any more): raise video
        loss, and failing reconnects unless they are off, now; they stay raised."""
        if not self.cfg.enabled:
            return []
        seen = self.last_frame_t if self.last_frame_t is not None else self.started_t
        start = t if seen is None else min(seen, t)
        kinds = [FaultKind.VIDEO_LOSS]
        if self.cfg.reconnect_failures > 0:
            kinds.append(FaultKind.RECONNECT)
        changes: list[Change] = []
        for kind in kinds:
            cond = self.conditions[kind]
            cond.good_since = None
            if not cond.active:
                cond.active, cond.bad_since = True, start
                changes.append(Raised(kind, t - start, MESSAGES[kind]))
        return changes

    def _scene(self, scene: F32, t: float, *, flat: bool) -> float | None:
        if self._reference is not None:
            return correlation(scene, self._reference)
        if flat:
            return None  # a covered lens is no reference
        if self._ref_start is None:
            self._ref_start = t
        self._ref_sum = scene.copy() if self._ref_sum is None else self._ref_sum + scene
        self._ref_n += 1
        if t - self._ref_start >= self.cfg.reference_s:
            self._reference = self._ref_sum / np.float32(self._ref_n)
        return None

    def _step(
        self,
        kind: FaultKind,
        bad: bool,
        t: float,
        changes: list[Change],
        since: float | None = None,
    ) -> None:
        cond = self.conditions[kind]
        outcome = cond.update(bad, t)
        if outcome is True:
            start = since if since is not None else (cond.bad_since or t)
            has_frame = kind is not FaultKind.VIDEO_LOSS and kind is not FaultKind.RECONNECT
            snap = pixelated_jpeg(self._image) if has_frame and self._image is not None else None
            changes.append(Raised(kind, max(0.0, t - start), MESSAGES[kind], snap))
        elif outcome is False:
            changes.append(Cleared(kind, t))

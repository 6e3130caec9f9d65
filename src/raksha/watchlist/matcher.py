"""1:N search of a face embedding against a watchlist gallery, and the vote over a track.

Privacy rule, kept by construction: the embedding of a face that matches nobody is not
kept. `Gallery.search` returns a `Match` (an identity name and a score, no vector) or None
and stores nothing; `TrackVote` keeps only identity names and scores of the last frames.
A probe array passed in is never referenced after the call returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from raksha.watchlist.embed import l2_normalise

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Match:
    """The best watchlist identity for a face, with its cosine similarity."""

    identity: str
    score: float


class Gallery:
    """Enrolled templates: an (M,D) matrix of unit rows and one identity name per row (a
    person may have several rows; their best row counts).

    The search is exhaustive: one matrix product, O(M*D) per face, about a millisecond for
    tens of thousands of templates. A watchlist of millions would replace `scores` with an
    approximate nearest-neighbour index (HNSW or IVF over inner product, e.g. FAISS), and
    would then have to measure that index's recall next to the matcher's.
    """

    def __init__(self, embeddings: npt.ArrayLike, identities: Sequence[str]) -> None:
        matrix = np.array(embeddings, dtype=np.float32, copy=True)
        if matrix.ndim != 2 or len(matrix) != len(identities):
            raise ValueError(
                f"need an (M,D) matrix and M identities, got {matrix.shape} and {len(identities)}"
            )
        self._matrix = l2_normalise(matrix)
        self._matrix.setflags(write=False)
        self._names: tuple[str, ...] = tuple(dict.fromkeys(identities))
        index = {name: k for k, name in enumerate(self._names)}
        self._row_identity = np.array([index[i] for i in identities], dtype=np.int64)

    @property
    def identities(self) -> tuple[str, ...]:
        """The enrolled identities, in order of first enrolment."""
        return self._names

    @property
    def dim(self) -> int:
        return int(self._matrix.shape[1])

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def scores(self, probes: npt.ArrayLike) -> F32:
        """(N, identities) cosine similarity of each probe row to each identity (its best
        template). Probes are normalised here; nothing is kept."""
        p = l2_normalise(np.asarray(probes, np.float32).reshape(-1, self.dim))
        rows = p @ self._matrix.T
        out = np.full((len(p), len(self._names)), -np.inf, dtype=np.float32)
        for k in range(len(self._names)):
            cols = self._row_identity == k
            if cols.any():
                out[:, k] = rows[:, cols].max(axis=1)
        return out

    def best(self, probe: npt.ArrayLike) -> Match | None:
        """The best identity for one probe whatever its score; None for an empty gallery."""
        if not self._names:
            return None
        s = self.scores(probe)[0]
        k = int(np.argmax(s))
        return Match(self._names[k], float(s[k]))

    def search(self, probe: npt.ArrayLike, threshold: float) -> Match | None:
        """The best identity when its score is at least `threshold`, else None."""
        found = self.best(probe)
        if found is None or found.score < threshold:
            return None
        return found


@dataclass(frozen=True, slots=True)
class TrackMatch:
    """A match declared for a track: `votes` of its last `window` frames agreed on
    `identity`; `score` is the best score among those frames."""

    identity: str
    score: float
    votes: int
    window: int


class TrackVote:
    """Declares a match for a track only when at least `k` of its last `n` frames matched
    the same identity, so one frame's lookalike does not raise an alert.

    Per track it remembers, for each of the last `n` frames, only the matched identity and
    score (or nothing for a frame without a match). `observe` returns the declared match
    every frame the condition holds; deduplicating alerts is the caller's job.
    """

    def __init__(self, k: int, n: int) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
        self.k = k
        self.n = n
        self._frames: dict[int, deque[Match | None]] = {}

    def observe(self, track_id: int, match: Match | None) -> TrackMatch | None:
        """Record this frame's result for the track; the declared match, if any."""
        frames = self._frames.get(track_id)
        if frames is None:
            frames = self._frames[track_id] = deque(maxlen=self.n)
        frames.append(None if match is None else Match(str(match.identity), float(match.score)))
        counts: dict[str, list[float]] = {}
        for m in frames:
            if m is not None:
                counts.setdefault(m.identity, []).append(m.score)
        if not counts:
            return None
        identity, scores = max(counts.items(), key=lambda kv: (len(kv[1]), max(kv[1])))
        if len(scores) < self.k:
            return None
        return TrackMatch(identity, max(scores), len(scores), len(frames))

    def forget(self, track_id: int) -> None:
        """Drop a finished track's history."""
        self._frames.pop(track_id, None)

    @property
    def tracks(self) -> int:
        """Number of tracks with history."""
        return len(self._frames)

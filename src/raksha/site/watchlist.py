"""The face watchlist's measurement gate: matching may only be switched on where the
matcher's measured false-match rate at the configured threshold is within the ceiling.

The measurement is a `raksha eval watchlist --json` result. Its `watchlist.sweep` gives the
false-match rate (FMR) per search at fixed thresholds; the FMR falls as the threshold
rises, so the rate at the highest swept threshold at or below the configured one bounds the
rate at the configured one from above. Where that rate is 0 (no false match seen), the
one-sided 95 % upper bound over the unknown searches counts instead (1 - 0.05^(1/n), about
3/n): a set of 61 searches can only show FMR < 4.8 %, and cannot pass a ceiling of 0.1 %.

The false-match rate per search grows with the number of people searched against, so the
measurement counts only for lists no larger than its gallery: an authorisation whose
`max_list_size` exceeds the measured gallery size is refused. The measurement is of one
model: where the result names the embedding model's sha256 (`meta.embedding_model`), it must
be the registered model's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raksha.errors import ConfigError, ModelError
from raksha.site.config import WatchlistConfig

#: The registered face-embedding model the watchlist runs (raksha.watchlist.embed).
FACE_MODEL = "mobileface-v2"


@dataclass(frozen=True, slots=True)
class FmrFigure:
    """The FMR the gate compares with the ceiling, and how it was read."""

    #: The bound used: the measured rate, or its 95 % upper bound when 0.
    fmr: float
    #: The swept threshold it was read at (at or below the configured one).
    at_threshold: float
    measured: float
    unknown_searches: int
    #: People each unknown search was matched against (None: the result does not say).
    gallery_size: int | None = None
    #: The embedding model's sha256 the measurement names (None: it names none).
    model_sha256: str | None = None

    def describe(self) -> str:
        if self.measured == 0:
            return (
                f"0 false matches in {self.unknown_searches} unknown searches at "
                f"{self.at_threshold:g}, so FMR < {self.fmr:.4f} at 95 %"
            )
        return f"FMR {self.fmr:.4f} at {self.at_threshold:g} ({self.unknown_searches} searches)"


def measured_fmr(data: Any, threshold: float) -> FmrFigure:
    """The FMR figure of an eval result `data` at `threshold`; ValueError when the result
    has no usable sweep or no swept threshold at or below `threshold`."""
    try:
        wl = data["watchlist"]
        n = int(wl["unknown_probes"])
        sweep = [(float(p["threshold"]), p["fmr"]) for p in wl["sweep"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError("not a `raksha eval watchlist --json` result") from None
    below = [(t, f) for t, f in sweep if t <= threshold + 1e-12 and f is not None]
    if n <= 0 or not below:
        raise ValueError(f"it measured no false-match rate at or below threshold {threshold:g}")
    at, rate = max(below, key=lambda p: p[0])
    rate = float(rate)
    if not math.isfinite(rate):
        raise ValueError(f"its false-match rate at {at:g} is not a number")
    bound = rate if rate > 0 else 1.0 - 0.05 ** (1.0 / n)
    return FmrFigure(bound, at, rate, n, _gallery_size(data), _model_sha(data))


def _gallery_size(data: Any) -> int | None:
    try:
        size = data["watchlist"].get("gallery_size")
        if size is None:
            size = int(data["enrolment"]["identities_enrolled"]) - 1  # leave-one-out
        return max(int(size), 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _model_sha(data: Any) -> str | None:
    try:
        sha = data["meta"]["embedding_model"]["sha256"]
    except (KeyError, TypeError):
        return None
    return sha if isinstance(sha, str) and sha else None


def registered_sha256() -> str | None:
    """The registered face model's sha256 (None: the registry does not list it)."""
    from raksha import models as registry

    try:
        return registry.get_entry(FACE_MODEL).sha256 or None
    except ModelError:
        return None


def check_eval(wl: WatchlistConfig) -> FmrFigure:
    """The gate: the FMR figure when it is within `fmr_ceiling`, else ConfigError saying
    why matching stays off. `wl.eval_json` must be resolved already."""
    if wl.eval_json is None:
        raise ConfigError(
            "watchlist: matching refused: no eval_json; measure the matcher with "
            "`raksha eval watchlist --json FILE` and name the file"
        )
    try:
        data = json.loads(Path(wl.eval_json).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"watchlist.eval_json: file not found: {wl.eval_json}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"watchlist.eval_json {wl.eval_json}: unreadable ({exc})") from None
    try:
        figure = measured_fmr(data, wl.threshold)
    except ValueError as exc:
        raise ConfigError(f"watchlist.eval_json {wl.eval_json}: {exc}") from None
    largest = max((a.max_list_size for a in wl.authorisations), default=0)
    if figure.gallery_size is None:
        raise ConfigError(
            f"watchlist: matching refused: {wl.eval_json} does not say how many people its "
            "searches ran against; measure again with `raksha eval watchlist --json FILE`"
        )
    if largest > figure.gallery_size:
        raise ConfigError(
            f"watchlist: matching refused: the measured false-match rate was for "
            f"{figure.gallery_size} people; a list of {largest} (max_list_size) needs a "
            f"measurement with at least {largest}"
        )
    expected = registered_sha256()
    measured_sha = figure.model_sha256
    if measured_sha is not None and expected is not None and measured_sha != expected:
        raise ConfigError(
            f"watchlist: matching refused: {wl.eval_json} measured model sha256 "
            f"{measured_sha[:12]}…, but {FACE_MODEL} is {expected[:12]}…; "
            "measure the model that runs"
        )
    if figure.fmr > wl.fmr_ceiling:
        raise ConfigError(
            f"watchlist: matching refused at threshold {wl.threshold:g}: {figure.describe()}, "
            f"above fmr_ceiling {wl.fmr_ceiling:g}"
        )
    return figure

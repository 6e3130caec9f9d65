"""Reconnect backoff: the jitter is a setting (`source.reconnect_jitter`), the waits stay under
the cap (`source.reconnect_max_s`) and vary, so a camera that returns is analysed again
within 5 s; the source reports its failures in a row (for the `reconnect` camera alert)."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from raksha.errors import SourceError
from raksha.sources.config import SourceConfig
from raksha.sources.reconnect import ReconnectingSource, reconnect_backoff
from test_sources import FakeClock, ScriptedSource, _factory

REFUSED = SourceError("cannot connect to stream rtsp://u:***@h/x: connection refused")


def test_waits_stay_under_the_cap_vary_and_return_within_5_s() -> None:
    cfg = SourceConfig(reconnect_initial_s=1, reconnect_max_s=4, reconnect_jitter=0.3)
    clock = FakeClock()
    stream = ScriptedSource([0.0, 0.1])
    _, factory = _factory([REFUSED] * 12 + [stream])
    source = ReconnectingSource(
        factory, cfg, "cam", sleep=clock.sleep, clock=clock, rng=random.Random(7)
    )
    assert source.read() is not None
    waits = clock.waits
    assert len(waits) == 12
    nominal = [min(2.0**n, 4.0) for n in range(12)]
    for wait, nom in zip(waits, nominal, strict=True):
        assert 0.7 * nom <= wait <= nom <= 4.0
    capped = waits[2:]
    assert len(set(capped)) == len(capped)  # they vary
    assert max(capped) - min(capped) > 0.2
    # The stream came back right after the last refusal: it was opened at most one capped
    # wait later, so it is analysed again within 5 s.
    assert waits[-1] < 5.0
    source.close()


def test_jitter_setting_zero_gives_exact_waits_and_is_bounded() -> None:
    cfg = SourceConfig(reconnect_initial_s=0.5, reconnect_max_s=2, reconnect_jitter=0)
    assert reconnect_backoff(cfg).jitter == 0
    assert [reconnect_backoff(cfg).delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert reconnect_backoff(SourceConfig()).jitter == 0.1  # the default
    assert reconnect_backoff(cfg, jitter=0.2).jitter == 0.2  # an explicit one wins
    for bad in (-0.1, 1.0):
        with pytest.raises(ValidationError):
            SourceConfig(reconnect_jitter=bad)


def test_health_reports_failures_in_a_row() -> None:
    cfg = SourceConfig(reconnect_initial_s=1, reconnect_attempts=2, reconnect_jitter=0)
    clock = FakeClock()
    _, factory = _factory([REFUSED] * 5)
    source = ReconnectingSource(factory, cfg, "cam", sleep=clock.sleep, clock=clock)
    with pytest.raises(SourceError):
        source.read()
    health = source.health()
    assert not health.online and health.failures == 3

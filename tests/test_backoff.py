"""The one backoff rule: growth, cap, jitter bounds and spread, validation."""

from __future__ import annotations

import random
import statistics

import pytest

from raksha.backoff import Backoff


def test_grows_by_the_factor_up_to_the_cap() -> None:
    b = Backoff(1.0, 3.0, 20.0, jitter=0)
    assert [b.delay(n) for n in range(1, 7)] == [1, 3, 9, 20, 20, 20]
    assert [b.nominal(n) for n in range(1, 7)] == [1, 3, 9, 20, 20, 20]
    assert b.delay(0) == b.delay(-5) == 1  # attempts below 1 count as the first


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    for factor in (1.5, 2.0, 3.0, 10.0, 1e6):
        b = Backoff(0.5, factor, 60.0, jitter=0)
        assert b.delay(10_000) == b.delay(10**12) == 60.0


def test_factor_one_is_a_constant_wait() -> None:
    b = Backoff(4.0, 1.0, 60.0, jitter=0)
    assert {b.delay(n) for n in range(1, 50)} == {4.0}


def test_a_cap_below_the_first_wait_caps_every_wait() -> None:
    b = Backoff(60.0, 2.0, 30.0, jitter=0)
    assert {b.delay(n) for n in range(1, 10)} == {30.0}


def test_jitter_stays_within_its_fraction_below_the_nominal_delay() -> None:
    b = Backoff(2.0, 2.0, 60.0, jitter=0.25)
    rng = random.Random(7)
    for n in range(1, 40):
        nominal = min(60.0, 2.0 * 2 ** (n - 1))
        for _ in range(50):
            assert 0.75 * nominal <= b.delay(n, rng) <= nominal  # never above the cap


def test_jitter_spreads_the_delays() -> None:
    b = Backoff(1.0, 2.0, 30.0, jitter=0.1)
    rng = random.Random(5)
    at_cap = [b.delay(100, rng) for _ in range(1000)]
    assert 27.0 <= min(at_cap) < 27.1 and 29.9 < max(at_cap) <= 30.0
    assert statistics.mean(at_cap) == pytest.approx(28.5, abs=0.1)  # uniform over [27, 30]
    assert len({round(d, 6) for d in at_cap}) > 990


def test_an_injected_rng_makes_delays_reproducible() -> None:
    b = Backoff(1.0, 2.0, 30.0)
    first = [b.delay(n, random.Random(42)) for n in range(1, 8)]
    again = [b.delay(n, random.Random(42)) for n in range(1, 8)]
    assert first == again
    assert b.delay(3) <= 4.0  # without an rng: the random module


def test_scaled_jitters_a_fixed_delay_the_same_way() -> None:
    b = Backoff(1.0, jitter=0.1)
    rng = random.Random(1)
    assert all(3240 <= b.scaled(3600, rng) <= 3600 for _ in range(100))
    assert Backoff(1.0, jitter=0).scaled(3600) == 3600


def test_jitter_zero_draws_nothing() -> None:
    rng = random.Random(9)
    state = rng.getstate()
    Backoff(1.0, jitter=0).delay(3, rng)
    assert rng.getstate() == state


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0},
        {"initial_s": -1},
        {"initial_s": 1, "max_s": 0},
        {"initial_s": 1, "factor": 0.5},
        {"initial_s": 1, "jitter": 1.0},
        {"initial_s": 1, "jitter": -0.1},
        {"initial_s": float("nan")},
        {"initial_s": 1, "max_s": float("inf")},
    ],
)
def test_rejects_unusable_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_is_a_frozen_value() -> None:
    b = Backoff(1.0, 2.0, 30.0)
    assert b == Backoff(1.0, 2.0, 30.0, jitter=0.1)
    assert len({b, Backoff(1.0, 2.0, 30.0)}) == 1
    with pytest.raises(AttributeError):
        b.initial_s = 2.0  # type: ignore[misc]

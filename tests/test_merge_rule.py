"""The pure merge rule: does a new distress event continue an open incident?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from raksha.incidents.merge import MergeRule, OpenIncident, Sighting, continues, pick
from raksha.incidents.model import IncidentState

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
RULE = MergeRule(window_s=120, distance_faces=1.5)


def seen(
    at_s: float = 0.0,
    *,
    key: str | None = "cam-1:a:1",
    centre: tuple[float, float] | None = (100.0, 100.0),
    w: float | None = 40.0,
    camera: str = "cam-1",
) -> Sighting:
    return Sighting(camera, key, centre, w, T0 + timedelta(seconds=at_s))


def incident(
    last: Sighting, state: IncidentState = IncidentState.NEW, iid: str = "i1"
) -> OpenIncident:
    return OpenIncident(iid, state, last)


def test_same_track_merges_within_the_window_wherever_the_face_is() -> None:
    inc = incident(seen())
    assert continues(inc, seen(119, centre=(900.0, 900.0)), RULE)
    assert not continues(inc, seen(121), RULE)


def test_another_track_merges_only_when_its_face_is_near() -> None:
    inc = incident(seen())
    assert continues(inc, seen(5, key="other", centre=(160.0, 100.0)), RULE)  # 1.5 widths
    assert not continues(inc, seen(5, key="other", centre=(161.0, 100.0)), RULE)
    assert not continues(inc, seen(5, key=None, centre=None), RULE)


def test_never_across_cameras_or_into_a_closed_incident() -> None:
    assert not continues(incident(seen()), seen(1, camera="cam-2"), RULE)
    for state in (IncidentState.RESOLVED, IncidentState.DISMISSED):
        assert not continues(incident(seen(), state), seen(1), RULE)
    for state in (IncidentState.ACKNOWLEDGED, IncidentState.CONFIRMED, IncidentState.DISPATCHED):
        assert continues(incident(seen(), state), seen(1), RULE)


def test_pick_takes_the_most_recently_seen_match() -> None:
    older = incident(seen(0), iid="old")
    newer = incident(seen(30, key="k2", centre=(110.0, 100.0)), iid="new")
    far = incident(seen(60, key="k3", centre=(800.0, 100.0)), iid="far")
    event = seen(70, key="k9", centre=(105.0, 100.0))
    assert pick([older, newer, far], event, RULE) == "new"
    assert pick([far], event, RULE) is None


@given(
    dx=st.floats(-500, 500),
    dy=st.floats(-500, 500),
    w=st.floats(1, 300),
    age=st.floats(0, 500),
)
def test_a_face_merges_exactly_when_near_and_recent(
    dx: float, dy: float, w: float, age: float
) -> None:
    inc = incident(seen(0, w=w))
    event = seen(age, key="another", centre=(100.0 + dx, 100.0 + dy))
    dist = (dx * dx + dy * dy) ** 0.5
    assume(abs(dist - 1.5 * w) > 1e-6 and abs(age - 120) > 1e-6)  # not on a boundary
    near = dist <= 1.5 * w
    assert continues(inc, event, RULE) == (near and age <= 120)


def test_an_old_replayed_event_does_not_join_an_incident_seen_long_after_it() -> None:
    """After an outage the spool replays events older than incidents stored meanwhile: one
    from long before an incident's sighting is its own incident, not a silent merge."""
    inc = incident(seen(600))
    assert not continues(inc, seen(0, key="other", centre=(100.0, 100.0)), RULE)
    assert continues(inc, seen(500, key="other", centre=(100.0, 100.0)), RULE)  # 100 s before

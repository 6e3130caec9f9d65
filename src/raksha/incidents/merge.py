"""Does a new distress event continue an open incident? A pure rule, used by the store.

An event continues an incident of the same camera when the incident is still open (not
resolved or dismissed), was last seen no longer than `window_s` ago, and either belongs to
the same person key (the same track of the same running pipeline) or its face is within
`distance_faces` face widths of where the incident's face was last seen: the tracker lost
the person, or another process (a restart, a second `raksha run`) found them again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from raksha.incidents.model import IncidentState


@dataclass(frozen=True, slots=True)
class MergeRule:
    #: Seconds after an incident was last seen within which a new event may continue it.
    window_s: float = 120.0
    #: Face centres this close (in face widths of the incident's face) are the same person.
    distance_faces: float = 1.5


@dataclass(frozen=True, slots=True)
class Sighting:
    """Where a person's face was on a camera's frame, and when."""

    camera_id: str
    person_key: str | None
    centre: tuple[float, float] | None
    face_w: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """What the rule needs to know about a stored incident."""

    id: str
    state: IncidentState
    last_seen: Sighting


def continues(incident: OpenIncident, event: Sighting, rule: MergeRule) -> bool:
    """Whether `event` is the same person's distress as `incident` (see the module doc)."""
    seen = incident.last_seen
    if incident.state.is_terminal or seen.camera_id != event.camera_id:
        return False
    # Either way round: a replayed old event must not join an incident seen long after it.
    age = (event.at - seen.at).total_seconds()
    if abs(age) > rule.window_s:
        return False
    if event.person_key is not None and event.person_key == seen.person_key:
        return True
    if seen.centre is None or event.centre is None:
        return False
    dist = math.dist(seen.centre, event.centre)
    return dist <= rule.distance_faces * max(seen.face_w or 0.0, 1.0)


def pick(candidates: Iterable[OpenIncident], event: Sighting, rule: MergeRule) -> str | None:
    """The most recently seen incident `event` continues, or None."""
    best: OpenIncident | None = None
    for c in candidates:
        if continues(c, event, rule) and (best is None or c.last_seen.at > best.last_seen.at):
            best = c
    return None if best is None else best.id

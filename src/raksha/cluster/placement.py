"""Which host runs which camera: sticky, capacity-bound, least-loaded first.

Pure and deterministic (the same inputs, the same answer), so the coordinator, the tests and
the 1,000-camera simulation all use it as it is.

- A camera stays on its host while that host is alive and within its capacity (moving a
  live camera loses its tracks and a few seconds of video, so nothing moves without cause).
- Cameras without a host (new, or their host was lost) go one by one to the host with the
  lowest load (assigned / capacity), ties to the host id, while any has room.
- Cameras that fit nowhere stay unplaced and are reported; they are placed when room appears.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Placement:
    #: camera id -> host id, for every placed camera.
    assignment: dict[str, str]
    #: Cameras no host had room for, in camera order.
    unplaced: list[str] = field(default_factory=list)
    #: Cameras whose host changed from the current assignment (new ones included).
    moved: list[str] = field(default_factory=list)

    def cameras_of(self, host: str) -> list[str]:
        return sorted(c for c, h in self.assignment.items() if h == host)


def place(
    cameras: Sequence[str], capacity: Mapping[str, int], current: Mapping[str, str]
) -> Placement:
    """Place `cameras` on the hosts of `capacity` (host id -> cameras it may run), keeping
    the `current` assignment (camera -> host) where it is still valid."""
    if any(c < 0 for c in capacity.values()):
        raise ValueError("a host's capacity cannot be negative")
    load = dict.fromkeys(capacity, 0)
    assignment: dict[str, str] = {}
    homeless: list[str] = []
    for cam in sorted(set(cameras)):
        host = current.get(cam)
        if host is not None and host in capacity and load[host] < capacity[host]:
            assignment[cam] = host
            load[host] += 1
        else:
            homeless.append(cam)
    # The least-loaded host with room first; a heap keeps 1,000 cameras cheap.
    heap = [(load[h] / capacity[h], h) for h in sorted(capacity) if load[h] < capacity[h]]
    heapq.heapify(heap)
    unplaced: list[str] = []
    for cam in homeless:
        if not heap:
            unplaced.append(cam)
            continue
        _, host = heapq.heappop(heap)
        assignment[cam] = host
        load[host] += 1
        if load[host] < capacity[host]:
            heapq.heappush(heap, (load[host] / capacity[host], host))
    moved = [c for c in sorted(assignment) if current.get(c) != assignment[c]]
    return Placement(assignment, unplaced, moved)

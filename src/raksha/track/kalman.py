"""Constant-velocity Kalman filter for one face box, with time steps in seconds.

The state is (cx, cy, w, h) and their rates of change per second. The process noise is
that of a white-noise acceleration model integrated over the real time step, so a frame
analysed 0.5 s after the last one widens the prediction far more than one 0.04 s after
it; dropped frames and a varying analysis rate need no special handling. Velocities fade
with a time constant of about a second while no measurement comes, so a track predicted
through a gap does not sail off. All noise levels scale with the box size, so a distant
small face and a close large one behave alike.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

#: Measurement noise: standard deviation of a detector box's centre and size, as a
#: fraction of the box size.
MEASUREMENT_STD = 0.05
#: Uncertainty of a new track's velocity, in box sizes per second.
INITIAL_VELOCITY_STD = 4.0
#: Spectral density of the random acceleration, as (box sizes per s²) standard deviation
#: over one second, for the centre and for the size.
CENTRE_ACCELERATION_STD = 2.0
SIZE_ACCELERATION_STD = 1.0
#: Velocities decay towards zero with this time constant (seconds) between
#: measurements, so a track predicted through a long gap drifts at most about
#: velocity × this far instead of without bound (people stop, turn, sit down).
VELOCITY_TIME_CONSTANT_S = 1.0
#: Boxes never shrink below this many pixels in the prediction.
MIN_SIDE = 1.0

_H = np.hstack([np.eye(4), np.zeros((4, 4))])


def xyxy_to_cxcywh(box: F64) -> F64:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float64)


def cxcywh_to_xyxy(z: F64) -> F64:
    cx, cy, w, h = z
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


def _size(w: float, h: float) -> float:
    return max(MIN_SIDE, (abs(w) + abs(h)) / 2)


class BoxKalman:
    """Tracks one box: `predict(dt)` moves it forward in time, `update(box)` corrects it."""

    __slots__ = ("cov", "state")

    def __init__(self, box_xyxy: F64) -> None:
        z = xyxy_to_cxcywh(np.asarray(box_xyxy, np.float64))
        s = _size(z[2], z[3])
        self.state: F64 = np.concatenate([z, np.zeros(4)])
        pos_var = (MEASUREMENT_STD * s) ** 2
        vel_var = (INITIAL_VELOCITY_STD * s) ** 2
        self.cov: F64 = np.diag([pos_var] * 4 + [vel_var] * 4)

    @property
    def box(self) -> F64:
        """The current estimate as xyxy pixels."""
        return cxcywh_to_xyxy(self.state[:4])

    def centre_distance2(self, centres: F64) -> F64:
        """Squared Mahalanobis distances of measured box centres (N,2) from the estimate."""
        s = _size(self.state[2], self.state[3])
        cov = self.cov[:2, :2] + np.eye(2) * (MEASUREMENT_STD * s) ** 2
        d = np.asarray(centres, np.float64).reshape(-1, 2) - self.state[:2]
        out: F64 = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
        return out

    def predict(self, dt: float) -> None:
        """Advance the estimate by `dt` seconds (0 leaves it unchanged)."""
        if dt <= 0:
            return
        decay = math.exp(-dt / VELOCITY_TIME_CONSTANT_S)
        f = np.eye(8)
        f[:4, 4:] = VELOCITY_TIME_CONSTANT_S * (1.0 - decay) * np.eye(4)
        f[4:, 4:] = decay * np.eye(4)
        s = _size(self.state[2], self.state[3])
        q_centre = (CENTRE_ACCELERATION_STD * s) ** 2
        q_size = (SIZE_ACCELERATION_STD * s) ** 2
        q = np.zeros((8, 8))
        for i, density in enumerate((q_centre, q_centre, q_size, q_size)):
            q[i, i] = density * dt**3 / 3
            q[i, i + 4] = q[i + 4, i] = density * dt**2 / 2
            q[i + 4, i + 4] = density * dt
        self.state = f @ self.state
        self.state[2:4] = np.maximum(self.state[2:4], MIN_SIDE)
        self.cov = f @ self.cov @ f.T + q

    def update(self, box_xyxy: F64) -> None:
        """Correct the estimate with a measured box."""
        z = xyxy_to_cxcywh(np.asarray(box_xyxy, np.float64))
        r = np.eye(4) * (MEASUREMENT_STD * _size(z[2], z[3])) ** 2
        innovation = z - _H @ self.state
        s = _H @ self.cov @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.cov).T
        self.state = self.state + gain @ innovation
        self.state[2:4] = np.maximum(self.state[2:4], MIN_SIDE)
        cov = (np.eye(8) - gain @ _H) @ self.cov
        self.cov = (cov + cov.T) / 2

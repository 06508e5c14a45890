"""The 1/18 DeepRacer car: geometry, limits and state (its motion is sim.dynamics).

Pure functions on a small state tuple, free of the simulator's compiled kernels: the car's nodes
import this module.  The car origin is the centre of the wheelbase (and of the footprint).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

CONTROL_DT = 1.0 / 15.0  # s: one action per camera frame


@dataclass(frozen=True)
class CarSpec:
    """Geometry and actuator limits of the car (DeepRacer defaults)."""

    wheelbase: float = 0.164
    wheel_track: float = 0.162
    length: float = 0.324
    width: float = 0.196
    height: float = 0.12
    front_point: float = 0.14  # the reward x, y: this far ahead of the origin
    max_steer_deg: float = 30.0
    min_speed: float = 0.1
    max_speed: float = 4.0
    steer_rate: float = math.radians(360.0)  # rad/s the steering servo can turn
    accel: float = 6.0  # m/s^2, speeding up
    decel: float = 8.0  # m/s^2, braking
    substeps: int = 4  # integration steps per control step


class CarState(NamedTuple):
    """Pose and actuator state: x, y (m), yaw (rad), speed (m/s), steering (rad)."""

    x: float
    y: float
    yaw: float
    speed: float
    steer: float


def clip_command(spec: CarSpec, steer_deg: float, speed: float, min_speed: float | None = None) -> tuple[float, float]:
    """Clip a commanded steering (deg) and speed (m/s) to the car's limits (`min_speed` default: the car's)."""
    s = min(max(float(steer_deg), -spec.max_steer_deg), spec.max_steer_deg)
    v = min(max(float(speed), spec.min_speed if min_speed is None else min_speed), spec.max_speed)
    return s, v


def body_points(spec: CarSpec, state: CarState) -> np.ndarray:
    """World positions of the front point (row 0) and the four wheel contacts (rows 1-4)."""
    c, s = math.cos(state.yaw), math.sin(state.yaw)
    hx, hy = spec.wheelbase / 2, spec.wheel_track / 2
    local = ((spec.front_point, 0.0), (hx, hy), (hx, -hy), (-hx, hy), (-hx, -hy))
    return np.array([(state.x + c * lx - s * ly, state.y + s * lx + c * ly) for lx, ly in local])

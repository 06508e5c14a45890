"""The car's motion: a kinematic bicycle with actuator lag, integrated at a fixed sub-step.

A pure function on the small state tuple of sim.car, so that dynamics can be tested and reused without
a physics engine; the integration is a compiled kernel (sim.kernels.bicycle).
"""
from __future__ import annotations

from sim.car import CONTROL_DT, CarSpec, CarState
from sim.kernels import bicycle


def step_dynamics(spec: CarSpec, state: CarState, steer_cmd: float, speed_cmd: float,
                  dt: float = CONTROL_DT) -> CarState:
    """Advance the car by `dt` seconds toward the commanded steering (rad) and speed (m/s)."""
    h = dt / spec.substeps
    return CarState(*bicycle(*state, float(steer_cmd), float(speed_cmd), h, spec.steer_rate * h, spec.accel * h,
                             spec.decel * h, spec.wheelbase, spec.substeps))

"""A scripted driver: pure pursuit on the centre line with a curvature speed profile."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.car import CarSpec, CarState
from sim.track import Track


@dataclass(frozen=True)
class PurePursuit:
    """Steers toward a point `lookahead` metres ahead on the centre line.

    Speed is the lower of `max_speed` and sqrt(lateral_accel / curvature) over the next
    `preview` metres, so the expert brakes before bends as a good driver would.
    """

    max_speed: float = 1.0
    lookahead: float = 0.3  # m at standstill
    lookahead_per_speed: float = 0.15  # extra m per m/s
    lateral_accel: float = 3.0  # m/s^2
    preview: float = 0.8  # m
    car: CarSpec = CarSpec()

    def command(self, track: Track, state: CarState) -> tuple[float, float]:
        """(steering deg, speed m/s) for the car state on the track driven."""
        c, s = math.cos(state.yaw), math.sin(state.yaw)
        rear = np.array([state.x - c * self.car.wheelbase / 2, state.y - s * self.car.wheelbase / 2])
        here = float(track.project(rear[None]).s[0])
        ld = self.lookahead + self.lookahead_per_speed * max(state.speed, 0.0)
        (tx, ty), _ = track.point_at(here + ld)
        dx, dy = tx - rear[0], ty - rear[1]
        alpha = math.atan2(dy, dx) - state.yaw
        dist = math.hypot(dx, dy)
        steer = math.degrees(math.atan2(2 * self.car.wheelbase * math.sin(alpha), dist))
        kappa = float(np.max(_curvature_ahead(track, here, self.preview)))
        speed = min(self.max_speed, math.sqrt(self.lateral_accel / max(kappa, 1e-6)))
        return steer, speed


def _curvature_ahead(track: Track, s: float, preview: float) -> np.ndarray:
    kappa = track.curvature()
    wp = track.waypoint_s
    ahead = (wp - s) % track.length
    sel = ahead <= preview
    return kappa[sel] if sel.any() else kappa[:1]


def normalised_action(steer_deg: float, speed: float, steer_range: tuple[float, float],
                      speed_range: tuple[float, float]) -> np.ndarray:
    """A command mapped to a continuous action space's [-1, 1]^2 policy output."""
    (s0, s1), (v0, v1) = steer_range, speed_range
    a = np.array([2 * (steer_deg - s0) / (s1 - s0) - 1, 2 * (speed - v0) / (v1 - v0) - 1], dtype=np.float32)
    return np.clip(a, -1.0, 1.0)


def expert_policy(expert: PurePursuit):
    """A `policy(obs, env) -> action` that drives a continuous-action DeepRacerEnv by pure pursuit."""
    def policy(obs, env) -> np.ndarray:
        e = env.unwrapped
        steer, speed = expert.command(e.driving, e.state)
        return normalised_action(steer, speed, e.actions.steer_range, e.actions.speed_range)
    return policy

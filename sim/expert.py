"""A scripted driver: pure pursuit on the centre line with a curvature speed profile, moving to the
free lane round the boxes and cars ahead (ground truth from the params)."""
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

    def command(self, track: Track, state: CarState, offset: float = 0.0) -> tuple[float, float]:
        """(steering deg, speed m/s) for the car state on the track driven, aiming `offset` metres left
        of the centre line."""
        c, s = math.cos(state.yaw), math.sin(state.yaw)
        rear = np.array([state.x - c * self.car.wheelbase / 2, state.y - s * self.car.wheelbase / 2])
        here = float(track.project(rear[None]).s[0])
        ld = self.lookahead + self.lookahead_per_speed * max(state.speed, 0.0)
        (tx, ty), _ = track.point_at(here + ld, offset)
        dx, dy = tx - rear[0], ty - rear[1]
        alpha = math.atan2(dy, dx) - state.yaw
        dist = math.hypot(dx, dy)
        steer = math.degrees(math.atan2(2 * self.car.wheelbase * math.sin(alpha), dist))
        kappa = float(np.max(_curvature_ahead(track, here, self.preview)))
        speed = min(self.max_speed, math.sqrt(self.lateral_accel / max(kappa, 1e-6)))
        return steer, speed


AVOID_AHEAD = 2.0  # m: an object this far ahead (or less) of the car's front decides the expert's lane
LANE_CHANGE_GAP = 0.1  # m between the car's offset and the aimed one: the expert is changing lanes
LANE_CHANGE_SPEED = 0.5  # m/s at most while changing lanes
ALONGSIDE = (-0.6, 0.3)  # m from the car's front: an object here is beside the car (car 0.32 m, box 0.5 m long)
FOLLOW_GAP = 1.0  # m: a moving object this far ahead (or less) that is changing lanes is followed, not passed
SETTLED = 0.03  # m from a lane's midline: an object this close to it is not changing lanes
FOLLOW_SHARE = 0.4  # of its speed: the expert drops back behind an object changing lanes


def avoid_offset(params: dict) -> float:
    """The lateral offset (m, + left) the expert aims for: the midline of the lane free of the object
    beside the car, else of the nearest one up to AVOID_AHEAD ahead; 0 (the centre line) without one."""
    length, here = params["track_length"], params["projection_distance"]
    near = []
    for s, d, left in zip(params["objects_distance"], params["objects_distance_from_center"],
                          params["objects_left_of_center"]):
        ahead = (s - here - ALONGSIDE[0]) % length + ALONGSIDE[0]
        if ahead <= AVOID_AHEAD:
            near.append((ahead, left or d < 1e-3))
    if not near:
        return 0.0
    beside = [o for o in near if o[0] <= ALONGSIDE[1]]
    _, left = max(beside) if beside else min(near)
    lane = params["track_width"] / 4  # the midline between the centre line and a border
    return -lane if left else lane


def follow_speed(params: dict) -> float | None:
    """The expert's speed cap (m/s) behind a moving object (a bot car) up to FOLLOW_GAP ahead of the car's
    front that is changing lanes: FOLLOW_SHARE of its speed, so that it draws away until it settles in a
    lane (it may be cutting into the car's lane); None without one."""
    lane = params["track_width"] / 4
    length, here = params["track_length"], params["projection_distance"]
    caps = [FOLLOW_SHARE * v for s, d, v in zip(params["objects_distance"], params["objects_distance_from_center"],
                                                params["objects_speed"])
            if v > 0 and 0 < (s - here) % length <= FOLLOW_GAP and abs(d - lane) > SETTLED]
    return min(caps) if caps else None


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


def expert_command(expert: PurePursuit, track: Track, state: CarState, params: dict) -> tuple[float, float]:
    """(steering deg, speed m/s) of the expert for a car at `state` with this step's `params`: pure pursuit on
    the lane free of the objects near it, slowly while changing lanes (the boxes may stand close together),
    dropping back behind a bot car that is changing lanes just ahead."""
    target = avoid_offset(params)
    steer, speed = expert.command(track, state, target)
    here = params["distance_from_center"] * (1 if params["is_left_of_center"] else -1)
    if abs(target - here) > LANE_CHANGE_GAP:
        speed = min(speed, LANE_CHANGE_SPEED)
    cap = follow_speed(params)
    return steer, speed if cap is None else min(speed, cap)


def expert_policy(expert: PurePursuit):
    """A `policy(obs, env) -> action` that drives a continuous-action DeepRacerEnv by pure pursuit."""
    def policy(obs, env) -> np.ndarray:
        e = env.unwrapped
        steer, speed = expert_command(expert, e.driving, e.state, e.params)
        return normalised_action(steer, speed, e.actions.steer_range, e.actions.speed_range)
    return policy


@dataclass(frozen=True)
class ScriptedOpponent:
    """The expert driving another car of a head-to-model race from ground truth (its own state and params),
    as `racer drive --race head-to-model` races it: a DeepRacerEnv opponent with `drive(race, car)`."""

    expert: PurePursuit = PurePursuit()

    def drive(self, race, car) -> tuple[float, float]:
        """(steering deg, speed m/s) for `car` (a sim.race.RaceCar) of `race` this step."""
        return expert_command(self.expert, race.driving, car.state, car.params)

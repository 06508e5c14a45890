"""The DeepRacer reward `params`: 27 keys with the reference semantics, built every step."""
from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import dataclass

import numpy as np

from sim.track import Projection, Track

PARAM_KEYS = (
    "all_wheels_on_track", "x", "y", "heading", "distance_from_center", "is_left_of_center",
    "is_offtrack", "is_reversed", "progress", "speed", "steering_angle", "steps", "track_length",
    "track_width", "waypoints", "closest_waypoints", "closest_objects", "objects_distance",
    "objects_distance_from_center", "objects_heading", "objects_left_of_center", "objects_location",
    "objects_speed", "object_in_camera", "projection_distance", "sim_time", "is_crashed",
)


_LIST_KEYS = ("waypoints", "closest_waypoints", "closest_objects", "objects_distance",
              "objects_distance_from_center", "objects_heading", "objects_left_of_center", "objects_speed")


@dataclass(frozen=True)
class ObjectInfo:
    """Another object on the track as the reward sees it: box, bot car or other racer."""

    x: float
    y: float
    heading: float = 0.0  # rad; 0 for boxes
    speed: float = 0.0  # m/s configured; 0 for boxes
    s: float | None = None  # arc length and signed lateral offset on the driven track, when known (else
    offset: float | None = None  # the params project the object's x, y)


class Params(dict):
    """The params dict of a step.  Its deep copy is `copy_params` (items are immutable), so
    vector envs that deep-copy every step's info (SB3's DummyVecEnv) do not walk the waypoints."""

    def __deepcopy__(self, memo: dict) -> Params:
        return Params(copy_params(self))


@lru_cache(maxsize=32)
def waypoint_list(track: Track) -> list[tuple[float, float]]:
    """The `waypoints` value: centre-line points as (x, y) tuples, made once per track (the reward gets
    a copy of the list, and its items are immutable, so it is shared)."""
    return [(float(x), float(y)) for x, y in track.center]


def build_params(*, track: Track, waypoints: list, x: float, y: float, yaw: float,
                 front: Projection, wheels_on_road: np.ndarray, steering_angle: float, speed: float,
                 progress: float, steps: int, sim_time: float, is_reversed: bool, is_crashed: bool,
                 objects: list[ObjectInfo] = (), camera_hfov: float = 1.13) -> dict:
    """All 27 keys for one step; (x, y) is the car's front point and `front` its projection."""
    offset = float(front.offset[0])
    prev_wp, next_wp = track.closest_waypoints(front)
    heading = math.degrees(yaw)
    if heading <= -180.0:
        heading += 360.0
    s_car = float(front.s[0])
    obj = _object_params(track, objects, s_car)
    object_in_camera = bool(objects) and _in_view(objects[obj["closest_objects"][1]], x, y, yaw, camera_hfov)
    on_road = int(np.count_nonzero(wheels_on_road))
    return Params({
        "all_wheels_on_track": on_road == len(wheels_on_road),
        "x": float(x),
        "y": float(y),
        "heading": heading,
        "distance_from_center": abs(offset),
        "is_left_of_center": offset > 0,
        "is_offtrack": on_road == 0,
        "is_reversed": bool(is_reversed),
        "progress": float(progress),
        "speed": float(speed),
        "steering_angle": float(steering_angle),
        "steps": float(steps),
        "track_length": track.length,
        "track_width": float(front.width[0]),
        "waypoints": waypoints,
        "closest_waypoints": [prev_wp, next_wp],
        "object_in_camera": object_in_camera,
        "projection_distance": s_car,
        "sim_time": float(sim_time),
        "is_crashed": bool(is_crashed),
        **obj,
    })


def _in_view(obj: ObjectInfo, x: float, y: float, yaw: float, hfov: float) -> bool:
    """Whether the object's centre is ahead of (x, y) inside the camera's horizontal field of view."""
    bearing = math.atan2(obj.y - y, obj.x - x) - yaw
    bearing = (bearing + math.pi) % (2 * math.pi) - math.pi
    return abs(bearing) <= hfov / 2


def copy_params(params: dict) -> dict:
    """A copy the reward function may mutate freely (as DeepRacer's deep copy), made cheaply."""
    out = dict(params)
    for key in _LIST_KEYS:
        out[key] = list(params[key])  # their items are immutable (tuples, numbers, bools)
    out["objects_location"] = [list(v) for v in params["objects_location"]]
    return out


def _object_params(track: Track, objects: list[ObjectInfo], s_car: float) -> dict:
    if not objects:
        return {"closest_objects": [0, 0], "objects_distance": [], "objects_distance_from_center": [],
                "objects_heading": [], "objects_left_of_center": [], "objects_location": [],
                "objects_speed": []}
    if all(o.s is not None for o in objects):
        s, offset = np.array([o.s for o in objects]), np.array([o.offset for o in objects])
    else:
        proj = track.project(np.array([(o.x, o.y) for o in objects]))
        s, offset = proj.s, proj.offset
    ahead = (s - s_car) % track.length  # how far each object is ahead along the track
    return {
        "closest_objects": [int(np.argmax(ahead)), int(np.argmin(ahead))],
        "objects_distance": [float(v) for v in s],
        "objects_distance_from_center": [float(abs(v)) for v in offset],
        "objects_heading": [float(o.heading) for o in objects],
        "objects_left_of_center": [bool(v > 0) for v in offset],
        "objects_location": [[float(o.x), float(o.y)] for o in objects],
        "objects_speed": [float(o.speed) for o in objects],
    }


def default_reward(params: dict) -> float:
    """The AWS console's first example: reward staying near the centre line."""
    d, w = params["distance_from_center"], params["track_width"]
    if d <= 0.1 * w:
        return 1.0
    if d <= 0.25 * w:
        return 0.5
    if d <= 0.5 * w:
        return 0.1
    return 1e-3

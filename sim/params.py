"""The DeepRacer reward `params`: 27 keys with the reference semantics, built every step."""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from sim.track import Track

PARAM_KEYS = (
    "all_wheels_on_track", "x", "y", "heading", "distance_from_center", "is_left_of_center",
    "is_offtrack", "is_reversed", "progress", "speed", "steering_angle", "steps", "track_length",
    "track_width", "waypoints", "closest_waypoints", "closest_objects", "objects_distance",
    "objects_distance_from_center", "objects_heading", "objects_left_of_center", "objects_location",
    "objects_speed", "object_in_camera", "projection_distance", "sim_time", "is_crashed",
)


OBJECT_KEYS = ("objects_distance", "objects_distance_from_center", "objects_heading", "objects_left_of_center",
               "objects_location", "objects_speed")  # the per-object keys (`object_columns`)
NO_OBJECTS: dict[str, list] = {key: [] for key in OBJECT_KEYS}
_LIST_KEYS = ("waypoints", "closest_waypoints", "closest_objects", "objects_distance",
              "objects_distance_from_center", "objects_heading", "objects_left_of_center", "objects_speed")


class ObjectInfo(NamedTuple):
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


def build_params(*, track: Track, waypoints: list, x: float, y: float, yaw: float, s: float, offset: float,
                 segment: int, width: float, wheels_on_road: list[bool], steering_angle: float, speed: float,
                 progress: float, steps: int, sim_time: float, is_reversed: bool, is_crashed: bool,
                 objects: dict[str, list] = NO_OBJECTS, camera_hfov: float = 1.13) -> dict:
    """All 27 keys for one step; (x, y) is the car's front point, `s`, `offset`, `segment` and `width` its
    projection (`Track.locate`), `objects` the `object_columns` of the other objects."""
    heading = math.degrees(yaw)
    if heading <= -180.0:
        heading += 360.0
    closest = closest_objects(track, objects["objects_distance"], s)
    object_in_camera = bool(closest) and _in_view(*objects["objects_location"][closest[1]], x, y, yaw, camera_hfov)
    on_road = sum(wheels_on_road)
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
        "track_width": width,
        "waypoints": waypoints,
        "closest_waypoints": list(track.closest_waypoints(segment)),
        "object_in_camera": object_in_camera,
        "projection_distance": s,
        "sim_time": float(sim_time),
        "is_crashed": bool(is_crashed),
        "closest_objects": closest or [0, 0],
        "objects_distance": list(objects["objects_distance"]),
        "objects_distance_from_center": list(objects["objects_distance_from_center"]),
        "objects_heading": list(objects["objects_heading"]),
        "objects_left_of_center": list(objects["objects_left_of_center"]),
        "objects_location": [list(v) for v in objects["objects_location"]],
        "objects_speed": list(objects["objects_speed"]),
    })


def closest_objects(track: Track, distances: list[float], s_car: float) -> list[int]:
    """[behind, ahead]: the objects (by index) nearest behind and ahead of arc length `s_car` along the
    track; [] without objects."""
    if not distances:
        return []
    length = track.length
    ahead = [(v - s_car) % length for v in distances]  # how far each object is ahead along the track
    return [ahead.index(max(ahead)), ahead.index(min(ahead))]  # the first of equals, as max(key=) picks


def _in_view(ox: float, oy: float, x: float, y: float, yaw: float, hfov: float) -> bool:
    """Whether the point (ox, oy) is ahead of (x, y) inside the camera's horizontal field of view."""
    bearing = math.atan2(oy - y, ox - x) - yaw
    bearing = (bearing + math.pi) % (2 * math.pi) - math.pi
    return abs(bearing) <= hfov / 2


def copy_params(params: dict) -> dict:
    """A copy the reward function may mutate freely (as DeepRacer's deep copy), made cheaply."""
    out = dict(params)
    for key in _LIST_KEYS:
        out[key] = list(params[key])  # their items are immutable (tuples, numbers, bools)
    out["objects_location"] = [list(v) for v in params["objects_location"]]
    return out


def object_columns(track: Track, objects: Sequence[ObjectInfo]) -> dict[str, list]:
    """The per-object params keys (OBJECT_KEYS) of `objects`, one entry each in order.  Each object's
    place is its `s` and `offset`, or, when any object's is unknown, every object's projection on `track`.
    Columns of objects joined in order are `join_columns` of theirs (static boxes' are made once)."""
    if any(o.s is None for o in objects):
        proj = track.project(np.array([(o.x, o.y) for o in objects]))
        s, offset = proj.s.tolist(), proj.offset.tolist()
    else:
        s, offset = [float(o.s) for o in objects], [float(o.offset) for o in objects]
    return place_columns(s, offset, [float(o.heading) for o in objects], [(float(o.x), float(o.y)) for o in objects],
                         [float(o.speed) for o in objects])


def place_columns(s: list[float], offset: list[float], heading: list[float], location: list[tuple[float, float]],
                  speed: list[float]) -> dict[str, list]:
    """The per-object params keys (OBJECT_KEYS) of objects at arc lengths `s` and offsets `offset` (+ left), with
    their headings (rad), (x, y) and speeds: the lists themselves, Python floats."""
    return {
        "objects_distance": s,
        "objects_distance_from_center": [abs(v) for v in offset],
        "objects_heading": heading,
        "objects_left_of_center": [v > 0 for v in offset],
        "objects_location": location,
        "objects_speed": speed,
    }


def join_columns(*columns: dict[str, list]) -> dict[str, list]:
    """`object_columns` of several groups of objects, in order."""
    return {key: [v for c in columns for v in c[key]] for key in OBJECT_KEYS}


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

"""Where things go on a track: lanes, box and bot-car layouts, the start grid, start and reset lanes.

Pure functions over the Track being driven (a reversed track included).  Places are (s, lane):
`s` the arc length along the centre line from the track's start line (waypoint 0), m, in
[0, length); `lane` 1 = inner, -1 = outer, 0 = the centre line.  A lane is the midline between
the centre line and a border; "inner" is the geometric inside of the loop, the left border on a
counter-clockwise track and the right one on a clockwise track.  Layouts follow the reference
simulator's code (the community simapp); see each function.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import numpy as np

from sim import kernels
from sim.race_config import INNER, OUTER, START_POS_OFFSET, RaceConfig
from sim.track import Track, vertex_normals

CENTRE = 0
END_GAP = 1.0  # m: evenly spaced and random layouts end this far before the start line (reference)
CLOSEST_OBJ_GAP = 1.0  # m: an object this near a start or reset point decides its lane (reference)
SAME_LANE_GAP = 1.5  # m: randomised boxes (or bots) nearer each other than this share a lane, so a car can pass
HEADING_STEP = 0.05  # m either side of a point over which a path's heading is taken

Place = tuple[float, int]  # (s, lane)


@dataclass(frozen=True, eq=False)
class LaneFrame:
    """A track's centre line with smoothly turning normals (a lateral offset is continuous in s), as the
    lane kernels (sim.kernels) take it."""

    length: float
    closed: bool
    table: np.ndarray  # (7, n): each waypoint's arc length, x, y, unit left normal x, y (the mean of the
    # adjacent segments') and half widths on the left and the right
    inner: int  # +1: the inner border is on the left; -1: on the right


_FRAMES: WeakKeyDictionary[Track, LaneFrame] = WeakKeyDictionary()
_LAST: list[tuple[Track, LaneFrame] | None] = [None]  # the last track asked about (holds it until another one)


def lane_frame(track: Track) -> LaneFrame:
    """The track's centre line as the lane kernels take it (made once per track)."""
    last = _LAST[0]
    if last is not None and last[0] is track:  # the common case, the track asked about again
        return last[1]
    frame = _FRAMES.get(track)
    if frame is None:
        c = track.center
        vn = vertex_normals(c, track.closed)
        at = track.project(c)  # each waypoint's road half widths, as the params measure them
        area = 0.5 * float(np.sum(c[:-1, 0] * c[1:, 1] - c[1:, 0] * c[:-1, 1]))
        table = np.array([track.waypoint_s, c[:, 0], c[:, 1], vn[:, 0], vn[:, 1], at.half_left, at.half_right],
                         dtype=float)
        frame = LaneFrame(track.length, track.closed, table, 1 if area >= 0 else -1)
        _FRAMES[track] = frame
    _LAST[0] = (track, frame)
    return frame


def inner_side(track: Track) -> int:
    """+1 when the inner border is on the left of the driving direction, -1 when on the right."""
    return lane_frame(track).inner


def lane_offset(track: Track, s: float, lane: int) -> float:
    """Signed lateral offset (+ left) of a lane's midline at arc length `s`: half the local half
    width on that lane's side; 0 for the centre line."""
    f = lane_frame(track)
    return kernels.lane_offset(f.table, f.length, f.closed, f.inner, s, lane)


def road_point(track: Track, s: float, offset: float) -> tuple[float, float]:
    """World point at arc length `s` and lateral `offset` (+ left), with the normal interpolated
    between waypoints so that a constant offset traces a continuous line (unlike `Track.point_at`,
    whose offset jumps at each waypoint of a curve)."""
    f = lane_frame(track)
    return kernels.road_point(f.table, f.length, f.closed, s, offset)


def lane_pose(track: Track, s: float, lane: int) -> tuple[float, float, float]:
    """(x, y, yaw) on a lane's midline at arc length `s`: where a box or a car is put; the yaw (rad) is the
    direction of the chord over +-HEADING_STEP (`kernels.path_pose`, as a bot car's, without lane changes)."""
    f = lane_frame(track)
    return kernels.path_pose(f.table, f.length, f.closed, f.inner, s, lane, 0.0, -math.inf, math.inf, 1.0,
                             HEADING_STEP)[:3]


# ---- layouts ------------------------------------------------------------------------------
def evenly_spaced(n: int, first: float, last: float) -> list[float]:
    """n distances evenly from `first` to `last`, bit for bit numpy.linspace's (step times index, plus
    `first`; the last one exactly `last`)."""
    step = (last - first) / (n - 1) if n > 1 else last - first
    d = [i * step + first for i in range(n)]
    if n > 1:
        d[-1] = last
    return d


def spread(n: int, first: float, last: float, min_gap: float, randomize: bool,
           rng: np.random.Generator) -> list[Place]:
    """The reference's layout: n distances evenly from `first` to `last`, on alternating lanes
    (inner first); randomised, each distance (in random order) is redrawn uniformly between its
    neighbours +-min_gap when there is room, and each lane is drawn at random, except that one nearer than
    SAME_LANE_GAP to the one before takes its lane (the reference can draw two boxes side by side)."""
    d = evenly_spaced(n, first, last)
    if not randomize:
        return [(x, INNER if i % 2 == 0 else OUTER) for i, x in enumerate(d)]
    for i in rng.permutation(n).tolist():
        lo = first if i == 0 else d[i - 1] + min_gap
        hi = last if i == n - 1 else d[i + 1] - min_gap
        if lo < hi:
            d[i] = rng.uniform(lo, hi)
    lanes = [OUTER if v == 1 else INNER for v in rng.integers(0, 2, size=n).tolist()]
    for i in range(1, n):  # unlike the reference, never a wall: boxes too close to weave between share a lane
        if d[i] - d[i - 1] < SAME_LANE_GAP:
            lanes[i] = lanes[i - 1]
    return list(zip(d, lanes))


def _from_start(track: Track, places: list[Place], start_s: float) -> list[Place]:
    return [(float((start_s + d) % track.length), lane) for d, lane in places]


def obstacle_layout(track: Track, cfg: RaceConfig, rng: np.random.Generator, start_s: float = 0.0) -> list[Place]:
    """Boxes as (s, lane), measured from the start line at `start_s`.

    OBJECT_POSITIONS when given (fractions of the length, fixed).  Otherwise NUMBER_OF_OBSTACLES
    evenly spaced from MIN_DISTANCE_BETWEEN_OBSTACLES (a PERCENT of the length, as the reference's
    code reads it) to 1 m before the start line, alternating lanes inner first; with
    RANDOMIZE_OBSTACLE_LOCATIONS each call jitters them (still at least the minimum distance apart
    where the even spacing allowed it, and within the same span) and draws each lane.  The first
    box can be as near as the minimum distance ahead of the start: a car starting within 1 m of a
    box starts in the other lane (`start_lane`).
    """
    L = track.length
    if cfg.object_positions:
        return _from_start(track, [(f * L, lane) for f, lane in cfg.object_positions], start_s)
    gap = cfg.min_distance_between_obstacles / 100.0 * L
    return _from_start(track, spread(cfg.number_of_obstacles, gap, L - END_GAP, gap,
                                     cfg.randomize_obstacle_locations, rng), start_s)


def bot_layout(track: Track, cfg: RaceConfig, rng: np.random.Generator, start_s: float = 0.0) -> list[Place]:
    """Bot cars' starting places as (s, lane): like `obstacle_layout`'s spacing with NUMBER_OF_BOT_CARS,
    MIN_DISTANCE_BETWEEN_BOT_CARS (metres here, as the reference's bot code reads it) and
    RANDOMIZE_BOT_CAR_LOCATIONS."""
    gap = cfg.min_distance_between_bot_cars
    return _from_start(track, spread(cfg.number_of_bot_cars, gap, track.length - END_GAP, gap,
                                     cfg.randomize_bot_car_locations, rng), start_s)


def start_grid(track: Track, n: int, offset: float = START_POS_OFFSET, start_s: float = 0.0) -> list[Place]:
    """Starting places of n racing cars: a lone car on the centre line at the start; of several,
    car i `offset`*i m behind the start line (along the centre line), odd indices on the inner
    lane and even ones (car 0 included) on the outer lane, as the reference's grid."""
    if n == 1:
        return [(float(start_s % track.length), CENTRE)]
    return [(float((start_s - offset * i) % track.length), INNER if i % 2 else OUTER) for i in range(n)]


# ---- start and reset lanes ----------------------------------------------------------------
def nearest_object(track: Track, s: float, objects: Sequence[Place], gap: float = CLOSEST_OBJ_GAP) -> int | None:
    """Index of the object nearest arc length `s` (either way round the loop) if it lies within `gap`."""
    if not objects:
        return None
    L = track.length
    dist = np.abs((np.array([o[0] for o in objects]) - s + L / 2) % L - L / 2)
    i = int(np.argmin(dist))
    return i if dist[i] < gap else None


def start_lane(track: Track, s: float, objects: Sequence[Place], gap: float = CLOSEST_OBJ_GAP) -> int:
    """The lane a training episode starts in at `s`: the centre line, or the lane free of the object
    (box or bot, by its lane) within `gap` of the start, as the reference does."""
    i = nearest_object(track, s, objects, gap)
    return CENTRE if i is None else -objects[i][1]


def reset_spot(track: Track, s: float, car_offset: float, boxes: Sequence[Place], cfg: RaceConfig,
               ahead: bool = False) -> Place:
    """Where an evaluation puts a car back after a failure at arc length `s` (the last progress).

    A box within 1 m of `s`: RESET_BEHIND_DIST behind it (RESET_AHEAD_DIST ahead when `ahead`), in
    the lane free of it.  Otherwise at `s`, on the lane nearer the car's lateral offset.  With
    ENABLE_MERCY_RESET the caller counts the resets at one box (`nearest_object`; another box starts
    the count again at 1) and passes `ahead=True` on the MAX_RESETS_AFTER_CRASH-th, then restarts
    the count at 0, as the reference does.
    """
    i = nearest_object(track, s, boxes)
    if i is None:
        inner, outer = lane_offset(track, s, INNER), lane_offset(track, s, OUTER)
        return float(s % track.length), INNER if abs(car_offset - inner) < abs(car_offset - outer) else OUTER
    box_s, box_lane = boxes[i]
    spot = box_s + cfg.reset_ahead_dist if ahead else box_s - cfg.reset_behind_dist
    return float(spot % track.length), -box_lane

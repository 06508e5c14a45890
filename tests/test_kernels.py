"""The compiled kernels (sim.kernels) give the bits of the numpy formulas they replace (kept here as the
references), on random inputs, and the compiled paths of the track, the car and the world agree with the
general ones."""
from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import pytest

from sim import kernels
from sim.car import CarSpec, CarState, body_points
from sim.dynamics import step_dynamics
from sim.layout import lane_frame
from sim.track import Track, from_centerline, load

TOKYO = Path(__file__).parent / "data" / "tracks" / "Tokyo_Training_track.npy"


# ---- numpy references (the vectorised code the kernels replaced) ---------------------------------------
def closest_reference(pts: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nearest of the segments in `table` ((6, K), or (6, M, K): one set per point) to each point."""
    ax, ay, ux, uy, length = table[:5]
    rx, ry = pts[:, :1] - ax, pts[:, 1:] - ay
    along = rx * ux
    along += ry * uy
    foot = np.minimum(np.maximum(along, 0.0), length)
    side = ux * ry
    side -= uy * rx
    gap = along - foot
    d2 = side * side
    d2 += gap * gap
    j = d2.argmin(axis=1)
    rows = np.arange(len(pts))
    return j, d2[rows, j], foot[rows, j], side[rows, j]


def inside_reference(pts: np.ndarray, crossing: np.ndarray) -> np.ndarray:
    x0, y0, y1, slope = crossing
    px, py = pts[:, :1], pts[:, 1:]
    crosses = ((y0 > py) != (y1 > py)) & (px < x0 + (py - y0) * slope)
    return np.count_nonzero(crosses, axis=1) % 2 == 1


def bicycle_reference(spec: CarSpec, state: CarState, steer_cmd: float, speed_cmd: float,
                      dt: float = 1.0 / 15.0) -> CarState:
    """The pure-Python integration the kernel replaced."""
    def approach(value, target, up, down):
        return min(target, value + up) if target > value else max(target, value - down)
    x, y, yaw, v, delta = state
    h = dt / spec.substeps
    for _ in range(spec.substeps):
        delta = approach(delta, steer_cmd, spec.steer_rate * h, spec.steer_rate * h)
        v = approach(v, speed_cmd, spec.accel * h, spec.decel * h)
        beta = math.atan(0.5 * math.tan(delta))
        x += v * math.cos(yaw + beta) * h
        y += v * math.sin(yaw + beta) * h
        yaw += v * math.cos(beta) * math.tan(delta) / spec.wheelbase * h
    return CarState(x, y, (yaw + math.pi) % (2 * math.pi) - math.pi, v, delta)


def lane_reference(table: np.ndarray, length: float, closed: bool, inner: int, s: float, lane: int, s0: float,
                   last_change: float, next_change: float, span: float, step: float) -> tuple[float, ...]:
    """The pure-Python lane formulas the kernels replaced (sim.layout's _locate, lane_offset, road_point and
    path_pose, sim.bots' _offset_at and _blend, over a frame's lists): `kernels.path_pose`'s x, y, yaw and
    offset, then `lane_offset` and `road_point` at `s`."""
    cum, cx, cy, nx, ny, left, right = table.tolist()
    half = {1: left, -1: right}

    def locate(s):
        s = s % length if closed else min(max(s, 0.0), length)
        k = min(max(bisect.bisect_right(cum, s) - 1, 0), len(cum) - 2)
        return k, (s - cum[k]) / (cum[k + 1] - cum[k])

    def lane_offset(s, lane):
        if lane == 0:
            return 0.0
        k, t = locate(s)
        side = inner * (1 if lane == 1 else -1)
        h = half[side]
        return side * 0.5 * (h[k] + (h[k + 1] - h[k]) * t)

    def road_point(s, offset):
        k, t = locate(s)
        a0, a1, b0, b1 = nx[k], nx[k + 1], ny[k], ny[k + 1]
        vx, vy = a0 + (a1 - a0) * t, b0 + (b1 - b0) * t
        scale = offset / math.hypot(vx, vy)
        return cx[k] + (cx[k + 1] - cx[k]) * t + vx * scale, cy[k] + (cy[k + 1] - cy[k]) * t + vy * scale

    def blend(travel, start):
        u = min(max((travel - start) / span, 0.0), 1.0)
        return u * u * (3.0 - 2.0 * u)

    def offset_at(s):
        travel = s - s0
        a = lane_offset(s, lane)
        if last_change + span <= travel <= next_change:
            return a
        b = lane_offset(s, -lane)
        if travel < last_change + span:
            return b + (a - b) * blend(travel, last_change)
        return a + (b - a) * blend(travel, next_change)

    xb, yb = road_point(s - step, offset_at(s - step))
    x, y = road_point(s, offset_at(s))
    xf, yf = road_point(s + step, offset_at(s + step))
    return x, y, math.atan2(yf - yb, xf - xb), offset_at(s), lane_offset(s, lane), *road_point(s, s0)


# ---- tracks and points ------------------------------------------------------------------------------
def _open_arc() -> Track:
    a = 2 * np.pi * np.arange(180) / 300
    return from_centerline(5.0 * np.stack([np.cos(a), np.sin(a)], axis=1), 0.76, closed=False)


@pytest.fixture(params=["reinvent-like", "pro", "tokyo", "open-arc"])
def track(request) -> Track:
    name = request.param
    return _open_arc() if name == "open-arc" else load(TOKYO if name == "tokyo" else name)


def _near_points(track: Track, rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on and round the road, far off it, and exactly on waypoints (ties)."""
    width = float(np.max(track.widths))
    near = track.point_at(rng.uniform(0.0, track.length, n), rng.uniform(-1.5 * width, 1.5 * width, n))[0]
    xmin, ymin, xmax, ymax = track.bounds
    far = rng.uniform((xmin - 3.0, ymin - 3.0), (xmax + 3.0, ymax + 3.0), (n // 5, 2))
    return np.concatenate([near, far, track.center[::7], track.left[::5]])


# ---- the kernels against their references ---------------------------------------------------------------
def test_nearest_segments_over_all_is_the_numpy_search(track):
    line = track._cache["line"]  # the centre line's segments
    pts = _near_points(track, np.random.default_rng(1), 1500)
    got = kernels.nearest_segments(pts, line.table, *line.search(None), line.closed, True)
    for a, b in zip(got[:4], closest_reference(pts, line.table)):
        np.testing.assert_array_equal(a, b)


def test_nearest_segments_in_windows_is_the_numpy_window_search(track):
    """With one hint per point and no fallback: the window's answer and its proof, as the numpy gather of
    the window's segments gave them; with the fallback, the search over all whatever the hint."""
    line = track._cache["line"]
    windows = line.windows()
    if windows is None:
        pytest.skip("a short polyline is searched whole")
    index, proof = windows
    rng = np.random.default_rng(2)
    pts = _near_points(track, rng, 1500)
    hints = rng.integers(-2 * line.n, 2 * line.n, len(pts))
    h = hints % line.n if line.closed else np.clip(hints, 0, line.n - 1)
    j, d2, foot, side = closest_reference(pts, line.table[:, index[h]])
    rows = np.arange(len(pts))
    k, kd2, kfoot, kside, proved = kernels.nearest_segments(pts, line.table, index, proof, hints, line.closed, False)
    for a, b in zip((k, kd2, kfoot, kside, proved), (index[h, j], d2, foot, side, d2 < proof[h[rows], j])):
        np.testing.assert_array_equal(a, b)
    assert proved.any() and not proved.all()
    every = kernels.nearest_segments(pts, line.table, index, proof, hints, line.closed, True)[:4]
    for a, b in zip(every, closest_reference(pts, line.table)):
        np.testing.assert_array_equal(a, b)


def test_inside_polygon_counts_crossings_as_numpy(track):
    _, _, crossing = track._road_safety()
    pts = _near_points(track, np.random.default_rng(3), 800)
    got = kernels.inside_polygon(pts, crossing)
    np.testing.assert_array_equal(got, inside_reference(pts, crossing))
    assert got.any() and not got.all()


def test_interp_is_numpys():
    rng = np.random.default_rng(4)
    xp = np.cumsum(rng.uniform(0.001, 0.1, 500))
    fp = rng.normal(size=500)
    fp[rng.integers(0, 500, 40)] = np.nan  # as the border profiles mark their jumps
    fp[100:103] = 7.0  # a level stretch
    x = np.concatenate([rng.uniform(xp[0] - 1.0, xp[-1] + 1.0, 5000), xp, xp[::3] + 1e-13, [np.nan]])
    np.testing.assert_array_equal(kernels.interp(x, xp, fp), np.interp(x, xp, fp))


def test_bicycle_is_the_python_integration():
    rng = np.random.default_rng(5)
    spec = CarSpec()
    for _ in range(20000):
        state = CarState(*rng.uniform(-5, 5, 2), rng.uniform(-math.pi, math.pi), rng.uniform(0, 4),
                         rng.uniform(-0.6, 0.6))
        steer, speed = rng.uniform(-0.6, 0.6), rng.choice([0.0, 0.1, 4.0, rng.uniform(0, 4)])
        assert step_dynamics(spec, state, steer, speed) == bicycle_reference(spec, state, steer, speed)


def test_py_hypot_is_pythons():
    """Across magnitudes, subnormals included, and at zeros, infinities and NaNs."""
    rng = np.random.default_rng(9)
    v = rng.normal(size=(200000, 2)) * 2.0 ** rng.integers(-1074, 1020, (200000, 1))
    v[:50000] = rng.normal(size=(50000, 2)) * 2.0 ** rng.integers(-12, 4, (50000, 1))  # a normal's size
    v[:100, 0] = 0.0
    special = [(0.0, 0.0), (-0.0, 3.0), (math.inf, math.nan), (math.nan, -math.inf), (math.nan, 1.0), (-3.0, 4.0)]
    for x, y in v.tolist() + special:
        want = math.hypot(x, y)
        assert kernels.py_hypot(x, y) == want or (math.isnan(want) and math.isnan(kernels.py_hypot(x, y))), (x, y)


def test_lane_kernels_are_the_python_formulas(track):
    """`path_pose` (a lane's, or a bot's before, during and after lane changes), `lane_offset` and
    `road_point`, on the track and its reverse, at arc lengths round and beyond the ends and on waypoints."""
    rng = np.random.default_rng(10)
    for driven in (track, track.reversed()):
        f = lane_frame(driven)
        L = f.length
        s_values = np.concatenate([rng.uniform(-0.2 * L, 1.2 * L, 300), f.table[0, ::9], [0.0, L, -1e-9]])
        for s in s_values.tolist():
            lane = int(rng.choice([1, -1, 0]))
            s0 = s - rng.uniform(0, 30)
            last, nxt = sorted(rng.uniform(-5, 35, 2))
            changes = [(-math.inf, math.inf), (last, nxt), (-math.inf, nxt), (last, math.inf)]
            span, step = rng.choice([0.5, 1.0, 2.5]), 0.05
            for last_change, next_change in changes:
                args = (f.table, L, f.closed, f.inner, s, lane, s0, last_change, next_change, span, step)
                got = (*kernels.path_pose(*args), kernels.lane_offset(f.table, L, f.closed, f.inner, s, lane),
                       *kernels.road_point(f.table, L, f.closed, s, s0))
                assert got == lane_reference(*args), args


# ---- the compiled paths of the track against the general ones ---------------------------------------------
def test_locate_is_the_projection_of_the_body_points(track):
    """`Track.locate` of a car's five points, with a near, a wild or no hint, equals `project`'s first
    point and `on_road` of all (a count of crossings), bit for bit; the width too, where a border's nearest
    point jumps."""
    rng = np.random.default_rng(7)
    half = float(np.max(track.widths)) / 2
    crossing = track._road_safety()[2]
    for s, off, yaw in zip(rng.uniform(0, track.length, 400), rng.uniform(-half - 0.3, half + 0.3, 400),
                           rng.uniform(-math.pi, math.pi, 400)):
        (x, y), heading = track.point_at(s, off)
        pts = body_points(CarSpec(), CarState(float(x), float(y), float(heading + yaw / 4), 0.0, 0.0))
        want = track.project(pts)
        for hint in (None, int(want.segment[0]) + int(rng.integers(-3, 4)), int(rng.integers(-500, 500))):
            got = track.locate(pts, hint)
            assert (got.s, got.offset, got.segment) == (want.s[0], want.offset[0], want.segment[0])
            assert got.width == want.width[0] and got.on_road == want.on_road.tolist()
        assert got.on_road == inside_reference(pts, crossing).tolist()  # the proofs only save counting
    at, profile = track._border_table()
    jumps = at[np.flatnonzero(np.isnan(profile[2]))]  # the width is worked out anew there
    for s in jumps[:20]:
        (x, y), heading = track.point_at(s)
        pts = body_points(CarSpec(front_point=0.0), CarState(float(x), float(y), float(heading), 0.0, 0.0))
        got, want = track.locate(pts), track.project(pts)
        assert got.width == want.width[0] and not math.isnan(got.width)


def silhouette_reference(starts: np.ndarray, spans: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The numpy fill of a box's silhouette the kernel replaced."""
    index = np.arange(max(r1, c1), dtype=float)
    (y0, x0), (dy, dx) = (a.swapaxes(0, 1) for a in (starts, spans))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (index[r0:r1] - y0) / dy
        xs = x0 + k * dx
    on = (k >= 0) & (k <= 1)
    lo = np.minimum.reduce(xs, axis=0, where=on, initial=np.inf)[..., None]
    hi = np.maximum.reduce(xs, axis=0, where=on, initial=-np.inf)[..., None]
    cols = index[c0:c1]
    return (cols >= lo) & (cols <= hi)


def test_fill_silhouette_paints_the_numpy_fill():
    """Random segments (level ones, missing ones, ends on pixel centres) of two cameras, some of them in use."""
    rng = np.random.default_rng(8)
    colour = np.array([7, 8, 9], np.uint8)
    for _ in range(300):
        starts = rng.uniform(-5, 45, (12, 2, 2, 1))
        spans = rng.uniform(-30, 30, (12, 2, 2, 1))
        starts[rng.random(12) < 0.2] = np.nan
        spans[rng.random(12) < 0.2, 0] = 0.0
        starts[:4], spans[:4] = np.round(starts[:4]), np.round(spans[:4])  # ends on pixel centres
        starts[:, 1] += rng.choice([-60, 0, 60])  # some wholly left or right of the frame
        rect = sorted(rng.integers(0, 40, 2)) + sorted(rng.integers(0, 40, 2))
        rect[1] += 1
        rect[3] += 1
        count = int(rng.integers(0, 13))
        want = np.zeros((45, 50, 2), bool)
        want[rect[0]:rect[1], rect[2]:rect[3]] = silhouette_reference(starts[:count], spans[:count],
                                                                      *rect).transpose(1, 2, 0)
        out = np.zeros((45, 50, 2, 3), np.uint8)
        kernels.fill_silhouette(out, colour, starts[..., 0], spans[..., 0], count, *rect)
        np.testing.assert_array_equal(out, np.where(want[..., None], colour, 0))


def slab_reference(rays: np.ndarray, origins: np.ndarray, place: np.ndarray, size: np.ndarray, depth: np.ndarray,
                   rect: tuple[int, int, int, int]) -> np.ndarray:
    """The numpy slab test of the pixels of a box's screen rectangle the kernel replaced: where the box (at `place`
    in the car frame, `size` length, width, height) is nearer than `depth` (C, H, W), updated there, (C, R, W)."""
    rect = (slice(None), slice(rect[0], rect[1]), slice(rect[2], rect[3]))
    cr, sr = math.cos(place[2]), math.sin(place[2])
    rx, ry, rz = rays[0][rect], rays[1][rect], rays[2][rect]
    oc = (origins - (place[0], place[1], size[2] / 2))[:, None, None]  # (C, 1, 1, 3): each camera
    ob = (cr * oc[..., 0] + sr * oc[..., 1], -sr * oc[..., 0] + cr * oc[..., 1], oc[..., 2])  # from the box
    t_in = t_out = None
    for d, o, h in zip((cr * rx + sr * ry, -sr * rx + cr * ry, rz), ob, (size[0] / 2, size[1] / 2, size[2] / 2)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-h - o) / d
            t2 = (h - o) / d
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)  # NaN: a ray in a face's plane, no bound
        t_in = near if t_in is None else np.fmax(t_in, near)
        t_out = far if t_out is None else np.fmin(t_out, far)
    hit = (t_out >= np.maximum(t_in, 0)) & (t_in < depth[rect])
    np.copyto(depth[rect], t_in, where=hit)
    return hit


def test_slab_test_is_the_numpy_one():
    """Random rays (some along the box's axes, some from cameras on its faces' planes) of two cameras against
    random boxes, over a random depth buffer."""
    rng = np.random.default_rng(9)
    colour = np.array([200], np.uint8)
    for _ in range(200):
        rays = rng.normal(size=(3, 2, 12, 14))
        rays[rng.random(rays.shape) < 0.2] = 0.0
        size = rng.uniform(0.1, 1.0, 3)
        place = np.array([*rng.uniform(-1, 1, 2), rng.uniform(-3.2, 3.2)])
        origins = rng.uniform(-1, 1, (2, 3))
        if rng.random() < 0.5:  # cameras on the planes of faces: rays along them meet 0 / 0
            place[:] = 0.0
            origins[:, 0] = rng.choice([-0.5, 0.5], 2) * size[0]
            origins[:, 2] = rng.choice([0.0, size[2]], 2)
        depth = rng.uniform(0, 3, (2, 12, 14))
        depth[rng.random(depth.shape) < 0.3] = np.inf
        rect = tuple(sorted(rng.integers(0, 13, 2))) + tuple(sorted(rng.integers(0, 15, 2)))
        want_depth = depth.copy()
        hit = slab_reference(rays, origins, place, size, want_depth, rect)
        want = np.zeros((12, 14, 2), bool)
        want[rect[0]:rect[1], rect[2]:rect[3]] = hit.transpose(1, 2, 0)
        out = np.zeros((12, 14, 2, 1), np.uint8)
        box = np.array([0.0, 0.0, 0.0, *size])  # only its sizes are read
        kernels.slab_test(out, depth, colour, rays, origins, place, box, *rect)
        np.testing.assert_array_equal(out[..., 0], np.where(want, colour[0], 0))
        np.testing.assert_array_equal(depth, want_depth)


def overlap_groups_reference(rects: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """The Python grouping of screen rectangles the kernel replaced: indices grouped so that rectangles that
    overlap (directly or through others) share a group."""
    def overlap(a, b):
        return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]

    groups: list[list[int]] = []
    for v in range(len(rects)):
        joined = [g for g in groups if any(overlap(rects[v], rects[u]) for u in g)]
        groups = [g for g in groups if g not in joined] + [[u for g in joined for u in g] + [v]]
    return groups


def test_overlap_groups_are_the_python_ones():
    """Random rectangles, many overlapping: the same groups, their views in the same order."""
    rng = np.random.default_rng(10)
    for _ in range(500):
        n = int(rng.integers(0, 9))
        rects = [tuple(sorted(rng.integers(0, 30, 2))) + tuple(sorted(rng.integers(0, 30, 2))) for _ in range(n)]
        seq, label = kernels.overlap_groups(np.array(rects, np.intp).reshape(-1, 4))
        groups = []
        for i, v in enumerate(seq.tolist()):
            if i == 0 or label[v] != label[seq[i - 1]]:
                groups.append([])
            groups[-1].append(v)
        assert groups == overlap_groups_reference(rects)


def test_matmul_is_numpys():
    """Products of small matrices (the renderer's (4 or 9, 4) by (4, N)), signed zeros included."""
    rng = np.random.default_rng(12)
    for _ in range(2000):
        m, n = int(rng.integers(2, 20)), int(rng.integers(2, 20))
        a, b = rng.normal(size=(m, 4)) * rng.uniform(0.01, 100), rng.normal(size=(4, n))
        if rng.random() < 0.3:
            a, b = rng.choice([0.0, -0.0, 1.0, -2.5], (m, 4)), rng.choice([0.0, -0.0, 1.0, -0.5], (4, n))
        got, want = kernels.matmul(a, b), a @ b
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# ---- bot cars and the world's bodies ----------------------------------------------------------------------
class BotReference:
    """The pure-Python bot car the compiled `move_bots` and `bot_poses` replaced (sim.bots' BotCar of one bot,
    its pose by `lane_reference`)."""

    def __init__(self, frame, s: float, lane: int, cfg, rng: np.random.Generator):
        self.frame, self.cfg, self.rng, self.speed = frame, cfg, rng, float(cfg.bot_car_speed)
        self.s0, self.travel, self.lane, self.last_change, self.frozen = float(s), 0.0, lane, -math.inf, 0.0
        self.change_at = self.next_change(0.0)

    def next_change(self, after: float) -> float:
        if not self.cfg.is_lane_change:
            return math.inf
        return after + self.rng.uniform(self.cfg.lower_lane_change_time, self.cfg.upper_lane_change_time) * self.speed

    def step(self, dt: float) -> None:
        moving = max(0.0, dt - self.frozen)
        self.frozen = max(0.0, self.frozen - dt)
        self.travel += self.speed * moving
        span = self.cfg.lane_change_distance
        while self.travel >= self.change_at + span:
            self.lane = -self.lane
            self.last_change = self.change_at
            self.change_at = self.next_change(self.change_at + span)

    def pose(self) -> tuple[float, ...]:
        """x, y, yaw, offset and arc length in [0, length)."""
        f = self.frame
        x, y, yaw, offset = lane_reference(f.table, f.length, f.closed, f.inner, self.s0 + self.travel, self.lane,
                                           self.s0, self.last_change, self.change_at, self.cfg.lane_change_distance,
                                           0.05)[:4]
        return x, y, yaw, offset, (self.s0 + self.travel) % f.length


def test_bots_drive_as_the_python_bot_cars(track):
    """`Bots` (one `move_bots` call a step, lane changes drawn in Python) against a Python bot car each, sharing a
    seeded generator: the same state, poses and arc lengths bit for bit, through lane changes, freezes and the
    end of the track, and the params columns of the `object_columns` of their `ObjectInfo`s."""
    from sim.bots import CHANGE_AT, FROZEN, LANE, TRAVEL, Bots
    from sim.params import ObjectInfo, object_columns
    from sim.race_config import parse_race_config
    rng = np.random.default_rng(11)
    for driven in (track, track.reversed()):
        for _ in range(2):
            cfg = parse_race_config("head-to-bot", {
                "BOT_CAR_SPEED": float(rng.uniform(0.2, 3.0)), "IS_LANE_CHANGE": bool(rng.random() < 0.8),
                "LOWER_LANE_CHANGE_TIME": 0.5, "UPPER_LANE_CHANGE_TIME": float(rng.uniform(0.6, 3.0)),
                "LANE_CHANGE_DISTANCE": float(rng.uniform(0.3, 2.0)), "NUMBER_OF_BOT_CARS": 4})
            places = [(float(rng.uniform(0, driven.length)), int(rng.choice([1, -1]))) for _ in range(4)]
            seed = int(rng.integers(1000))
            bots = Bots(driven, places, cfg, np.random.default_rng(seed))
            shared = np.random.default_rng(seed)
            refs = [BotReference(lane_frame(driven), s, lane, cfg, shared) for s, lane in places]
            for k in range(400):
                dt = 1 / 15 if rng.random() < 0.9 else float(rng.uniform(0.0, 2.0))
                bots.step(dt)
                for ref in refs:
                    ref.step(dt)
                if rng.random() < 0.02:
                    seconds = float(rng.uniform(0.0, 3.0))
                    bots.freeze(seconds)
                    for ref in refs:
                        ref.frozen = max(ref.frozen, seconds)
                want = [[ref.travel, ref.lane, ref.change_at, ref.frozen] for ref in refs]
                assert bots.state[:, [TRAVEL, LANE, CHANGE_AT, FROZEN]].tolist() == want, k
                assert bots.poses.tolist() == [list(ref.pose()) for ref in refs], k
                infos = [ObjectInfo(x, y, yaw, ref.speed, s, offset) for ref, (x, y, yaw, offset, s)
                         in zip(refs, (ref.pose() for ref in refs))]
                assert bots.columns() == object_columns(driven, infos)


def test_set_poses_is_the_numpy_assignment():
    rng = np.random.default_rng(12)
    bodies, poses = rng.normal(size=(9, 7)), rng.normal(size=(4, 5))
    rows = rng.permutation(9)[:4].astype(np.intp)
    want = bodies.copy()
    want[rows, :3] = poses[:, :3]
    kernels.set_poses(bodies, rows, poses)
    assert np.array_equal(bodies, want)

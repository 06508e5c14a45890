"""Compiled loops of the simulator's hot path (numba, no fastmath): pure functions over arrays.

Each step integrates the car's motion, projects its five body points on the centre line, tests them
against the road polygon and looks up the road width; bot cars and boxes are placed on lanes; the LIDAR's
rays are cast against the bodies' footprints, and boxes are culled, projected and filled on the camera
screens.  These are loops over tens or hundreds of items for a handful of points, where numpy's (or
Python's) cost is the overhead of its calls.  Where a kernel replaced a numpy or Python formula, its
arithmetic is that formula's, operation for operation (no fused or reordered floating point, Python's
math.hypot rebuilt as `py_hypot`), so that the results are the same bits (tests/test_kernels.py and
tests/test_render.py keep those formulas as references).  The ray cast is new: exact in the plane, it is
checked against PyBullet's (tests/test_race.py).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _segment_gap(px: float, py: float, table: np.ndarray, c: int) -> tuple[float, float, float]:
    """Squared distance from (px, py) to segment `c` of a `track._segment_table`, the foot (m along the
    segment) and the side (+ left)."""
    rx = px - table[0, c]
    ry = py - table[1, c]
    ux, uy = table[2, c], table[3, c]
    along = rx * ux + ry * uy
    foot = min(max(along, 0.0), table[4, c])
    side = ux * ry - uy * rx
    gap = along - foot
    return side * side + gap * gap, foot, side


@njit(cache=True)
def _nearest_one(px: float, py: float, table: np.ndarray, index: np.ndarray, proof: np.ndarray, hint: int,
                 closed: bool, fallback: bool) -> tuple[int, float, float, float, bool]:
    """`nearest_segments` for one point and its hint."""
    n = table.shape[1]
    k, d2, foot, side, proved = 0, 0.0, 0.0, 0.0, False
    if index.shape[0] > 0:
        h = hint % n if closed else min(max(hint, 0), n - 1)
        best = 0
        for w in range(index.shape[1]):
            dd, ff, ss = _segment_gap(px, py, table, index[h, w])
            if w == 0 or dd < d2:
                best, d2, foot, side = w, dd, ff, ss
        k = index[h, best]
        proved = d2 < proof[h, best]
        if proved or not fallback:
            return k, d2, foot, side, proved
    for c in range(n):
        dd, ff, ss = _segment_gap(px, py, table, c)
        if c == 0 or dd < d2:
            k, d2, foot, side = c, dd, ff, ss
    return k, d2, foot, side, proved


@njit(cache=True)
def nearest_segments(pts: np.ndarray, table: np.ndarray, index: np.ndarray, proof: np.ndarray,
                     hints: np.ndarray, closed: bool, fallback: bool) -> tuple[np.ndarray, ...]:
    """The nearest segment of a polyline to each point (M, 2), the first on a tie: its index, the squared
    distance, the foot (m along it) and the side (+ left), and whether a window proved it.

    `table`: the polyline's `_segment_table` (6, n).  `index` (n, K): the segments of the window round each
    hint in index order, and `proof` (n, K): the squared distance under which the window proves a point
    nearest to that segment (`_Polyline.windows`); empty (0, 0) arrays: no windows, every point is searched
    over all segments.  `hints`: one segment per point, or one for all (a loop's taken modulo n, an open
    line's clipped).  A point its window does not prove is searched over all segments when `fallback`,
    else it keeps the window's answer."""
    m = pts.shape[0]
    k = np.empty(m, np.intp)
    d2, foot, side = np.empty(m), np.empty(m), np.empty(m)
    proved = np.empty(m, np.bool_)
    for i in range(m):
        k[i], d2[i], foot[i], side[i], proved[i] = _nearest_one(
            pts[i, 0], pts[i, 1], table, index, proof, hints[i % hints.shape[0]], closed, fallback)
    return k, d2, foot, side, proved


@njit(cache=True)
def _inside_one(px: float, py: float, crossing: np.ndarray) -> bool:
    """`inside_polygon` for one point."""
    count = 0
    for e in range(crossing.shape[1]):
        y0 = crossing[1, e]
        if (y0 > py) != (crossing[2, e] > py) and px < crossing[0, e] + (py - y0) * crossing[3, e]:
            count += 1
    return count % 2 == 1


@njit(cache=True)
def inside_polygon(pts: np.ndarray, crossing: np.ndarray) -> np.ndarray:
    """Whether each point (M, 2) is inside the polygon bounded by the edges of a `track._crossing_table`
    (4, E) (even-odd: the count of edges that a ray from the point towards +x crosses)."""
    out = np.empty(pts.shape[0], np.bool_)
    for i in range(pts.shape[0]):
        out[i] = _inside_one(pts[i, 0], pts[i, 1], crossing)
    return out


@njit(cache=True)
def _on_road_one(px: float, py: float, k: int, offset: float, safe2: np.ndarray, inside: np.ndarray,
                 crossing: np.ndarray) -> bool:
    """`on_road` for one point."""
    if offset * offset >= safe2[k]:
        return _inside_one(px, py, crossing)
    return inside[k]


@njit(cache=True)
def on_road(pts: np.ndarray, segment: np.ndarray, offset: np.ndarray, safe2: np.ndarray, inside: np.ndarray,
            crossing: np.ndarray) -> np.ndarray:
    """Whether each projected point is inside the road polygon: `inside[segment]` (whether the segment is)
    where its offset from the centre line is proved safe (`offset**2 < safe2[segment]`: no border comes
    between the point and its segment), else by the crossing count of `inside_polygon`."""
    out = np.empty(pts.shape[0], np.bool_)
    for i in range(pts.shape[0]):
        out[i] = _on_road_one(pts[i, 0], pts[i, 1], segment[i], offset[i], safe2, inside, crossing)
    return out


@njit(cache=True)
def _interp_one(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """np.interp(x, xp, fp) for increasing `xp` (numpy's algorithm: NaN-safe slopes, exact at the samples)."""
    n = xp.shape[0]
    if math.isnan(x):
        return x
    if x < xp[0]:
        return fp[0]
    if x > xp[n - 1]:
        return fp[n - 1]
    j = np.searchsorted(xp, x, side="right") - 1  # xp[j] <= x < xp[j + 1]
    if j == n - 1 or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    out = slope * (x - xp[j]) + fp[j]
    if math.isnan(out):  # from the other end, as numpy does
        out = slope * (x - xp[j + 1]) + fp[j + 1]
        if math.isnan(out) and fp[j] == fp[j + 1]:
            out = fp[j]
    return out


@njit(cache=True)
def interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp(x, xp, fp) of a 1-D `x`, for increasing `xp`."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = _interp_one(x[i], xp, fp)
    return out


@njit(cache=True)
def locate(pts: np.ndarray, table: np.ndarray, index: np.ndarray, proof: np.ndarray, hints: np.ndarray,
           closed: bool, safe2: np.ndarray, inside: np.ndarray, crossing: np.ndarray, at: np.ndarray,
           width: np.ndarray) -> tuple[float, float, int, float, np.ndarray]:
    """A car's body points (M, 2) on a track in one pass: the first point's arc length, signed offset,
    segment and the width profile there (`interp(s, at, width)`), and whether each point is on the road;
    the arguments as `nearest_segments` (with `fallback`), `on_road` and `interp` take them."""
    on = np.empty(pts.shape[0], np.bool_)
    s = offset0 = 0.0
    k0 = 0
    for i in range(pts.shape[0]):
        px, py = pts[i, 0], pts[i, 1]
        k, d2, foot, side, _ = _nearest_one(px, py, table, index, proof, hints[i % hints.shape[0]], closed, True)
        offset = math.copysign(math.sqrt(d2), side)
        on[i] = _on_road_one(px, py, k, offset, safe2, inside, crossing)
        if i == 0:
            s, offset0, k0 = table[5, k] + foot, offset, k
    return s, offset0, k0, _interp_one(s, at, width), on


@njit(cache=True)
def bicycle(x: float, y: float, yaw: float, v: float, delta: float, steer_cmd: float, speed_cmd: float, h: float,
            steer_step: float, speed_up: float, speed_down: float, wheelbase: float,
            substeps: int) -> tuple[float, float, float, float, float]:
    """`substeps` steps of `h` seconds of a kinematic bicycle (origin midway between the axles) from pose x, y,
    yaw (rad), speed v and steering delta (rad), whose steering moves toward `steer_cmd` by at most
    `steer_step` a step and whose speed toward `speed_cmd` by at most `speed_up` or `speed_down`; the new
    x, y, yaw (in [-pi, pi)), speed and steering."""
    for _ in range(substeps):
        delta = min(steer_cmd, delta + steer_step) if steer_cmd > delta else max(steer_cmd, delta - steer_step)
        v = min(speed_cmd, v + speed_up) if speed_cmd > v else max(speed_cmd, v - speed_down)
        tan = math.tan(delta)
        beta = math.atan(0.5 * tan)
        x += v * math.cos(yaw + beta) * h
        y += v * math.sin(yaw + beta) * h
        yaw += v * math.cos(beta) * tan / wheelbase * h
    yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
    return x, y, yaw, v, delta


@njit(cache=True)
def _split(x: float) -> tuple[float, float]:
    """Veltkamp's split of x into a high and a low half (hi * hi, 2 * hi * lo and lo * lo are exact)."""
    t = x * 134217729.0  # 2**27 + 1
    hi = t - (t - x)
    return hi, x - hi


@njit(cache=True)
def _add(total: float, error: float, term: float) -> tuple[float, float]:
    """total + term (|total| >= |term|), its rounding error added to `error`."""
    new = total + term
    return new, error + ((total - new) + term)


@njit(cache=True)
def py_hypot(x: float, y: float) -> float:
    """Python's math.hypot(x, y), bit for bit (CPython 3.11's vector_norm, correctly rounded in the normal
    range; numba's hypot, the C library's, differs in the last bit of some)."""
    x, y = abs(x), abs(y)
    biggest = 0.0  # the larger, NaNs left out (as CPython: an infinity wins over a NaN)
    for v in (x, y):
        if v > biggest:
            biggest = v
    if math.isinf(biggest):
        return biggest
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if biggest == 0.0:
        return biggest
    exponent = math.frexp(biggest)[1]
    csum, frac1, frac2, frac3 = 1.0, 0.0, 0.0, 0.0
    if exponent < -1023:  # 2**-exponent would overflow: CPython divides by the larger instead
        for v in (x / biggest, y / biggest):
            csum, frac1 = _add(csum, frac1, v * v)
        return biggest * math.sqrt(csum - 1.0 + frac1)
    scale = math.ldexp(1.0, -exponent)
    for v in (x * scale, y * scale):  # exact scaling, then a compensated sum of the square's exact parts
        hi, lo = _split(v)
        csum, frac1 = _add(csum, frac1, hi * hi)
        csum, frac2 = _add(csum, frac2, 2.0 * hi * lo)
        frac3 += lo * lo
    h = math.sqrt(csum - 1.0 + (frac1 + frac2 + frac3))
    hi, lo = _split(h)  # a Newton step on h**2 = the sum, in the same arithmetic
    csum, frac1 = _add(csum, frac1, -hi * hi)
    csum, frac2 = _add(csum, frac2, -2.0 * hi * lo)
    csum, frac3 = _add(csum, frac3, -lo * lo)
    return (h + (csum - 1.0 + (frac1 + frac2 + frac3)) / (2.0 * h)) / scale


# ---- lanes (sim.layout): a track's centre line as a `layout.LaneFrame.table` (7, n): each waypoint's arc length,
# x, y, unit left normal x, y (smoothly turning) and half widths on the left and the right ----------------------
@njit(cache=True)
def _frame_at(table: np.ndarray, length: float, closed: bool, s: float) -> tuple[int, float]:
    """The segment and the fraction inside it of arc length `s` (wrapped on a loop, else clipped)."""
    s = s % length if closed else min(max(s, 0.0), length)
    k = min(max(np.searchsorted(table[0], s, side="right") - 1, 0), table.shape[1] - 2)
    return k, (s - table[0, k]) / (table[0, k + 1] - table[0, k])


@njit(cache=True)
def _lane_offset(table: np.ndarray, inner: int, k: int, t: float, lane: int) -> float:
    """The offset (+ left) of `lane`'s midline (1 inner, -1 outer, 0 the centre line) at fraction t of segment
    k; `inner`: +1 when the inner border is on the left."""
    if lane == 0:
        return 0.0
    side = inner * (1 if lane == 1 else -1)
    row = 5 if side == 1 else 6
    return side * 0.5 * (table[row, k] + (table[row, k + 1] - table[row, k]) * t)


@njit(cache=True)
def _road_point(table: np.ndarray, k: int, t: float, offset: float) -> tuple[float, float]:
    """The point `offset` m (+ left) off the centre line at fraction t of segment k, along the normal
    interpolated between the waypoints'."""
    nx = table[3, k] + (table[3, k + 1] - table[3, k]) * t
    ny = table[4, k] + (table[4, k + 1] - table[4, k]) * t
    scale = offset / py_hypot(nx, ny)
    return (table[1, k] + (table[1, k + 1] - table[1, k]) * t + nx * scale,
            table[2, k] + (table[2, k + 1] - table[2, k]) * t + ny * scale)


@njit(cache=True)
def lane_offset(table: np.ndarray, length: float, closed: bool, inner: int, s: float, lane: int) -> float:
    """The offset (+ left) of `lane`'s midline at arc length `s`."""
    k, t = _frame_at(table, length, closed, s)
    return _lane_offset(table, inner, k, t, lane)


@njit(cache=True)
def road_point(table: np.ndarray, length: float, closed: bool, s: float, offset: float) -> tuple[float, float]:
    """The point at arc length `s`, `offset` m (+ left) off the centre line."""
    k, t = _frame_at(table, length, closed, s)
    return _road_point(table, k, t, offset)


@njit(cache=True)
def blend(travel: float, start: float, span: float) -> float:
    """0 before `start`, 1 after `start + span`, a smoothstep in between (C1)."""
    u = min(max((travel - start) / span, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


@njit(cache=True)
def _path_point(table: np.ndarray, length: float, closed: bool, inner: int, s: float, lane: int, s0: float,
                last_change: float, next_change: float, span: float) -> tuple[float, float, float]:
    """`path_pose`'s point at arc length `s` and its offset."""
    k, t = _frame_at(table, length, closed, s)
    travel = s - s0
    a = _lane_offset(table, inner, k, t, lane)
    if last_change + span <= travel <= next_change:
        offset = a  # on its lane, between changes
    else:
        b = _lane_offset(table, inner, k, t, -lane)
        if travel < last_change + span:
            offset = b + (a - b) * blend(travel, last_change, span)
        else:
            offset = a + (b - a) * blend(travel, next_change, span)
    x, y = _road_point(table, k, t, offset)
    return x, y, offset


@njit(cache=True)
def path_pose(table: np.ndarray, length: float, closed: bool, inner: int, s: float, lane: int, s0: float,
              last_change: float, next_change: float, span: float, step: float) -> tuple[float, float, float, float]:
    """(x, y, yaw) at arc length `s` of a path on `lane`'s midline, and its offset there; the yaw (rad) is the
    direction of the chord over +-`step` m of arc length.  The path may change lanes (a bot car's): travel
    being the arc length from `s0`, it blends onto the other lane over `span` m from travel `next_change` on,
    and before travel `last_change + span` it is still blending onto `lane` from the other one."""
    xb, yb, _ = _path_point(table, length, closed, inner, s - step, lane, s0, last_change, next_change, span)
    x, y, offset = _path_point(table, length, closed, inner, s, lane, s0, last_change, next_change, span)
    xf, yf, _ = _path_point(table, length, closed, inner, s + step, lane, s0, last_change, next_change, span)
    return x, y, math.atan2(yf - yb, xf - xb), offset


@njit(cache=True)
def _slab(p: float, d: float, half: float, lo: float, hi: float) -> tuple[float, float]:
    """The part of the ray parameter interval [lo, hi] where p + t d lies within [-half, half]."""
    if d == 0.0:
        return (lo, hi) if -half <= p <= half else (1.0, 0.0)
    t1, t2 = (-half - p) / d, (half - p) / d
    return max(lo, min(t1, t2)), min(hi, max(t1, t2))


@njit(cache=True)
def cast_rays(ox: float, oy: float, oz: float, angles: np.ndarray, bodies: np.ndarray, skip: int, reach: float,
              miss: float) -> np.ndarray:
    """The distance (float32) along each horizontal ray from (ox, oy, oz) at world angle `angles[i]` (rad) to
    the first face it meets of the upright boxes `bodies` (B, 7: centre x, y, yaw (rad), half length, half
    width, height, radius; floor z = 0), `miss` where it meets none within `reach`.  Body `skip` is not seen,
    nor a body whose top is below `oz`, nor one the origin is inside (as PyBullet does)."""
    n = angles.shape[0]
    best = np.full(n, reach)
    hit = np.zeros(n, np.bool_)
    cos_a, sin_a = np.cos(angles), np.sin(angles)
    for b in range(bodies.shape[0]):
        x, y, yaw, half_l, half_w, height = bodies[b, 0], bodies[b, 1], bodies[b, 2], bodies[b, 3], bodies[b, 4], \
            bodies[b, 5]
        if b == skip or not 0.0 <= oz <= height:
            continue
        c, s = math.cos(yaw), math.sin(yaw)
        px, py = c * (ox - x) + s * (oy - y), -s * (ox - x) + c * (oy - y)  # the origin in the box's frame
        gx, gy = max(abs(px) - half_l, 0.0), max(abs(py) - half_w, 0.0)
        if gx * gx + gy * gy > reach * reach or (abs(px) < half_l and abs(py) < half_w):
            continue  # out of reach, or seen from inside
        for i in range(n):
            dx, dy = c * cos_a[i] + s * sin_a[i], c * sin_a[i] - s * cos_a[i]  # the ray's direction in that frame
            lo, hi = _slab(px, dx, half_l, 0.0, best[i])
            lo, hi = _slab(py, dy, half_w, lo, hi)
            if lo <= hi:
                best[i], hit[i] = lo, True
    out = np.empty(n, np.float32)
    for i in range(n):
        out[i] = best[i] if hit[i] else miss
    return out


@njit(cache=True)
def touching_circles(bodies: np.ndarray, me: int, first: int) -> np.ndarray:
    """The bodies from `first` on, but `me`, whose bounding circles (`bodies` as `cast_rays` takes them)
    meet body `me`'s: those it may touch."""
    x, y, r = bodies[me, 0], bodies[me, 1], bodies[me, 6]
    out = np.empty(bodies.shape[0], np.intp)
    count = 0
    for b in range(first, bodies.shape[0]):
        if b != me and math.hypot(bodies[b, 0] - x, bodies[b, 1] - y) <= r + bodies[b, 6]:
            out[count] = b
            count += 1
    return out[:count]


# ---- boxes on the camera screens (sim.render._Screen) ---------------------------------------------------------
@njit(cache=True)
def spheres_in_view(boxes: np.ndarray, to_planes: np.ndarray, cams: int, far: float) -> np.ndarray:
    """Which boxes (B, 5: x, y, length, width, height) have a bounding sphere that some camera's frustum may
    hold, centre within `far` of the car: `to_planes` (4, 5C + 2) maps a homogeneous world point to its
    signed distances from each camera's five frustum planes (plane-major) and its car-frame x, y."""
    out = np.zeros(boxes.shape[0], np.bool_)
    cols = to_planes.shape[1]
    for b in range(boxes.shape[0]):
        x, y, length, width, height = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3], boxes[b, 4]
        radius = math.sqrt(length ** 2 + width ** 2 + height ** 2) / 2
        q = np.empty(cols)
        for j in range(cols):
            q[j] = x * to_planes[0, j] + y * to_planes[1, j] + height / 2 * to_planes[2, j] + to_planes[3, j]
        if math.hypot(q[cols - 2], q[cols - 1]) > far:
            continue
        for c in range(cams):
            inside = True
            for p in range(5):
                inside = inside and q[p * cams + c] >= -radius
            if inside:
                out[b] = True
    return out


@njit(cache=True)
def pixel_rect(rmin: float, rmax: float, cmin: float, cmax: float, width: int,
               height: int) -> tuple[int, int, int, int]:
    """The half-open pixel rectangle (r0, r1, c0, c1) of a `width` x `height` screen holding the continuous
    extents with a pixel of margin (r0 >= r1 or c0 >= c1: nothing on it; NaN extents: nothing)."""
    if math.isnan(rmin):
        return 0, 0, 0, 0
    big = max(width, height) + 2.0
    rmin, rmax = min(max(rmin, -2.0), big), min(max(rmax, -2.0), big)
    cmin, cmax = min(max(cmin, -2.0), big), min(max(cmax, -2.0), big)
    return (max(math.floor(rmin) - 1, 0), min(math.ceil(rmax) + 2, height),
            max(math.floor(cmin) - 1, 0), min(math.ceil(cmax) + 2, width))


@njit(cache=True)
def box_screens(m: np.ndarray, cams: int, far: float, clip: float, edges: np.ndarray, width: int,
                height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where boxes land on the screens, from `m` (B, 9, 8C + 2): each box's 8 corners and centre mapped to
    every camera's depth, row and column times depth, frustum plane values (plane-major), then car-frame
    x, y.  The boxes some camera sees (a corner inside every plane of its frustum), centre within `far`:
    their indices, whether every corner is `clip` or more deep for every camera (ahead), and for those the
    pixel rectangle (`pixel_rect` of the corners' extents) and each edge's (`edges` (2, 12)) first end and
    span on the screens, (12, row/column, C, 1)."""
    n = m.shape[0]
    keep = np.empty(n, np.intp)
    count = 0
    for b in range(n):
        margin = -np.inf
        for c in range(cams):
            worst = np.inf
            for p in range(5):
                most = -np.inf
                for k in range(8):
                    most = max(most, m[b, k, 3 * cams + p * cams + c])
                worst = min(worst, most)
            margin = max(margin, worst)
        if margin >= 0 and math.hypot(m[b, 8, m.shape[2] - 2], m[b, 8, m.shape[2] - 1]) <= far:
            keep[count] = b
            count += 1
    keep = keep[:count]
    ahead = np.zeros(count, np.bool_)
    rects = np.zeros((count, 4), np.intp)
    starts = np.empty((count, edges.shape[1], 2, cams, 1))
    spans = np.empty((count, edges.shape[1], 2, cams, 1))
    rc = np.empty((8, 2, cams))
    for j in range(count):
        b = keep[j]
        nearest = np.inf
        for k in range(8):
            for c in range(cams):
                nearest = min(nearest, m[b, k, c])
        ahead[j] = nearest >= clip
        if not ahead[j]:
            continue
        lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
        for k in range(8):
            for i in range(2):
                for c in range(cams):
                    v = m[b, k, cams + i * cams + c] / m[b, k, c]
                    rc[k, i, c] = v
                    lo[i], hi[i] = min(lo[i], v), max(hi[i], v)
        rects[j, 0], rects[j, 1], rects[j, 2], rects[j, 3] = pixel_rect(lo[0], hi[0], lo[1], hi[1], width, height)
        for e in range(edges.shape[1]):
            for i in range(2):
                for c in range(cams):
                    starts[j, e, i, c, 0] = rc[edges[0, e], i, c]
                    spans[j, e, i, c, 0] = rc[edges[1, e], i, c] - rc[edges[0, e], i, c]
    return keep, ahead, rects, starts, spans


@njit(cache=True, error_model="numpy")
def silhouette(starts: np.ndarray, spans: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Which pixels of rows r0..r1-1 and columns c0..c1-1 have their centres inside the hull of segments on
    the screen, per camera: (C, R, W).  `starts` and `spans` (S, row/column, C, 1): each segment's first end
    and its span (NaN in both coordinates: no segment); a pixel row's centre line enters the hull at the
    least column where it crosses a segment and leaves it at the greatest (a level segment is met by no row)."""
    cams = starts.shape[2]
    out = np.zeros((cams, r1 - r0, c1 - c0), np.bool_)
    for cam in range(cams):
        for r in range(r0, r1):
            lo, hi = np.inf, -np.inf
            for g in range(starts.shape[0]):
                k = (r - starts[g, 0, cam, 0]) / spans[g, 0, cam, 0]
                if 0 <= k <= 1:
                    x = starts[g, 1, cam, 0] + k * spans[g, 1, cam, 0]
                    lo, hi = min(lo, x), max(hi, x)
            if lo <= hi:
                for c in range(max(c0, math.ceil(lo)), min(c1, math.floor(hi) + 1)):
                    out[cam, r - r0, c - c0] = True
    return out

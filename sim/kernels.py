"""Compiled loops of the simulator's hot path (numba, no fastmath): pure functions over arrays.

Each step integrates the car's motion, projects its five body points on the centre line, tests them
against the road polygon and looks up the road width; bot cars and boxes are placed on lanes; the LIDAR's
rays are cast against the bodies' footprints, and boxes are culled, projected and filled on the camera
screens.  These are loops over tens or hundreds of items for a handful of points, where numpy's (or
Python's) cost is the overhead of its calls.  Where a kernel replaced a numpy or Python formula, its
arithmetic is that formula's, operation for operation (no fused or reordered floating point, Python's
math.hypot rebuilt as `py_hypot`, numpy's small matrix products, which are fused, as `matmul`), so that the
results are the same bits (tests/test_kernels.py and
tests/test_render.py keep those formulas as references).  The ray cast is new: exact in the plane, it is
checked against PyBullet's (tests/test_race.py).
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic


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


# ---- boxes on the camera screens (sim.render.CameraRig): culled, projected and painted in one call ---------
# A box is a row (x, y, yaw, length, width, height) of a (B, 6) table, standing on the floor; its corners in
# `_CORNERS` order, then its centre.  `to_planes` (4, 5C + 2) maps a homogeneous car-frame point to its signed
# distances from each of C cameras' five frustum planes, near, left, right, top and bottom (plane-major, unit
# normals, >= 0 inside), then its car-frame x, y; `to_cameras` (4, 8C + 2) to each camera's depth along the
# optical axis, row and column times depth (pixel centres at integers), the frustum planes' values again (not
# unit), then x, y.  `origins` (C, 3): the cameras in the car frame.
_CORNERS = np.array([(i, j, k) for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)] + [(0, 0, 0)], dtype=float) / 2
BOX_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                      if np.count_nonzero(_CORNERS[a] != _CORNERS[b]) == 1]).T  # (2, 12) corner indices
_EDGE_PAIRS = np.array([(a, b) for a in range(12) for b in range(a + 1, 12)]).T  # (2, 66)
SEGMENTS = BOX_EDGES.shape[1] + _EDGE_PAIRS.shape[1]  # at most, of a box's silhouette


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma, exact in software where the CPU has none)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [double], ir.FunctionType(double, [double] * 3))
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True)
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy's `a @ b` of float64 (M, K) by (K, N) matrices, M, N >= 2, bit for bit: OpenBLAS's product, for each
    entry a chain of fused multiply-adds over K from +0 (numpy's product with a single row or column is another)."""
    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            total = 0.0
            for k in range(a.shape[1]):
                total = _fma(a[i, k], b[k, j], total)
            out[i, j] = total
    return out


@njit(cache=True)
def _minimum(a: float, b: float) -> float:
    """np.minimum of two floats: NaN where either is."""
    return a if a != a else b if b != b or b < a else a


@njit(cache=True)
def _maximum(a: float, b: float) -> float:
    """np.maximum of two floats: NaN where either is."""
    return a if a != a else b if b != b or b > a else a


@njit(cache=True)
def _fmin(a: float, b: float) -> float:
    """np.fmin of two floats: NaN only where both are."""
    return b if a != a else a if b != b or a < b else b


@njit(cache=True)
def _fmax(a: float, b: float) -> float:
    """np.fmax of two floats: NaN only where both are."""
    return b if a != a else a if b != b or a > b else b


@njit(cache=True)
def _to_car(x: float, y: float, c: float, s: float) -> np.ndarray:
    """(4, 4) from homogeneous world points (row vectors) to the frame of a car at (x, y), heading cos c, sin s."""
    m = np.zeros((4, 4))
    m[0, 0], m[0, 1], m[1, 0], m[1, 1], m[2, 2], m[3, 3] = c, -s, s, c, 1.0, 1.0
    m[3, 0], m[3, 1] = -c * x - s * y, s * x - c * y
    return m


@njit(cache=True)
def _plane_value(to_planes: np.ndarray, j: int, x: float, y: float, height: float) -> float:
    """Column j of `to_planes` at the centre of a box at (x, y), `height` tall."""
    return x * to_planes[0, j] + y * to_planes[1, j] + height / 2 * to_planes[2, j] + to_planes[3, j]


@njit(cache=True)
def _sphere_in_view(box: np.ndarray, to_planes: np.ndarray, cams: int, far: float) -> bool:
    """Whether some camera's frustum may hold the box's bounding sphere, centre within `far` (`to_planes` for
    world points)."""
    x, y, length, width, height = box[0], box[1], box[3], box[4], box[5]
    cols = to_planes.shape[1]
    car_x, car_y = _plane_value(to_planes, cols - 2, x, y, height), _plane_value(to_planes, cols - 1, x, y, height)
    if math.hypot(car_x, car_y) > far:
        return False
    radius = math.sqrt(length ** 2 + width ** 2 + height ** 2) / 2
    for c in range(cams):
        inside = True
        for p in range(5):
            inside = inside and _plane_value(to_planes, p * cams + c, x, y, height) >= -radius
        if inside:
            return True
    return False


@njit(cache=True)
def _box_points(box: np.ndarray) -> np.ndarray:
    """(9, 4) homogeneous world points of a box: its 8 corners, then its centre."""
    c, s = math.cos(box[2]), math.sin(box[2])
    out = np.empty((9, 4))
    for k in range(9):
        lx, ly, lz = _CORNERS[k, 0] * box[3], _CORNERS[k, 1] * box[4], _CORNERS[k, 2] * box[5]
        out[k, 0], out[k, 1] = box[0] + c * lx - s * ly, box[1] + s * lx + c * ly
        out[k, 2], out[k, 3] = box[5] / 2 + lz, 1.0
    return out


@njit(cache=True)
def _in_frustum(m: np.ndarray, cams: int, far: float) -> bool:
    """Whether some camera sees the box (a corner inside every plane of its frustum), centre within `far`, from
    its points' (9, 8C + 2) `to_cameras` images."""
    margin = -np.inf
    for c in range(cams):
        worst = np.inf
        for p in range(5):
            most = -np.inf
            for k in range(8):
                most = max(most, m[k, 3 * cams + p * cams + c])
            worst = min(worst, most)
        margin = max(margin, worst)
    return margin >= 0 and math.hypot(m[8, m.shape[1] - 2], m[8, m.shape[1] - 1]) <= far


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
def _edge_segments(m: np.ndarray, cams: int, starts: np.ndarray, spans: np.ndarray, width: int,
                   height: int) -> tuple[int, int, int, int]:
    """A box every camera sees wholly beyond the clip depth: its edges' first ends and spans on the screens into
    `starts` and `spans` (12, row/column, C), and the `pixel_rect` of its corners."""
    rc = np.empty((8, 2, cams))
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    for k in range(8):
        for i in range(2):
            for c in range(cams):
                v = m[k, cams + i * cams + c] / m[k, c]
                rc[k, i, c] = v
                lo[i], hi[i] = min(lo[i], v), max(hi[i], v)
    for e in range(BOX_EDGES.shape[1]):
        for i in range(2):
            for c in range(cams):
                starts[e, i, c] = rc[BOX_EDGES[0, e], i, c]
                spans[e, i, c] = rc[BOX_EDGES[1, e], i, c] - rc[BOX_EDGES[0, e], i, c]
    return pixel_rect(lo[0], hi[0], lo[1], hi[1], width, height)


@njit(cache=True, error_model="numpy")
def _clipped_segments(m: np.ndarray, cams: int, clip: float, starts: np.ndarray, spans: np.ndarray, width: int,
                      height: int) -> tuple[int, int, int, int]:
    """A box crossing the plane at depth `clip`: segments whose hull is the projection of its part beyond it into
    `starts` and `spans` (SEGMENTS, row/column, C; NaN: none), its edges cut at the plane and every pair of the
    points where edges cross it (the clipped face), and the `pixel_rect` of their ends."""
    edges = BOX_EDGES.shape[1]
    cross = np.empty((edges, 2, cams))
    for e in range(edges):
        for c in range(cams):
            d0, d1 = m[BOX_EDGES[0, e], c], m[BOX_EDGES[1, e], c]
            k = (clip - d0) / (d1 - d0)
            for i in range(2):
                n0, n1 = m[BOX_EDGES[0, e], cams + i * cams + c], m[BOX_EDGES[1, e], cams + i * cams + c]
                cross[e, i, c] = (n0 + k * (n1 - n0)) / clip if (d0 >= clip) != (d1 >= clip) else np.nan
    lo, hi = np.full(2, np.nan), np.full(2, np.nan)
    for g in range(starts.shape[0]):
        for i in range(2):
            for c in range(cams):
                if g < edges:  # an edge: its corners beyond the plane, else where it crosses it
                    a, b = BOX_EDGES[0, g], BOX_EDGES[1, g]
                    start = m[a, cams + i * cams + c] / m[a, c] if m[a, c] >= clip else cross[g, i, c]
                    end = m[b, cams + i * cams + c] / m[b, c] if m[b, c] >= clip else cross[g, i, c]
                else:
                    start, end = cross[_EDGE_PAIRS[0, g - edges], i, c], cross[_EDGE_PAIRS[1, g - edges], i, c]
                span = end - start
                starts[g, i, c], spans[g, i, c] = start, span
                for v in (start, start + span):
                    lo[i], hi[i] = _fmin(lo[i], v), _fmax(hi[i], v)
    return pixel_rect(lo[0], hi[0], lo[1], hi[1], width, height)


@njit(cache=True)
def _touching(origins: np.ndarray, bx: float, by: float, rel: float, box: np.ndarray, close: float) -> bool:
    """Whether a camera is within `close` of the box at (bx, by), turned `rel`, in the car frame (in it, or nearly
    touching it): its view of the box is not the projection of the box clipped in front of it."""
    cr, sr = math.cos(rel), math.sin(rel)
    for c in range(origins.shape[0]):
        ox, oy, oz = origins[c, 0] - bx, origins[c, 1] - by, origins[c, 2] - box[5] / 2
        if (abs(cr * ox + sr * oy) <= box[3] / 2 + close and abs(-sr * ox + cr * oy) <= box[4] / 2 + close
                and abs(oz) <= box[5] / 2 + close):
            return True
    return False


@njit(cache=True, error_model="numpy")
def box_views(boxes: np.ndarray, x: float, y: float, yaw: float, to_planes: np.ndarray, to_cameras: np.ndarray,
              origins: np.ndarray, close: float, far: float, clip: float, width: int,
              height: int) -> tuple[np.ndarray, ...]:
    """The boxes some camera of a `width` x `height` screen may see from the car pose (x, y, yaw), centres
    within `far` (their bounding spheres culled first: most boxes of a race are behind or beside the car, then
    their corners), as V views: the box's index, its centre x, y and yaw in the car frame (V, 3), its half-open
    pixel rectangle (r0, r1, c0, c1) (V, 4), and segments on the screens whose hull is its silhouette: their
    first ends and spans (V, SEGMENTS, row/column, C) of which the first `count` (V,) are set (12: the box is
    `clip` or more deep for every camera; SEGMENTS: clipped there; 0: a camera is in the box or within
    `close` of it, no silhouette)."""
    cams = origins.shape[0]
    c, s = math.cos(yaw), math.sin(yaw)
    to_car = _to_car(x, y, c, s)
    planes = matmul(to_car, to_planes)
    seen = np.empty(boxes.shape[0], np.intp)
    n = 0
    for b in range(boxes.shape[0]):
        if _sphere_in_view(boxes[b], planes, cams, far):
            seen[n] = b
            n += 1
    index, place, rects = np.empty(n, np.intp), np.empty((n, 3)), np.empty((n, 4), np.intp)
    starts, spans = np.empty((n, SEGMENTS, 2, cams)), np.empty((n, SEGMENTS, 2, cams))
    count = np.empty(n, np.intp)
    if n == 0:
        return index, place, rects, starts, spans, count
    screen = matmul(to_car, to_cameras)
    v = 0
    for b in seen[:n]:
        box = boxes[b]
        m = matmul(_box_points(box), screen)
        if not _in_frustum(m, cams, far):
            continue
        dx, dy = box[0] - x, box[1] - y
        bx, by, rel = c * dx + s * dy, -s * dx + c * dy, box[2] - yaw
        nearest = np.inf
        for k in range(8):
            for j in range(cams):
                nearest = min(nearest, m[k, j])
        if nearest >= clip:
            rect, count[v] = _edge_segments(m, cams, starts[v], spans[v], width, height), BOX_EDGES.shape[1]
        elif _touching(origins, bx, by, rel, box, close):
            rect, count[v] = (0, height, 0, width), 0
        else:
            rect, count[v] = _clipped_segments(m, cams, clip, starts[v], spans[v], width, height), SEGMENTS
        if rect[0] < rect[1] and rect[2] < rect[3]:
            index[v] = b
            place[v, 0], place[v, 1], place[v, 2] = bx, by, rel
            rects[v, 0], rects[v, 1], rects[v, 2], rects[v, 3] = rect
            v += 1
    return index[:v], place[:v], rects[:v], starts[:v], spans[:v], count[:v]


@njit(cache=True)
def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two pixel rectangles (r0, r1, c0, c1) share a pixel."""
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


@njit(cache=True)
def overlap_groups(rects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The views grouped so that those whose rectangles overlap (directly or through others) share a group: the
    views group by group (V,) and each one's group label.  Taking the views in turn, a view and the groups it
    overlaps become one group, theirs in the order they stood, then it, after the other groups."""
    n = rects.shape[0]
    seq, label, joined, new = np.empty(n, np.intp), np.empty(n, np.intp), np.zeros(n, np.bool_), np.empty(n, np.intp)
    for v in range(n):
        for u in range(v):
            joined[u] = False
        for u in seq[:v]:
            joined[label[u]] = joined[label[u]] or _overlap(rects[u], rects[v])
        k = 0
        for merged in (False, True):
            for u in seq[:v]:
                if joined[label[u]] == merged:
                    new[k] = u
                    k += 1
        new[k] = v
        for k in range(v + 1):
            seq[k] = new[k]
            if seq[k] == v or joined[label[seq[k]]]:
                label[seq[k]] = v
    return seq, label


@njit(cache=True)
def _extent(place: np.ndarray, box: np.ndarray, ux: float, uy: float) -> tuple[float, float]:
    """The interval the box's floor rectangle (at `place`: x, y, yaw in the car frame) covers along the unit
    axis (ux, uy) of the car frame."""
    c, s = math.cos(place[2]), math.sin(place[2])
    centre = place[0] * ux + place[1] * uy
    half = box[3] / 2 * abs(c * ux + s * uy) + box[4] / 2 * abs(-s * ux + c * uy)
    return centre - half, centre + half


@njit(cache=True)
def _nearer(place_a: np.ndarray, box_a: np.ndarray, place_b: np.ndarray, box_b: np.ndarray,
            origins: np.ndarray) -> int:
    """0 when box a is in front of box b for every camera where both are seen, 1 when b is, -1 when no vertical
    plane separates them with all cameras on one side (they intersect).  The planes tried are those of the
    boxes' sides (the separating axes of two rectangles)."""
    for rel in (place_a[2], place_b[2]):
        c, s = math.cos(rel), math.sin(rel)
        for ux, uy in ((c, s), (-s, c)):
            a_lo, a_hi = _extent(place_a, box_a, ux, uy)
            b_lo, b_hi = _extent(place_b, box_b, ux, uy)
            cam_lo, cam_hi = np.inf, -np.inf
            for k in range(origins.shape[0]):
                cam = origins[k, 0] * ux + origins[k, 1] * uy
                cam_lo, cam_hi = min(cam_lo, cam), max(cam_hi, cam)
            if a_hi <= b_lo:  # a on the low side: in front for the cameras not beyond b's side
                if cam_hi <= b_lo:
                    return 0
                if cam_lo >= a_hi:
                    return 1
            elif b_hi <= a_lo:
                if cam_hi <= a_lo:
                    return 1
                if cam_lo >= b_hi:
                    return 0
    return -1


@njit(cache=True)
def _back_to_front(group: np.ndarray, boxes: np.ndarray, index: np.ndarray, place: np.ndarray,
                   rects: np.ndarray, count: np.ndarray, origins: np.ndarray) -> tuple[bool, np.ndarray]:
    """The group's views in an order to paint them (farthest first), or False when there is none for every
    camera (boxes that intersect, a cycle) or a box has no silhouette (a camera touches it)."""
    n = group.shape[0]
    for v in group:
        if count[v] == 0:
            return False, group
    hides = np.zeros((n, n), np.bool_)  # [i, j]: view i hides view j
    for i in range(n):
        for j in range(i + 1, n):
            a, b = group[i], group[j]
            if not _overlap(rects[a], rects[b]):
                continue
            nearer = _nearer(place[a], boxes[index[a]], place[b], boxes[index[b]], origins)
            if nearer < 0:
                return False, group
            if nearer == 0:
                hides[i, j] = True
            else:
                hides[j, i] = True
    order, painted, ready = np.empty(n, np.intp), np.zeros(n, np.bool_), np.empty(n, np.bool_)
    done = 0
    while done < n:
        for i in range(n):  # every view it hides is painted
            ready[i] = not painted[i]
            for j in range(n):
                ready[i] = ready[i] and (painted[j] or not hides[i, j])
        if not ready.any():
            return False, group
        for i in range(n):
            if ready[i]:
                order[done] = group[i]
                painted[i] = True
                done += 1
    return True, order


@njit(cache=True, inline="always")  # (a call per pixel of a slab test would cost more than its painting)
def _paint_run(out: np.ndarray, r: int, first: int, last: int, cam: int, colour: np.ndarray) -> None:
    """Paint `colour` (K,) on columns first..last-1 of row r of camera `cam` of the frames `out` (H, W, C, K)."""
    for i in range(colour.shape[0]):
        value = colour[i]
        for c in range(first, last):
            out[r, c, cam, i] = value


@njit(cache=True, error_model="numpy")
def fill_silhouette(out: np.ndarray, colour: np.ndarray, starts: np.ndarray, spans: np.ndarray, count: int,
                    r0: int, r1: int, c0: int, c1: int) -> None:
    """Paint `colour` (K,) into the frames `out` (H, W, C, K) on the pixels of rows r0..r1-1 and columns
    c0..c1-1 whose centres lie inside the hull of the first `count` segments on the screen of each camera.
    `starts` and `spans` (S, row/column, C): each segment's first end and its span (NaN in both coordinates:
    no segment); a pixel row's centre line enters the hull at the least column where it crosses a segment and
    leaves it at the greatest (a level segment is met by no row)."""
    for cam in range(starts.shape[2]):
        for r in range(r0, r1):
            lo, hi = np.inf, -np.inf
            for g in range(count):
                k = (r - starts[g, 0, cam]) / spans[g, 0, cam]
                if 0 <= k <= 1:
                    x = starts[g, 1, cam] + k * spans[g, 1, cam]
                    lo, hi = min(lo, x), max(hi, x)
            if lo <= hi:
                first, last = max(c0, math.ceil(lo)), min(c1, math.floor(hi) + 1)
                _paint_run(out, r, first, last, cam, colour)


@njit(cache=True, error_model="numpy")
def _slab_bounds(o: float, d: float, half: float) -> tuple[float, float]:
    """The ray parameters where o + t d crosses -half and half, least first (NaN: a ray in a face's plane)."""
    t1, t2 = (-half - o) / d, (half - o) / d
    return _minimum(t1, t2), _maximum(t1, t2)


@njit(cache=True, error_model="numpy")
def _slab_row(rx: np.ndarray, ry: np.ndarray, rz: np.ndarray, cr: float, sr: float, o: tuple[float, float, float],
              half: tuple[float, float, float], t_in: np.ndarray, t_out: np.ndarray) -> None:
    """The ray parameters where the rays (rx, ry, rz) of a row of pixels from `o` enter and leave a box of `half`
    sizes turned by cos cr, sin sr, all in the box's frame, into `t_in` and `t_out` (NaN bounds nothing; a loop
    without branches, which the compiler vectorises)."""
    for c in range(rx.shape[0]):
        lo0, hi0 = _slab_bounds(o[0], cr * rx[c] + sr * ry[c], half[0])
        lo1, hi1 = _slab_bounds(o[1], -sr * rx[c] + cr * ry[c], half[1])
        lo2, hi2 = _slab_bounds(o[2], rz[c], half[2])
        t_in[c], t_out[c] = _fmax(_fmax(lo0, lo1), lo2), _fmin(_fmin(hi0, hi1), hi2)


@njit(cache=True, error_model="numpy")
def slab_test(out: np.ndarray, depth: np.ndarray, colour: np.ndarray, rays: np.ndarray, origins: np.ndarray,
              place: np.ndarray, box: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
    """Slab-test the pixels of rows r0..r1-1 and columns c0..c1-1 of every camera against the box at `place`
    (x, y, yaw in the car frame); paint `colour` into `out` (H, W, C, K) and record the ray parameter in `depth`
    (C, H, W) where it is nearer than `depth` (ray parameter = distance along the optical axis).  `rays`
    (3+, C, H, W): every pixel's ray direction x, y, z in the car frame."""
    cr, sr = math.cos(place[2]), math.sin(place[2])
    half = (box[3] / 2, box[4] / 2, box[5] / 2)
    t_in, t_out = np.empty(max(c1 - c0, 0)), np.empty(max(c1 - c0, 0))
    for cam in range(origins.shape[0]):
        ox, oy, oz = origins[cam, 0] - place[0], origins[cam, 1] - place[1], origins[cam, 2] - box[5] / 2
        o = (cr * ox + sr * oy, -sr * ox + cr * oy, oz)  # the camera in the box's frame
        for r in range(r0, r1):
            _slab_row(rays[0, cam, r, c0:c1], rays[1, cam, r, c0:c1], rays[2, cam, r, c0:c1], cr, sr, o, half, t_in,
                      t_out)
            for c in range(c0, c1):
                t = t_in[c - c0]
                if t == t and t_out[c - c0] >= max(t, 0.0) and t < depth[cam, r, c]:
                    depth[cam, r, c] = t
                    _paint_run(out, r, c, c + 1, cam, colour)


@njit(cache=True, error_model="numpy")
def draw_boxes(out: np.ndarray, boxes: np.ndarray, colours: np.ndarray, x: float, y: float, yaw: float,
               to_planes: np.ndarray, to_cameras: np.ndarray, origins: np.ndarray, rays: np.ndarray, close: float,
               far: float, clip: float) -> None:
    """Paint the boxes (`colours` (B, K)) into the frames `out` (H, W, C, K) from the car pose (x, y, yaw), each
    pixel showing the nearest thing its ray meets (`box_views`'s arguments; `rays` (4, C, H, W): every
    pixel's ray direction x, y, z in the car frame and the ray parameter where it meets the floor).

    A box alone on its patch of screen, or among boxes of a known depth order, is filled row by row between the
    edges of its silhouette (painted far to near); a group of boxes on overlapping rectangles with no such order
    for every camera (boxes that intersect), or with a box a camera is in or nearly touches, is slab-tested
    pixel by pixel against a depth buffer."""
    index, place, rects, starts, spans, count = box_views(boxes, x, y, yaw, to_planes, to_cameras, origins, close,
                                                          far, clip, out.shape[1], out.shape[0])
    seq, label = overlap_groups(rects)
    depth = np.empty((0, 0, 0))
    first = 0
    while first < seq.shape[0]:
        last = first + 1
        while last < seq.shape[0] and label[seq[last]] == label[seq[first]]:
            last += 1
        group = seq[first:last]
        ordered, order = _back_to_front(group, boxes, index, place, rects, count, origins)
        if not ordered and depth.size == 0:
            depth = rays[3].copy()
        for v in order:
            r0, r1, c0, c1 = rects[v]
            if ordered:
                fill_silhouette(out, colours[index[v]], starts[v], spans[v], count[v], r0, r1, c0, c1)
            else:
                slab_test(out, depth, colours[index[v]], rays, origins, place[v], boxes[index[v]], r0, r1, c0, c1)
        first = last


# ---- the world's bodies (sim.world): `bodies` (B, 7) as `cast_rays` takes them -------------------------------
@njit(cache=True)
def set_poses(bodies: np.ndarray, rows: np.ndarray, poses: np.ndarray) -> None:
    """Write the x, y, yaw of each row of `poses` (its first columns) into row `rows[i]` of `bodies`."""
    for i in range(rows.shape[0]):
        r = rows[i]
        bodies[r, 0], bodies[r, 1], bodies[r, 2] = poses[i, 0], poses[i, 1], poses[i, 2]


@njit(cache=True)
def _projected_half(bodies: np.ndarray, b: int, ux: float, uy: float) -> float:
    """Half the length of body b's footprint projected on the unit axis (ux, uy)."""
    c, s = math.cos(bodies[b, 2]), math.sin(bodies[b, 2])
    return bodies[b, 3] * abs(c * ux + s * uy) + bodies[b, 4] * abs(c * uy - s * ux)


@njit(cache=True)
def rectangles_near(bodies: np.ndarray, me: int, others: np.ndarray, margin: float) -> np.ndarray:
    """Those of bodies `others` whose footprint rectangles no edge direction of either footprint separates from
    body me's by more than `margin` (m): the ones that may touch it (those farther apart cannot)."""
    out = np.empty(others.shape[0], np.intp)
    count = 0
    for j in range(others.shape[0]):
        b = others[j]
        dx, dy = bodies[b, 0] - bodies[me, 0], bodies[b, 1] - bodies[me, 1]
        apart = False
        for yaw in (bodies[me, 2], bodies[b, 2]):
            c, s = math.cos(yaw), math.sin(yaw)
            for ux, uy in ((c, s), (-s, c)):
                gap = abs(dx * ux + dy * uy) - _projected_half(bodies, me, ux, uy) - _projected_half(bodies, b, ux, uy)
                apart = apart or gap > margin
        if not apart:
            out[count] = b
            count += 1
    return out[:count]


# ---- bot cars (sim.bots): `bots` (B, 6), each bot's start arc length, travel (m driven from it), lane (+-1: the one
# it drives, or the one it leaves during a change), the travel at which its next (or current) lane change starts and
# at which its last finished one started, and the seconds it still stands still ----------------------------------
@njit(cache=True)
def bot_poses(table: np.ndarray, length: float, closed: bool, inner: int, bots: np.ndarray, span: float,
              step: float, out: np.ndarray) -> None:
    """Each bot's `path_pose` (x, y, yaw, offset; lane changes over `span` m, the yaw over +-`step` m) and its arc
    length in [0, length), into the rows of `out` (B, 5)."""
    for i in range(bots.shape[0]):
        s0 = bots[i, 0]
        s = s0 + bots[i, 1]
        x, y, yaw, offset = path_pose(table, length, closed, inner, s, int(bots[i, 2]), s0, bots[i, 4], bots[i, 3],
                                      span, step)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, yaw, offset, s % length


@njit(cache=True)
def move_bots(table: np.ndarray, length: float, closed: bool, inner: int, bots: np.ndarray, dt: float, speed: float,
              span: float, step: float, out: np.ndarray) -> bool:
    """Advance the bots `dt` seconds at `speed` (standing still while frozen, their freeze running down), then
    `bot_poses`; True when a bot has finished a lane change (its lane and next change, and then its pose, are
    the caller's to update)."""
    ended = False
    for i in range(bots.shape[0]):
        frozen = bots[i, 5]
        moving = dt - frozen
        left = frozen - dt
        bots[i, 5] = left if left > 0.0 else 0.0  # Python's max(0.0, left)
        bots[i, 1] += speed * (moving if moving > 0.0 else 0.0)
        ended = ended or bots[i, 1] >= bots[i, 3] + span
    bot_poses(table, length, closed, inner, bots, span, step, out)
    return ended


"""Compiled loops of the simulator's hot path (numba, no fastmath): pure functions over arrays.

Each step integrates the car's motion, projects its five body points on the centre line, tests them
against the road polygon and looks up the road width; sensors choose the LIDAR rays worth casting and fill
boxes' silhouettes on the camera screens.  These are loops over tens or hundreds of items for a handful of
points, where numpy's cost is the overhead of its calls.  The arithmetic is that of the numpy (or Python)
formulas they replace, operation for operation (no fused or reordered floating point), so that the results
are the same bits (tests/test_kernels.py keeps those formulas as references).
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
def _slab(p: float, d: float, half: float, lo: float, hi: float) -> tuple[float, float]:
    """The part of the ray parameter interval [lo, hi] where p + t d lies within [-half, half]."""
    if d == 0.0:
        return (lo, hi) if -half <= p <= half else (1.0, 0.0)
    t1, t2 = (-half - p) / d, (half - p) / d
    return max(lo, min(t1, t2)), min(hi, max(t1, t2))


@njit(cache=True)
def rays_meeting_boxes(ox: float, oy: float, angles: np.ndarray, boxes: np.ndarray, reach: float) -> np.ndarray:
    """Whether each ray from (ox, oy) at world angle `angles[i]` (rad), `reach` long, meets one of the
    floor rectangles `boxes` (B, 5): centre x, y, yaw (rad), half length and half width."""
    out = np.zeros(angles.shape[0], np.bool_)
    for b in range(boxes.shape[0]):
        x, y, yaw, half_l, half_w = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3], boxes[b, 4]
        c, s = math.cos(yaw), math.sin(yaw)
        px, py = c * (ox - x) + s * (oy - y), -s * (ox - x) + c * (oy - y)  # the origin in the box's frame
        for i in range(angles.shape[0]):
            if not out[i]:
                a = angles[i] - yaw
                lo, hi = _slab(px, math.cos(a), half_l, 0.0, reach)
                lo, hi = _slab(py, math.sin(a), half_w, lo, hi)
                out[i] = lo <= hi
    return out


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

"""Track geometry: DeepRacer `.npy` I/O, validation and exact projection.

A track is a centre line with a left and a right border (relative to the driving
direction).  DeepRacer's `.npy` files hold (N, 6) rows of centre x, y, inner border x, y,
outer border x, y in metres; loops repeat the first row at the end.  A file is read from its
header without unpickling; tracks over MAX_EXTENT across or MAX_WAYPOINTS long, and open roads
unless asked for, are refused before anything is sized from them.

The road is the reference simulator's (simapp `track_data.py`): the polygon between the two
border polylines (for an open road, one border followed by the other reversed), whatever the
direction of a row's inner-to-outer line: community tracks such as `Tokyo_Training_track` skew
their rows far along the road.  The width at a point of the centre line is simapp's
`track_width`: the distance between the nearest points of the two borders to that point.

`Track.project` finds the exact nearest centre-line segment of each point (the lowest index on
a tie), as a search over every segment would.  Given a hint, the segment the point had a step
ago, it searches only a window of segments round the hint and proves the answer with a
precomputed clearance: O(1) per point.  A point it cannot prove (it jumped, or lies far off the
road) is searched over every segment.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.lib import format as npformat

from sim import kernels
from sim.errors import InputError

MIN_WIDTH = 0.30  # m: narrower than this a 0.196 m car cannot stay on the road
MAX_EXTENT = 60.0  # m across: DeepRacer's tracks fit in a room (the bundled 60 m long `pro` is 18 m across);
# the camera's floor texture is sized from the extent (about 1 GB per env at this limit)
MAX_WAYPOINTS = 5000  # DeepRacer's tracks have a few hundred
_DENSE_STEP = 0.01  # m between the centre-line samples of the border distances
_LOCAL_REACH = 1.6  # m of centre line each side of a segment left out of its clearance (which it bounds)
_LOCAL_SLACK = 0.5  # m a point may move along the track from its hint and still be proved in the window
_CLEARANCE_CAP = 3.0  # m: clearances are computed up to this; a proof covers points up to half of it off
_MARGIN = 1e-9  # m kept off every proof, against rounding
_JUMP_HALVINGS = 8  # a jump of a border's nearest point is narrowed to 1 cm / 2**8 (40 um) of centre line
_PAIR_BLOCK = 1 << 18  # segment-segment pairs computed at once (bounds the memory)
_CROSSING_BLOCK = 256  # segments tested at once against all others for crossings (bounds the memory)
_NO_WINDOWS = (np.empty((0, 0), dtype=np.intp), np.empty((0, 0)))  # `nearest_segments` without windows
_NO_HINT = np.zeros(1, dtype=np.intp)
_NPY_HEADERS = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}


class TrackError(InputError, ValueError):
    """A track file or definition that cannot be used, with the reason and the place."""


@dataclass(frozen=True, eq=False)
class Projection:
    """Points projected on the centre line (arrays, one entry per point).

    The border distances, the width and `on_road` are worked out on first use.
    """

    s: np.ndarray  # arc length of the foot point from waypoint 0, m
    offset: np.ndarray  # signed distance to the centre line, + = left of the driving direction, m
    segment: np.ndarray  # index of the nearest centre-line segment (the hint for the next step's projection)
    points: np.ndarray  # the projected points, (M, 2)
    track: Track = field(repr=False)

    @property
    def distance(self) -> np.ndarray:
        """Distance to the centre line, m."""
        return np.abs(self.offset)

    @cached_property
    def half_left(self) -> np.ndarray:
        """Distance from the foot point to the nearest point of the left border, m."""
        return self.track._border_profile(self.s, 0)

    @cached_property
    def half_right(self) -> np.ndarray:
        """Distance from the foot point to the nearest point of the right border, m."""
        return self.track._border_profile(self.s, 1)

    @cached_property
    def width(self) -> np.ndarray:
        """Road width at the foot point as DeepRacer's `track_width`: the distance between the nearest points
        of the inner and the outer border, m."""
        return self.track._border_profile(self.s, 2)

    @cached_property
    def on_road(self) -> np.ndarray:
        """True where the point lies inside the road polygon."""
        return self.track._on_road(self.points, self.segment, self.offset)

    def __getitem__(self, index) -> Projection:
        """The projection of some of the points (arrays still: `proj[0]` holds one point)."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Projection(self.s[index], self.offset[index], self.segment[index], self.points[index], self.track)


class Location(NamedTuple):
    """A car's body points on the track (`Track.locate`): the first point's projection, and which points
    are on the road."""

    s: float  # arc length of the first point's foot from waypoint 0, m
    offset: float  # its signed distance to the centre line, + = left, m
    segment: int  # its centre-line segment
    width: float  # the road width there (`Projection.width`), m
    on_road: list[bool]  # whether each point lies inside the road polygon


class _Polyline:
    """The segments of a polyline (a loop's last point repeats its first), searched for the nearest one
    to points: over every segment, or round a hint in O(1) (see `Track.project`)."""

    def __init__(self, points: np.ndarray, closed: bool) -> None:
        self.points, self.closed = points, closed
        self.table = _segment_table(points)
        self.n = self.table.shape[1]
        self._windows: tuple[np.ndarray, np.ndarray] | None | bool = False  # False: not built yet

    def nearest(self, pts: np.ndarray, hint: int | np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Nearest segment of each point (M, 2) (the lowest index on a tie): index, squared distance, foot
        (m along the segment) and side (+ left); the same whatever the hint."""
        return kernels.nearest_segments(pts, self.table, *self.search(hint), self.closed, True)[:4]

    def near_hint(self, pts: np.ndarray, hint, index: np.ndarray, proof: np.ndarray) -> tuple[np.ndarray, ...]:
        """`nearest` among the segments of the window round the hint (one per point, or one for all), and
        whether each answer is proved to be the nearest of all segments (`windows`)."""
        hints = np.array(hint, dtype=np.intp, ndmin=1)
        return kernels.nearest_segments(pts, self.table, index, proof, hints, self.closed, False)

    def search(self, hint: int | np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The windows and the hints (one, or one per point) that the kernels search with: no windows (a
        search over every segment) without a hint or for a short polyline."""
        windows = None if hint is None else self.windows()
        if windows is None:
            return *_NO_WINDOWS, _NO_HINT
        return *windows, np.array(hint, dtype=np.intp, ndmin=1)

    def windows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """For every hint h, the segments round it in index order (each window sorted, so that ties go to
        the lowest index as in a search over all): their indices (n, K), and the squared distance under which
        the window proves a point nearest to each of them (n, K; -1 where it cannot).  None for a polyline so
        short that the windows would hold a quarter of its segments or more."""
        if self._windows is False:
            n = self.n
            step = float(np.median(self.table[4]))
            reach, slack = math.ceil(_LOCAL_REACH / step), math.ceil(_LOCAL_SLACK / step)
            wide = reach + slack
            self._windows = None
            if 4 * (2 * wide + 1) < n:  # else a search over every segment costs about as much
                hint = np.arange(n)[:, None]
                index = hint + np.arange(-wide, wide + 1)
                if self.closed:
                    index = np.sort(index % n, axis=1)
                    apart = np.abs(index - hint)
                    apart = np.minimum(apart, n - apart)
                else:
                    index = np.clip(index, 0, n - 1)
                    apart = np.abs(index - hint)
                half = (self._clearance(reach)[index] - _MARGIN) / 2
                # the nearest segment k of a point p is proved when the window holds every segment within
                # `reach` indices of k (k is within `slack` of the hint) and p is nearer to k than half
                # k's clearance (the distance from k to any segment farther in index): by the triangle
                # inequality every segment outside the window is then farther from p than k is
                proof = np.where((apart <= slack) & (half > 0), half * half, -1.0)
                self._windows = (np.ascontiguousarray(index, dtype=np.intp), proof)
        return self._windows

    def _clearance(self, reach: int) -> np.ndarray:
        """Distance from each segment to the nearest segment more than `reach` indices away (round the
        loop when closed), at most _CLEARANCE_CAP."""
        n = self.n

        def near(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            apart = np.abs(i - j)
            return (np.minimum(apart, n - apart) if self.closed else apart) <= reach
        p = self.points
        return _least_gaps(p[:-1], p[1:], p[:-1], p[1:], _CLEARANCE_CAP, near)


@dataclass(frozen=True, eq=False)
class Track:
    """A closed (or open) track; borders are on the left/right of the driving direction."""

    name: str
    center: np.ndarray  # (N, 2); for loops the last row equals the first
    left: np.ndarray  # (N, 2)
    right: np.ndarray  # (N, 2)
    closed: bool = True
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = _segment_table(self.center)
        seg = np.diff(self.center, axis=0)
        length = table[4]
        self._cache.update(seg=seg, seg_len=length, unit=table[2:4].T, normal=np.stack([-table[3], table[2]], axis=1),
                           cum=np.append(table[5], table[5, -1] + length[-1]), line=_Polyline(self.center, self.closed))

    # ---- basic quantities -------------------------------------------------------------
    @property
    def length(self) -> float:
        """Length of the centre line, m."""
        return float(self._cache["cum"][-1])

    @property
    def n_segments(self) -> int:
        return len(self._cache["seg_len"])

    @property
    def waypoint_s(self) -> np.ndarray:
        """Arc length of every waypoint, m."""
        return self._cache["cum"]

    @property
    def widths(self) -> np.ndarray:
        """Road width of every row: the distance between its inner and outer border points, m."""
        return np.hypot(*(self.left - self.right).T)

    def reversed(self) -> Track:
        """The same road driven the other way round (waypoints reversed, sides swapped)."""
        return Track(self.name, self.center[::-1].copy(), self.right[::-1].copy(),
                     self.left[::-1].copy(), self.closed)

    # ---- projection -------------------------------------------------------------------
    def project(self, points: np.ndarray, hint: int | np.ndarray | None = None) -> Projection:
        """Project (M, 2) points onto the centre line: the nearest segment (the lowest index on a tie), the
        exact foot point.

        `hint` (a segment index, or one per point), normally the `segment` of the same point's projection a
        step ago, makes the search O(1) per point; any hint gives exactly the result of the search without
        one, a wrong hint only costs time.
        """
        pts = np.ascontiguousarray(np.reshape(points, (-1, 2)), dtype=float)
        d = self._cache
        k, d2, foot, side = d["line"].nearest(pts, hint)
        return Projection(d["cum"][k] + foot, np.copysign(np.sqrt(d2), side), k, pts, self)

    def on_road(self, points: np.ndarray, proj: Projection | None = None) -> np.ndarray:
        """True for each point that lies on the road (inside the road polygon)."""
        proj = self.project(points) if proj is None else proj
        return proj.on_road

    def road_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The road polygon's boundary as edges (starts, ends; (E, 2) each): the left and the right border
        (rings on a loop; on an open road joined by the end rows)."""
        d = self._cache
        if "edges" not in d:
            left, right = _ring(self.left, self.closed), _ring(self.right, self.closed)
            starts, ends = [left[:-1], right[:-1]], [left[1:], right[1:]]
            if not self.closed:
                starts += [left[-1:], right[:1]]
                ends += [right[-1:], left[:1]]
            d["edges"] = (np.concatenate(starts), np.concatenate(ends))
        return d["edges"]

    def locate(self, points: np.ndarray, hint: int | None = None) -> Location:
        """A car's body points (M, 2) in one compiled pass: the projection of the first one (its arc length,
        offset, segment and road width, exactly those of `project(points)[0]`) and `on_road` of each."""
        line = self._cache["line"]
        at, profile = self._border_table()
        pts = np.ascontiguousarray(points, dtype=float)
        s, offset, segment, width, on = kernels.locate(pts, line.table, *line.search(hint), self.closed,
                                                       *self._road_safety(), at, profile[2])
        if math.isnan(width):  # at a jump of a border's nearest point
            width = float(self._border_profile(np.array([s]), 2)[0])
        return Location(s, offset, segment, width, on.tolist())

    def _on_road(self, points: np.ndarray, segment: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Whether each point is inside the road polygon: proved from its projection when it is nearer to
        its centre-line segment than any border is (it is then on the same side of every border as that
        segment), else by a crossing count over the whole boundary."""
        return kernels.on_road(points, segment, offset, *self._road_safety())

    def _road_safety(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For `kernels.on_road`: each centre-line segment's squared distance to the nearest border (-1 where
        they touch), whether the segment is inside the road, and the road's `_crossing_table`."""
        d = self._cache
        if "road_safety" not in d:
            c0, c1 = self.center[:-1], self.center[1:]
            starts, ends = self.road_edges()
            safe = _least_gaps(c0, c1, starts, ends, _CLEARANCE_CAP) - _MARGIN
            crossing = _crossing_table(starts, ends)
            inside = kernels.inside_polygon(0.5 * (c0 + c1), crossing)
            d["road_safety"] = (np.where(safe > 0, safe * safe, -1.0), inside, crossing)
        return d["road_safety"]

    def _border_profile(self, s: np.ndarray, column: int) -> np.ndarray:
        """At arc length(s) `s`: the distance from the centre line to the nearest point of the left
        (column 0) or the right border (1), or between those two points (2, DeepRacer's `track_width`);
        interpolated from `_border_samples`, worked out anew where a border's nearest point jumps."""
        at, profile = self._border_table()
        s = np.ascontiguousarray(s, dtype=float)
        out = kernels.interp(s, at, profile[column])
        hard = np.isnan(out)
        if hard.any():
            out[hard] = _border_columns(*_sampled(self, s[hard])[1:4])[column]
        return out

    def _border_table(self) -> tuple[np.ndarray, np.ndarray]:
        """`_border_samples`, worked out on first use."""
        d = self._cache
        if "borders" not in d:
            d["borders"] = _border_samples(self)
        return d["borders"]

    def _borders(self) -> list[tuple[_Polyline, np.ndarray]]:
        """The left and the right border (a loop's rings closed), each with the nearest of its segments to
        every centre-line waypoint (the hint for points of the centre line)."""
        d = self._cache
        if "border_lines" not in d:
            lines = [_Polyline(_ring(b, self.closed), self.closed) for b in (self.left, self.right)]
            d["border_lines"] = [(line, line.nearest(self.center[:-1])[0]) for line in lines]
        return d["border_lines"]

    def point_at(self, s: float | np.ndarray, offset: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """World point(s) at arc length `s` and lateral `offset`, and the heading there (rad)."""
        d = self._cache
        s = np.mod(s, self.length) if self.closed else np.clip(s, 0, self.length)
        k = np.clip(np.searchsorted(d["cum"], s, side="right") - 1, 0, self.n_segments - 1)
        t = (s - d["cum"][k]) / d["seg_len"][k]
        p = self.center[k] + d["seg"][k] * np.asarray(t)[..., None] + d["normal"][k] * np.asarray(offset)[..., None]
        heading = np.arctan2(d["unit"][k, 1], d["unit"][k, 0])
        return p, heading

    def closest_waypoints(self, where: Projection | int) -> tuple[int, int]:
        """[previous, next] waypoint indices around the first projected point (by arc length), or round a
        point on centre-line segment `where`."""
        k = int(where.segment[0]) if isinstance(where, Projection) else int(where)
        nxt = k + 1
        if self.closed and nxt == len(self.center) - 1:
            nxt = 0
        return k, nxt

    def curvature(self) -> np.ndarray:
        """Unsigned curvature at every waypoint (1/m), from the turning of adjacent segments."""
        d = self._cache
        if "curvature" in d:
            return d["curvature"]
        ang = np.arctan2(d["unit"][:, 1], d["unit"][:, 0])
        if self.closed:
            turn = np.diff(np.concatenate([ang[-1:], ang]))
            seg_mean = 0.5 * (d["seg_len"] + np.roll(d["seg_len"], 1))
        else:
            turn = np.concatenate([[0.0], np.diff(ang)])
            seg_mean = np.concatenate([[d["seg_len"][0]], 0.5 * (d["seg_len"][1:] + d["seg_len"][:-1])])
        turn = (turn + np.pi) % (2 * np.pi) - np.pi
        kappa = np.abs(turn) / seg_mean
        d["curvature"] = np.append(kappa, kappa[0] if self.closed else kappa[-1])
        return d["curvature"]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the borders."""
        pts = np.concatenate([self.left, self.right])
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    # ---- DeepRacer .npy ---------------------------------------------------------------
    def to_array(self) -> np.ndarray:
        """The DeepRacer (N, 6) array: centre, inner border, outer border."""
        inner, outer = (self.left, self.right) if _signed_area(self.center) >= 0 else (self.right, self.left)
        return np.concatenate([self.center, inner, outer], axis=1)

    def save(self, path: str | Path) -> None:
        np.save(Path(path), self.to_array())


# ---- segment geometry (elementwise, so that a pair gets the same bits in any batch) ---------------
def _segment_table(line: np.ndarray) -> np.ndarray:
    """(6, n) rows for the n segments of a polyline: start x, y, unit direction x, y, length, and arc
    length at the start.  A segment of length 0 gets the direction +x (its distance is then that to its
    point)."""
    seg = np.diff(line, axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    unit = np.where((length > 0)[:, None], seg / np.where(length > 0, length, 1.0)[:, None], (1.0, 0.0))
    cum = np.concatenate([[0.0], np.cumsum(length)[:-1]])
    return np.stack([line[:-1, 0], line[:-1, 1], unit[:, 0], unit[:, 1], length, cum])


def _border_nearest(pts: np.ndarray, line: _Polyline, hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest point of a border to each of the points (M, 2), and which part of the border it is on:
    2 v for its vertex v, 2 e + 1 inside its edge e."""
    j, _, foot, _ = line.nearest(pts, hint)
    table = line.table
    vertex = np.where(foot <= 0.0, j, np.where(foot >= table[4, j], j + 1, -1))
    code = np.where(vertex >= 0, 2 * (vertex % (line.n + (0 if line.closed else 1))), 2 * j + 1)
    return table[0:2, j].T + table[2:4, j].T * foot[:, None], code


def _border_columns(foot: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(3, M): distance from each point to its nearest left and right border point, and between those."""
    return np.stack([np.hypot(*(foot - left).T), np.hypot(*(foot - right).T), np.hypot(*(left - right).T)])


def _border_samples(track: Track) -> tuple[np.ndarray, np.ndarray]:
    """Arc lengths along the centre line and `_border_columns` there (3, S), exact at every sample.

    Samples: every _DENSE_STEP m and every waypoint, plus every point where a border's nearest point
    reaches or leaves a border vertex; between two samples each nearest point then moves linearly with
    the foot point, so that the columns (lengths of linear vectors) are linear to within 2e-5 m.  Where a
    nearest point jumps (at every vertex of a border on the outside of a bend: from one edge to the
    next, past their corner), the two samples round the jump are brought within 1 cm / 2**_JUMP_HALVINGS
    of each other, and a NaN between them makes np.interp answer NaN there."""
    d = track._cache
    length = d["seg_len"]
    count = np.maximum(1, np.ceil(length / _DENSE_STEP).astype(np.intp))
    k = np.repeat(np.arange(track.n_segments), count)
    frac = (np.arange(len(k)) - np.repeat(np.cumsum(count) - count, count)) / count[k]
    at = np.append(d["cum"][k] + length[k] * frac, track.length)
    samples = _sampled(track, at)
    foot, codes = samples[1], samples[4:]
    kinks = []
    for (line, _), code in zip(track._borders(), codes):  # where the foot crosses the normal at an edge's end
        table, n = line.table, line.n
        j = code // 2  # the nearest edge, or the edge after the nearest vertex
        e = np.concatenate([j[:-1, None], j[1:, None]], axis=1)[:, :, None] + np.arange(-2, 2)
        e = (e % n if track.closed else np.clip(e, 0, n - 1)).reshape(len(j) - 1, -1)
        a, b = foot[:-1, None], foot[1:, None]
        pa = (a[..., 0] - table[0, e]) * table[2, e] + (a[..., 1] - table[1, e]) * table[3, e]
        pb = (b[..., 0] - table[0, e]) * table[2, e] + (b[..., 1] - table[1, e]) * table[3, e]
        for end in (0.0, table[4, e]):
            with np.errstate(divide="ignore", invalid="ignore"):
                lam = (end - pa) / (pb - pa)
            i, c = np.nonzero((lam > 0) & (lam < 1))
            kinks.append(at[i] + lam[i, c] * (at[i + 1] - at[i]))
    samples = _merge(samples, _sampled(track, np.concatenate(kinks)))
    at, codes = samples[0], samples[4:]
    i = np.flatnonzero(~_continuous(track, [c[:-1] for c in codes], [c[1:] for c in codes]))
    lo, hi = at[i], at[i + 1]
    code_lo, code_hi = [c[i] for c in codes], [c[i + 1] for c in codes]
    for _ in range(_JUMP_HALVINGS):  # keep the half that holds the jump
        mid = 0.5 * (lo + hi)
        code_mid = _sampled(track, mid)[4:]
        before = _continuous(track, code_lo, code_mid)
        after = _continuous(track, code_mid, code_hi)
        up, down = before & ~after, after & ~before
        lo, hi = np.where(up, mid, lo), np.where(down, mid, hi)
        code_lo = [np.where(up, m, c) for m, c in zip(code_mid, code_lo)]
        code_hi = [np.where(down, m, c) for m, c in zip(code_mid, code_hi)]
    at, foot, left, right, *codes = _merge(samples, _sampled(track, np.concatenate([lo, hi])))
    mid = np.flatnonzero(~_continuous(track, [c[:-1] for c in codes], [c[1:] for c in codes]))
    return (np.insert(at, mid + 1, 0.5 * (at[mid] + at[mid + 1])),
            np.insert(_border_columns(foot, left, right), mid + 1, np.nan, axis=1))


def _sampled(track: Track, at: np.ndarray) -> list[np.ndarray]:
    """At arc lengths `at`: [at, foot points, nearest left and right border points, their codes]."""
    foot = track.point_at(at)[0].reshape(-1, 2)
    k = np.clip(np.searchsorted(track.waypoint_s, np.reshape(at, -1), side="right") - 1, 0, track.n_segments - 1)
    (left, code_l), (right, code_r) = (_border_nearest(foot, line, hint[k]) for line, hint in track._borders())
    return [at, foot, left, right, code_l, code_r]


def _merge(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    """Two `_sampled` results as one, in order of arc length, each arc length once."""
    at, keep = np.unique(np.concatenate([a[0], b[0]]), return_index=True)
    return [at] + [np.concatenate([x, y])[keep] for x, y in zip(a[1:], b[1:])]


def _continuous(track: Track, a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Whether both borders' nearest points move without a jump between samples coded `a` and `b` (per
    border, `_border_nearest`'s codes): they stay on the same part of the border, or go from an edge to
    one of its ends."""
    out = np.ones(len(a[0]), dtype=bool)
    for (line, _), ca, cb in zip(track._borders(), a, b):
        n = line.n
        edge, vertex = np.where(ca % 2 == 1, ca, cb) // 2, np.where(ca % 2 == 1, cb, ca) // 2
        ends = (vertex == edge) | (vertex == ((edge + 1) % n if track.closed else edge + 1))
        out &= (ca == cb) | ((ca % 2 != cb % 2) & ends)
    return out


def _ring(line: np.ndarray, closed: bool) -> np.ndarray:
    """The polyline of a border: a loop's ends up to its start."""
    return np.concatenate([line, line[:1]]) if closed and not np.array_equal(line[0], line[-1]) else line


def _point_segment_gaps(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab, ap = b - a, p - a
    den = np.einsum("ij,ij->i", ab, ab)
    t = np.clip(np.einsum("ij,ij->i", ap, ab) / np.where(den > 0, den, 1.0), 0.0, 1.0)
    rest = ap - ab * t[:, None]
    return np.hypot(rest[:, 0], rest[:, 1])


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _segment_gaps(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distance between segments p0-p1 and q0-q1 (pairwise over the rows), 0 where they cross."""
    gap = np.minimum(np.minimum(_point_segment_gaps(p0, q0, q1), _point_segment_gaps(p1, q0, q1)),
                     np.minimum(_point_segment_gaps(q0, p0, p1), _point_segment_gaps(q1, p0, p1)))
    dp, dq = p1 - p0, q1 - q0
    crossing = (_cross(dp, q0 - p0) * _cross(dp, q1 - p0) < 0) & (_cross(dq, p0 - q0) * _cross(dq, p1 - q0) < 0)
    return np.where(crossing, 0.0, gap)


def _least_gaps(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray, cap: float,
                skip=None) -> np.ndarray:
    """For each segment a0[i]-a1[i]: the distance to the nearest segment b0[j]-b1[j], at most `cap`,
    leaving out the pairs where skip(i, j) ((B, 1) and (1, J) index arrays) is True."""
    out = np.full(len(a0), float(cap))
    mid_a, mid_b = 0.5 * (a0 + a1), 0.5 * (b0 + b1)
    rad_a, rad_b = 0.5 * np.hypot(*(a1 - a0).T), 0.5 * np.hypot(*(b1 - b0).T)
    j = np.arange(len(b0))[None, :]
    step = max(1, _PAIR_BLOCK // len(b0))
    for lo in range(0, len(a0), step):
        i = np.arange(lo, min(lo + step, len(a0)))[:, None]
        # segments whose bounding circles are `cap` apart are farther than that: only the others are measured
        near = np.hypot(mid_a[i, 0] - mid_b[j, 0], mid_a[i, 1] - mid_b[j, 1]) - rad_a[i] - rad_b[j] < cap
        if skip is not None:
            near &= ~skip(i, j)
        ii, jj = np.nonzero(near)
        ii += lo
        np.minimum.at(out, ii, _segment_gaps(a0[ii], a1[ii], b0[jj], b1[jj]))
    return out


def _crossing_table(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(4, E) rows for `kernels.inside_polygon`: each edge's start x, y, end y, and dx / dy (0 for a level edge)."""
    dx, dy = (ends - starts).T
    return np.stack([starts[:, 0], starts[:, 1], ends[:, 1], dx / np.where(dy != 0, dy, np.inf)])


def vertex_normals(line: np.ndarray, closed: bool) -> np.ndarray:
    """Unit left normals at the points of a polyline: the mean of the adjacent segments'."""
    seg = np.diff(line, axis=0)
    seg = seg / np.linalg.norm(seg, axis=1, keepdims=True)
    seg_normal = np.stack([-seg[:, 1], seg[:, 0]], axis=1)
    prev = np.concatenate([seg_normal[-1:] if closed else seg_normal[:1], seg_normal])
    nxt = np.concatenate([seg_normal, seg_normal[:1] if closed else seg_normal[-1:]])
    n = prev + nxt
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _signed_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def from_array(arr: np.ndarray, name: str = "track", where: str = "<array>", allow_open: bool = False) -> Track:
    """Build a validated Track from a DeepRacer (N, 6) array (centre, inner, outer).

    A loop's last waypoint returns to (or near) its first; an open road is refused unless
    `allow_open`.
    """
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise TrackError(f"{where}: expected an (N, 6) array of centre, inner and outer border "
                         f"x/y columns, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise TrackError(f"{where}: expected numbers, got dtype {arr.dtype}")
    if len(arr) > MAX_WAYPOINTS:
        raise TrackError(f"{where}: {len(arr)} waypoints; a track has at most {MAX_WAYPOINTS} "
                         f"(DeepRacer's have a few hundred): resample the centre line")
    arr = arr.astype(float)
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        r, c = bad[0]
        raise TrackError(f"{where}: row {r}, column {c} is {arr[r, c]} (NaN or infinite)")
    keep = np.ones(len(arr), dtype=bool)
    keep[1:] = np.hypot(*np.diff(arr[:, :2], axis=0).T) > 1e-9
    arr, rows = arr[keep], np.flatnonzero(keep)  # rows: the file's row of each waypoint
    if len(arr) < 4:
        raise TrackError(f"{where}: a track needs at least 4 distinct centre-line points, got {len(arr)}")
    _check_extent(arr.reshape(-1, 2), where)
    seg_len = np.hypot(*np.diff(arr[:, :2], axis=0).T)
    gap = float(np.hypot(*(arr[-1, :2] - arr[0, :2])))
    closed = gap < max(0.05, 1.5 * float(np.median(seg_len)))
    if not closed and not allow_open:
        raise TrackError(f"{where}: the track is open: its first and last waypoints are {gap:.2f} m apart, "
                         f"while a loop's last waypoint returns to its first; races are laps, so close the "
                         f"loop (`racer tracks show --open-track` shows an open road as it is)")
    if closed and gap > 1e-9:
        arr = np.concatenate([arr, arr[:1]])
    elif closed:
        arr[-1] = arr[0]
    center, inner, outer = arr[:, 0:2], arr[:, 2:4], arr[:, 4:6]
    _check_self_crossing(center, closed, where)
    widths = np.hypot(*(inner - outer).T)  # a row's width, whatever its direction (DeepRacer's road polygon)
    narrow = int(np.argmin(widths))
    if widths[narrow] < MIN_WIDTH:
        raise TrackError(f"{where}: the road is only {widths[narrow]:.3f} m wide at row {rows[narrow % len(rows)]} "
                         f"(centre {center[narrow, 0]:.2f}, {center[narrow, 1]:.2f}): its inner and outer border "
                         f"points are that close; at least {MIN_WIDTH} m is needed")
    # inner is on the left of a counter-clockwise loop
    ccw = _signed_area(center) >= 0 if closed else _side(center, inner) > 0
    left, right = (inner, outer) if ccw else (outer, inner)
    return Track(name, center, left, right, closed)


def _check_extent(points: np.ndarray, where: str) -> None:
    """Refuse a track wider or taller than MAX_EXTENT: wrong units, or a wild coordinate."""
    extent = float(np.max(points.max(axis=0) - points.min(axis=0)))
    if extent > MAX_EXTENT:
        raise TrackError(f"{where}: the track is {extent:.0f} m across, and at most {MAX_EXTENT:g} m is "
                         f"allowed; DeepRacer tracks are in metres and fit in a room (is it in "
                         f"centimetres? divide by 100), or one coordinate is far off")


def _side(center: np.ndarray, border: np.ndarray) -> float:
    seg = np.diff(center, axis=0)
    rel = border[:-1] - center[:-1]
    return float(np.sum(seg[:, 0] * rel[:, 1] - seg[:, 1] * rel[:, 0]))


def _check_self_crossing(center: np.ndarray, closed: bool, where: str) -> None:
    """Refuse a centre line whose non-adjacent segments intersect."""
    a, d = center[:-1], np.diff(center, axis=0)
    n = len(a)
    j = np.arange(n)[None, :]

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    for lo in range(0, n, _CROSSING_BLOCK):  # pairwise orientation tests, a block of rows at a time
        i = np.arange(lo, min(lo + _CROSSING_BLOCK, n))[:, None]
        di = d[i]
        denom = cross(di, d[None])
        rel = a[None] - a[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = cross(rel, d[None]) / denom
            u = cross(rel, di) / denom
        hit = (np.abs(denom) > 1e-12) & (t > -1e-9) & (t < 1 + 1e-9) & (u > -1e-9) & (u < 1 + 1e-9)
        hit &= j > i + 1  # each pair once, neighbours share a point
        if closed:
            hit &= ~((i == 0) & (j == n - 1))  # the first and last segments meet at waypoint 0
        if hit.any():
            r, c = np.argwhere(hit)[0]
            k = lo + r
            p = a[k] + d[k] * t[r, c]
            raise TrackError(f"{where}: the centre line crosses itself: segment {k}->{k + 1} meets "
                             f"segment {c}->{c + 1} at ({p[0]:.2f}, {p[1]:.2f})")


def from_centerline(center: np.ndarray, width: float | np.ndarray, name: str = "track",
                    closed: bool = True) -> Track:
    """Build a track from a centre line (closing point optional) and a road width."""
    c = np.asarray(center, dtype=float)
    w = np.asarray(width, dtype=float)
    if closed and np.hypot(*(c[-1] - c[0])) > 1e-9:
        c = np.concatenate([c, c[:1]])
        w = np.append(w, w[:1]) if w.ndim == 1 and len(w) == len(c) - 1 else w  # per-point widths close too
    normal = vertex_normals(c, closed)
    half = np.broadcast_to(w / 2, (len(c),))[:, None]
    left, right = c + normal * half, c - normal * half
    if closed:
        left[-1], right[-1] = left[0], right[0]
    inner, outer = (left, right) if _signed_area(c) >= 0 or not closed else (right, left)
    return from_array(np.concatenate([c, inner, outer], axis=1), name=name, allow_open=not closed)


TRACK_DIR = Path(__file__).parent / "tracks"


def bundled_names() -> list[str]:
    """Names of the tracks shipped with the package."""
    return sorted(p.stem for p in TRACK_DIR.glob("*.npy"))


def load(name_or_path: str | Path, allow_open: bool = False) -> Track:
    """Load a bundled track by name, or a DeepRacer `.npy` file by path (an open road only if `allow_open`)."""
    p = Path(name_or_path)
    if not p.suffix and (TRACK_DIR / f"{p.name}.npy").exists():
        p = TRACK_DIR / f"{p.name}.npy"
    if not p.exists():
        raise TrackError(f"no track named {str(name_or_path)!r}: not a file, and the bundled tracks "
                         f"are {', '.join(bundled_names())}")
    try:
        arr = _read_npy(p)
    except OSError as exc:
        raise TrackError(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    return from_array(arr, name=p.stem, where=str(p), allow_open=allow_open)


def _read_npy(p: Path) -> np.ndarray:
    """The array of a `.npy` file, checked against its header before the data is read.

    Never unpickles: a file of Python objects is refused, not loaded.
    """
    what = "a track is a DeepRacer .npy file of (N, 6) waypoints"
    with p.open("rb") as f:
        if p.stat().st_size == 0:
            raise TrackError(f"{p}: the file is empty; {what}")
        try:
            reader = _NPY_HEADERS.get(npformat.read_magic(f))
        except ValueError:
            raise TrackError(f"{p}: not a NumPy .npy file (it lacks the .npy signature); {what}") from None
        if reader is None:
            raise TrackError(f"{p}: an unsupported .npy format version; save the array with numpy.save")
        try:
            shape, fortran_order, dtype = reader(f)
        except ValueError as exc:
            raise TrackError(f"{p}: truncated or damaged .npy header ({exc})") from None
        if dtype.hasobject:
            raise TrackError(f"{p}: holds Python objects (dtype {dtype}), which are never loaded since "
                             f"loading them can run code; {what}")
        count = math.prod(shape)
        if count > 6 * MAX_WAYPOINTS:
            raise TrackError(f"{p}: holds {count} values; a track has at most {MAX_WAYPOINTS} waypoints of 6")
        nbytes = count * dtype.itemsize
        data = f.read(nbytes)
    if len(data) < nbytes:
        raise TrackError(f"{p}: truncated: the header announces {count} {dtype} values ({nbytes} bytes) "
                         f"but {len(data)} bytes follow")
    try:
        return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran_order else "C")
    except ValueError as exc:
        raise TrackError(f"{p}: unreadable .npy data ({exc}); {what}") from None

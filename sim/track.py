"""Track geometry: DeepRacer `.npy` I/O, validation and vectorised projection.

A track is a centre line with a left and a right border (relative to the driving
direction).  DeepRacer's `.npy` files hold (N, 6) rows of centre x, y, inner border x, y,
outer border x, y in metres; loops repeat the first row at the end.  A file is read from its
header without unpickling; tracks over MAX_EXTENT across or MAX_WAYPOINTS long, and open roads
unless asked for, are refused before anything is sized from them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat
from scipy.spatial import cKDTree

from sim.errors import InputError

MIN_WIDTH = 0.30  # m: narrower than this a 0.196 m car cannot stay on the road
MAX_EXTENT = 60.0  # m across: DeepRacer's tracks fit in a room (the bundled 60 m long `pro` is 18 m across);
# the camera's floor texture is sized from the extent (about 1 GB per env at this limit)
MAX_WAYPOINTS = 5000  # DeepRacer's tracks have a few hundred
_DENSE_STEP = 0.01  # m between the samples of the projection index
_RASTER_RES = 0.025  # m per cell of the nearest-segment raster
_RASTER_MARGIN = 1.5  # m of raster round the borders
_RASTER_MAX_CELLS = 4_000_000  # 16 MB, a track about 50 m across; a larger one asks the k-d tree
_CANDIDATES = np.array([-1, 0, 1])  # segments round the raster's guess that are tested
_CROSSING_BLOCK = 256  # segments tested at once against all others for crossings (bounds the memory)
_NPY_HEADERS = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}


class TrackError(InputError, ValueError):
    """A track file or definition that cannot be used, with the reason and the place."""


@dataclass(frozen=True)
class Projection:
    """Points projected on the centre line (arrays, one entry per point)."""

    s: np.ndarray  # arc length of the foot point from waypoint 0, m
    offset: np.ndarray  # signed lateral distance, + = left of the driving direction, m
    segment: np.ndarray  # index of the centre-line segment holding the foot point
    t: np.ndarray  # position of the foot point inside that segment, 0..1
    half_left: np.ndarray  # road half widths at the foot point, m
    half_right: np.ndarray

    @property
    def distance(self) -> np.ndarray:
        return np.abs(self.offset)

    @property
    def width(self) -> np.ndarray:
        """Local road width (inner to outer border) at the foot point, m."""
        return self.half_left + self.half_right

    @property
    def on_road(self) -> np.ndarray:
        """True where the point lies between the borders."""
        return (self.offset <= self.half_left) & (self.offset >= -self.half_right)

    def __getitem__(self, index) -> Projection:
        return Projection(self.s[index], self.offset[index], self.segment[index], self.t[index],
                          self.half_left[index], self.half_right[index])


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
        seg = np.diff(self.center, axis=0)
        length = np.hypot(seg[:, 0], seg[:, 1])
        unit = seg / length[:, None]
        normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1)  # points to the left
        cum = np.concatenate([[0.0], np.cumsum(length)])
        vn = vertex_normals(self.center, self.closed)
        half_left = np.einsum("ij,ij->i", self.left - self.center, vn)
        half_right = -np.einsum("ij,ij->i", self.right - self.center, vn)
        d = self._cache
        d.update(seg=seg, seg_len=length, unit=unit, normal=normal, cum=cum,
                 half_left=np.abs(half_left), half_right=np.abs(half_right))
        n_dense = np.maximum(1, np.ceil(length / _DENSE_STEP).astype(int))
        seg_of_sample = np.repeat(np.arange(len(length)), n_dense)
        frac = np.concatenate([np.arange(k) / k for k in n_dense])
        samples = self.center[seg_of_sample] + seg[seg_of_sample] * frac[:, None]
        d.update(tree=cKDTree(samples), sample_seg=seg_of_sample)

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
        """Road width at every waypoint (left + right half widths), m."""
        return self._cache["half_left"] + self._cache["half_right"]

    def reversed(self) -> Track:
        """The same road driven the other way round (waypoints reversed, sides swapped)."""
        return Track(self.name, self.center[::-1].copy(), self.right[::-1].copy(),
                     self.left[::-1].copy(), self.closed)

    # ---- projection -------------------------------------------------------------------
    def _segment_raster(self) -> tuple[np.ndarray, float, float] | None:
        """Nearest centre-line segment of every 2.5 cm cell near the road, -1 for a cell farther
        off (built on first use); None for a track too large for one."""
        d = self._cache
        if "raster" not in d:
            xmin, ymin, xmax, ymax = self.bounds
            x0, y0 = xmin - _RASTER_MARGIN, ymin - _RASTER_MARGIN
            nx = int((xmax - xmin + 2 * _RASTER_MARGIN) / _RASTER_RES) + 1
            ny = int((ymax - ymin + 2 * _RASTER_MARGIN) / _RASTER_RES) + 1
            d["raster"] = None
            if nx * ny <= _RASTER_MAX_CELLS:
                gx, gy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * _RASTER_RES,
                                     y0 + (np.arange(ny) + 0.5) * _RASTER_RES)
                reach = _RASTER_MARGIN + float(max(d["half_left"].max(), d["half_right"].max()))
                _, nearest = d["tree"].query(np.stack([gx.ravel(), gy.ravel()], axis=1), distance_upper_bound=reach)
                seg = np.append(d["sample_seg"], -1)[nearest]  # a miss is index n: -1
                d["raster"] = (seg.reshape(ny, nx).astype(np.int32), x0, y0)
        return d["raster"]

    def _segment_guess(self, pts: np.ndarray) -> np.ndarray:
        """A segment next to the nearest one of each point: from the raster, else the exact index."""
        k0 = np.full(len(pts), -1, dtype=np.intp)
        raster = self._segment_raster()
        if raster is not None:
            cells, x0, y0 = raster
            ij = np.floor((pts - (x0, y0)) * (1.0 / _RASTER_RES))
            inside = (ij >= 0).all(axis=1) & (ij[:, 0] < cells.shape[1]) & (ij[:, 1] < cells.shape[0])
            ij = ij[inside].astype(np.intp)
            k0[inside] = cells[ij[:, 1], ij[:, 0]]
        far = k0 < 0
        if far.any():
            d = self._cache
            k0[far] = d["sample_seg"][d["tree"].query(pts[far])[1]]
        return k0

    def project(self, points: np.ndarray) -> Projection:
        """Project (M, 2) points onto the centre line (nearest segment, exact foot point)."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        d = self._cache
        k0 = self._segment_guess(pts)
        n = self.n_segments
        cand = k0[:, None] + _CANDIDATES
        cand = cand % n if self.closed else np.minimum(np.maximum(cand, 0), n - 1)
        unit, seg_len = d["unit"][cand], d["seg_len"][cand]
        rel = pts[:, None, :] - self.center[cand]
        t = np.minimum(np.maximum((rel * unit).sum(axis=2) / seg_len, 0.0), 1.0)
        gap = rel - unit * (t * seg_len)[..., None]
        dist2 = (gap * gap).sum(axis=2)
        flat = np.arange(len(pts)) * _CANDIDATES.size + dist2.argmin(axis=1)
        seg_idx, t = cand.ravel()[flat], t.ravel()[flat]
        rel, unit = rel.reshape(-1, 2)[flat], unit.reshape(-1, 2)[flat]
        cross = unit[:, 0] * rel[:, 1] - unit[:, 1] * rel[:, 0]  # > 0: left of the centre line
        offset = np.copysign(np.sqrt(dist2.ravel()[flat]), cross)
        s = d["cum"][seg_idx] + t * d["seg_len"][seg_idx]
        hl, hr = d["half_left"], d["half_right"]
        return Projection(s=s, offset=offset, segment=seg_idx, t=t,
                          half_left=hl[seg_idx] + (hl[seg_idx + 1] - hl[seg_idx]) * t,
                          half_right=hr[seg_idx] + (hr[seg_idx + 1] - hr[seg_idx]) * t)

    def on_road(self, points: np.ndarray, proj: Projection | None = None) -> np.ndarray:
        """True for each point that lies on the road (between the borders)."""
        proj = self.project(points) if proj is None else proj
        return proj.on_road

    def point_at(self, s: float | np.ndarray, offset: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """World point(s) at arc length `s` and lateral `offset`, and the heading there (rad)."""
        d = self._cache
        s = np.mod(s, self.length) if self.closed else np.clip(s, 0, self.length)
        k = np.clip(np.searchsorted(d["cum"], s, side="right") - 1, 0, self.n_segments - 1)
        t = (s - d["cum"][k]) / d["seg_len"][k]
        p = self.center[k] + d["seg"][k] * np.asarray(t)[..., None] + d["normal"][k] * np.asarray(offset)[..., None]
        heading = np.arctan2(d["unit"][k, 1], d["unit"][k, 0])
        return p, heading

    def closest_waypoints(self, proj: Projection) -> tuple[int, int]:
        """[previous, next] waypoint indices around the first projected point (by arc length)."""
        k = int(proj.segment[0])
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
    arr = arr[keep]
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
    # inner is on the left of a counter-clockwise loop
    ccw = _signed_area(center) >= 0 if closed else _side(center, inner) > 0
    left, right = (inner, outer) if ccw else (outer, inner)
    track = Track(name, center, left, right, closed)
    widths = track.widths
    narrow = np.argmin(widths)
    if widths[narrow] < MIN_WIDTH:
        raise TrackError(f"{where}: the road is only {widths[narrow]:.3f} m wide at row {narrow} "
                         f"(centre {center[narrow, 0]:.2f}, {center[narrow, 1]:.2f}); "
                         f"at least {MIN_WIDTH} m is needed")
    return track


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

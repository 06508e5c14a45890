"""Deterministic track builders: a seeded random loop generator and the bundled tracks.

`python -m sim.trackgen` rewrites `sim/tracks/<name>.npy` for the bundled tracks.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial import cKDTree

from sim.track import TRACK_DIR, Track, TrackError, from_centerline

MIN_GAP = 0.30  # m: least distance between the road surfaces of distant parts of a track
_STEP = 0.15  # m: nominal waypoint spacing
_MAX_TRIES = 1000


def min_radius(track: Track) -> float:
    """Smallest radius of curvature of the centre line, m."""
    return float(1.0 / np.max(track.curvature()))


def surface_gap(track: Track, step: float = 0.05, cap: float = 1.0) -> float:
    """Least distance between the road surfaces around centre-line points that are more
    than 2 * (width + MIN_GAP) apart along the track, m, at most `cap`."""
    width = float(np.max(track.widths))
    s = np.arange(0.0, track.length, step)
    p, _ = track.point_at(s)
    i, j = cKDTree(p).query_pairs(width + cap, output_type="ndarray").T
    along = np.abs(s[i] - s[j])
    if track.closed:
        along = np.minimum(along, track.length - along)
    far = along > 2 * (width + MIN_GAP)
    dist = np.hypot(*(p[i[far]] - p[j[far]]).T)
    return float(min(cap, np.min(dist) - width)) if len(dist) else cap


def _loop(ctrl: np.ndarray, length: float, width: float, name: str) -> Track:
    """Closed track through control points (periodic cubic spline, chord-length
    parameter), resampled at equal arc length and scaled to centre-line `length`."""
    pts = np.concatenate([ctrl, ctrl[:1]])
    u = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    spline = CubicSpline(u, pts, bc_type="periodic")
    u_dense = np.linspace(0.0, u[-1], 5000)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(spline(u_dense), axis=0).T))])
    n = int(np.clip(round(length / _STEP), 100, 400))
    center = spline(np.interp(np.linspace(0.0, arc[-1], n + 1), arc, u_dense))
    center *= length / np.sum(np.hypot(*np.diff(center, axis=0).T))
    return from_centerline(center[:-1], width, name=name, closed=True)


def _acceptable(track: Track, radius: float) -> bool:
    return min_radius(track) >= radius and surface_gap(track) >= MIN_GAP


def generate(seed: int, length: float = 20.0, width: float = 0.76, name: str | None = None) -> Track:
    """A random smooth counter-clockwise loop, deterministic for `seed`: radial control
    points round a circle through a periodic spline, redrawn until the minimum radius is
    >= max(0.6, 0.8 * width) m and distant parts of the road stay MIN_GAP apart."""
    rng = np.random.default_rng(seed)
    radius = max(0.6, 0.8 * width)
    for _ in range(_MAX_TRIES):
        k = int(rng.integers(7, 13))
        ang = 2 * np.pi * (np.arange(k) + rng.uniform(-0.3, 0.3, k)) / k
        r = rng.uniform(0.6, 1.0, k)
        ctrl = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
        try:
            track = _loop(ctrl, length, width, name or f"gen-{seed}")
        except TrackError:
            continue
        if _acceptable(track, radius):
            return track
    raise ValueError(f"no acceptable track of length {length} m and width {width} m "
                     f"after {_MAX_TRIES} draws for seed {seed}")


def oval() -> Track:
    """A stadium: 1.5 m straights and 1 m radius semicircles (9.28 m), 0.76 m wide."""
    a, r, n = 1.5, 1.0, 100
    length = 2 * a + 2 * np.pi * r
    s = np.linspace(0.0, length, n, endpoint=False)
    q = np.mod(s + a / 2, length)  # start in the middle of the bottom straight
    bends = [a, a + np.pi * r, 2 * a + np.pi * r]
    x = np.select([q < bends[0], q < bends[1], q < bends[2]],
                  [q - a / 2, a / 2 + r * np.sin((q - a) / r), a / 2 - (q - bends[1])],
                  -a / 2 - r * np.sin((q - bends[2]) / r))
    y = np.select([q < bends[0], q < bends[1], q < bends[2]],
                  [np.full(n, -r), -r * np.cos((q - a) / r), np.full(n, r)],
                  r * np.cos((q - bends[2]) / r))
    return from_centerline(np.stack([x, y], axis=1), 0.76, name="oval")


# Control points (arbitrary units, scaled to length), counter-clockwise, waypoint 0 first.
_REINVENT = np.array([
    [1.0, 0.0], [2.5, 0.0], [4.0, 0.0], [5.5, 0.0],  # start/finish straight
    [6.8, 0.4], [7.3, 1.5], [7.1, 2.7], [6.3, 3.4],  # sweeping left-hander
    [5.3, 3.6], [4.6, 3.2], [4.1, 2.5], [3.3, 2.2], [2.5, 2.6], [2.0, 3.5],  # S-bend dip
    [1.2, 3.8], [0.4, 3.3], [0.0, 2.0], [0.2, 0.7],  # tighter hairpin-ish left-hander
])

_PRO = np.array([
    [0.0, 0.0], [4.0, 0.0], [8.0, 0.0], [12.0, 0.0],  # main straight
    [14.5, 0.8], [15.5, 3.0], [14.5, 5.0],  # sweeper
    [12.5, 5.5], [11.5, 7.0], [12.5, 9.0], [14.5, 10.0],  # right-left chicane
    [15.0, 12.0], [13.5, 13.0],  # tight left-hander
    [10.0, 12.5], [7.0, 11.0], [5.0, 12.5], [2.5, 13.0],  # back straight with a kink
    [0.0, 12.0], [-1.5, 9.5], [0.5, 7.0], [0.0, 4.5], [-1.5, 2.0],  # esses
])


def reinvent_like() -> Track:
    """A 17.7 m, 0.76 m wide loop in the spirit of the re:Invent 2018 track."""
    return _loop(_REINVENT, 17.7, 0.76, "reinvent-like")


def pro() -> Track:
    """A 60 m, 1.067 m wide loop with varied corners."""
    return _loop(_PRO, 60.0, 1.067, "pro")


BUNDLED = {"oval": oval, "reinvent-like": reinvent_like, "pro": pro}


def main() -> None:
    """Write the bundled tracks to sim/tracks/<name>.npy and print their figures."""
    TRACK_DIR.mkdir(exist_ok=True)
    for name, build in BUNDLED.items():
        track = build()
        track.save(TRACK_DIR / f"{name}.npy")
        print(f"{name}: {len(track.center)} waypoints, length {track.length:.2f} m, "
              f"width {np.min(track.widths):.3f} m, min radius {min_radius(track):.2f} m, "
              f"surface gap {surface_gap(track):.2f} m")


if __name__ == "__main__":
    main()

"""Projection with a hint (issue 10, item 8): O(1) per point, and exactly the answer of the search over
every segment, for points near and far, on waypoints (ties), across the loop's seam, on reversed and open
tracks."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.car import CarSpec, CarState, body_points
from sim.track import Track, from_centerline, load

TOKYO = Path(__file__).parent / "data" / "tracks" / "Tokyo_Training_track.npy"
NAMES = ["oval", "reinvent-like", "pro", "tokyo", "stadium", "circle", "open-arc"]


def _open_arc() -> Track:
    a = 2 * np.pi * np.arange(180) / 300  # 60 % of a circle of radius 5 m
    return from_centerline(5.0 * np.stack([np.cos(a), np.sin(a)], axis=1), 0.76, closed=False)


@pytest.fixture(params=[(name, rev) for name in NAMES for rev in (False, True)],
                ids=[f"{name}{'-reversed' if rev else ''}" for name in NAMES for rev in (False, True)])
def track(request) -> Track:
    name, rev = request.param
    if name in ("stadium", "circle"):
        t = request.getfixturevalue(name)
    elif name == "tokyo":
        t = load(TOKYO)
    elif name == "open-arc":
        t = _open_arc()
    else:
        t = load(name)
    return t.reversed() if rev else t


def _points(track: Track, rng: np.random.Generator) -> np.ndarray:
    """Points on and round the road, far off it, on every waypoint and border point, and round the seam."""
    width = float(np.max(track.widths))
    s = rng.uniform(0.0, track.length, 2500)
    near = track.point_at(s, rng.uniform(-width, width, len(s)))[0]
    xmin, ymin, xmax, ymax = track.bounds
    far = rng.uniform((xmin - 3.0, ymin - 3.0), (xmax + 3.0, ymax + 3.0), (500, 2))
    seam = track.point_at(rng.uniform(-0.3, 0.3, 200), rng.uniform(-width / 2, width / 2, 200))[0]
    return np.concatenate([near, far, seam, track.center, track.left, track.right])


def _assert_same(a, b) -> None:
    for key in ("s", "offset", "segment"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert np.array_equal(a.on_road, b.on_road)
    assert np.array_equal(a.width, b.width)


def test_hinted_projection_is_the_global_one(track):
    rng = np.random.default_rng(10)
    pts = _points(track, rng)
    want = track.project(pts)
    n = track.n_segments
    near_hints = want.segment + rng.integers(-3, 4, len(pts))  # a step's worth of movement, either way
    _assert_same(track.project(pts, hint=near_hints), want)
    _assert_same(track.project(pts, hint=rng.integers(-2 * n, 2 * n, len(pts))), want)  # wild, out of range
    for lo in range(0, len(pts), 5):  # the env's calls: five points, one hint
        _assert_same(track.project(pts[lo:lo + 5], hint=int(near_hints[lo])), want[lo:lo + 5])


def test_a_car_driving_laps_gets_the_global_projection(track):
    """Two laps of 5-point calls (front point and wheels) at 4 m/s, weaving across the road, each hinted
    with the front point's segment of the step before."""
    s = np.arange(0.0, 2 * track.length, 4.0 / 15)
    off = 0.3 * np.sin(s / 1.3)
    (x, y), yaw = track.point_at(s, off)[0].T, track.point_at(s)[1]
    hint = None
    for state in zip(x, y, yaw):
        pts = body_points(CarSpec(), CarState(*state, 0.0, 0.0))
        got = track.project(pts, hint=hint)
        _assert_same(got, track.project(pts))
        hint = int(got.segment[0])


def test_the_global_search_finds_the_nearest_segment(track):
    """Against an independent brute force: no segment is nearer than the one found."""
    pts = _points(track, np.random.default_rng(11))[::7]
    a, b = track.center[:-1], track.center[1:]
    ab = b - a
    t = np.clip(((pts[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1), 0.0, 1.0)
    dist = np.linalg.norm(pts[:, None] - (a + t[..., None] * ab), axis=-1)
    got = track.project(pts)
    assert np.allclose(got.distance, dist.min(axis=1), rtol=0, atol=1e-12)
    assert np.allclose(dist[np.arange(len(pts)), got.segment], dist.min(axis=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["pro", "tokyo", "stadium"])
def test_points_of_the_road_are_proved_in_their_window(name, request):
    """The O(1) search answers for every point of the road (and the car's wheels just off it) without the
    global one; a point over 1.5 m off the centre line (half the clearances' cap) falls back to it.  (A
    track of fewer segments, such as `reinvent-like`, is searched whole: that costs no more.)"""
    track = request.getfixturevalue(name) if name == "stadium" else load(TOKYO if name == "tokyo" else name)
    rng = np.random.default_rng(12)
    s = rng.uniform(0.0, track.length, 3000)
    half = track.project(track.point_at(s)[0]).width / 2
    pts = track.point_at(s, rng.uniform(-1, 1, len(s)) * (half + 0.1))[0]
    line = track._cache["line"]  # the centre line's segments (private: this checks the speed, not the answer)
    hint = track.project(pts).segment
    assert line.near_hint(pts, hint, *line.windows())[-1].all()
    xmin, ymin, xmax, ymax = track.bounds
    far = np.stack([np.linspace(xmin, xmax, 50), np.full(50, ymax + 2.0)], axis=1)  # 2 m beyond every border
    assert not line.near_hint(far, track.project(far).segment, *line.windows())[-1].any()


def test_indexing_keeps_arrays(stadium):
    p = stadium.project(np.array([[5.0, 0.2], [6.0, -0.3]]), hint=np.int64(0))
    assert p[1].s.shape == (1,) and p[1].offset[0] == pytest.approx(-0.3)
    assert p[1].on_road.tolist() == [True] and p[1].width[0] == pytest.approx(1.0)
    assert p[-1].s[0] == pytest.approx(1.0) and p[-1].segment.tolist() == [3]  # on waypoint 4: the lower segment
    assert math.isclose(float(p[:1].s[0]), 0.0, abs_tol=1e-12)

"""Tracks: bundled files, the generator, `.npy` I/O, refusals, projection."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim import trackgen
from sim.track import TRACK_DIR, Track, TrackError, bundled_names, from_array, from_centerline, load

# name: (length range m, width m, least min radius m)
BUNDLED = {
    "oval": ((8.0, 10.0), 0.76, 0.6),
    "reinvent-like": ((17.7 * 0.97, 17.7 * 1.03), 0.76, 0.6),
    "pro": ((60.0 * 0.97, 60.0 * 1.03), 1.067, 0.85),
}


def _shoelace(p: np.ndarray) -> float:
    return 0.5 * float(np.sum(p[:-1, 0] * p[1:, 1] - p[1:, 0] * p[:-1, 1]))


def _assert_sound(track: Track, radius: float) -> None:
    assert track.closed
    assert np.allclose(track.center[0], track.center[-1])
    assert _shoelace(track.center) > 0  # counter-clockwise
    assert trackgen.min_radius(track) >= radius
    assert trackgen.min_radius(track) > np.max(track.widths) / 2  # borders do not fold
    assert trackgen.surface_gap(track) >= trackgen.MIN_GAP


def test_bundled_names():
    assert set(BUNDLED) <= set(bundled_names())


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_track(name):
    (lo, hi), width, radius = BUNDLED[name]
    track = load(name)
    assert track.name == name
    assert lo <= track.length <= hi
    assert np.allclose(track.widths, width, atol=1e-6)
    assert 100 <= len(track.center) <= 401
    _assert_sound(track, radius)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_file_matches_builder(name):
    assert np.allclose(trackgen.BUNDLED[name]().to_array(), np.load(TRACK_DIR / f"{name}.npy"))


@pytest.mark.parametrize("seed", range(10))
def test_generate(seed):
    track = trackgen.generate(seed)
    assert np.array_equal(track.to_array(), trackgen.generate(seed).to_array())
    assert not np.array_equal(track.center[:50], trackgen.generate(seed + 1).center[:50])
    assert abs(track.length - 20.0) <= 0.02 * 20.0
    assert np.allclose(track.widths, 0.76)
    _assert_sound(track, 0.6)
    assert from_array(track.to_array()).length == pytest.approx(track.length)


def test_generate_wide_track_keeps_radius():
    track = trackgen.generate(3, length=30.0, width=1.067)
    assert abs(track.length - 30.0) <= 0.6
    _assert_sound(track, 0.8 * 1.067)


def test_npy_round_trip(tmp_path):
    for track in (load("oval"), trackgen.generate(7)):
        path = tmp_path / "t.npy"
        track.save(path)
        back = load(path)
        assert back.name == "t"
        for a, b in ((track.center, back.center), (track.left, back.left), (track.right, back.right)):
            assert np.allclose(a, b)


# ---- refusals ---------------------------------------------------------------------------
def _rows(center: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """(N, 6) rows of centre, left and right border (normals from the centre line)."""
    tangent = np.gradient(center, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    half = np.broadcast_to(np.asarray(width) / 2, (len(center),))[:, None]
    return np.concatenate([center, center + normal * half, center - normal * half], axis=1)


def _circle(n: int = 100, radius: float = 2.0) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def _refusal(tmp_path, arr: np.ndarray) -> str:
    path = tmp_path / "bad.npy"
    np.save(path, arr)
    with pytest.raises(TrackError) as err:
        load(path)
    msg = str(err.value)
    assert str(path) in msg
    return msg


def test_refuses_wrong_shape(tmp_path):
    msg = _refusal(tmp_path, np.zeros((10, 4)))
    assert "(N, 6)" in msg and "(10, 4)" in msg


def test_refuses_nan(tmp_path):
    arr = _rows(_circle(), 0.76)
    arr[5, 3] = np.nan
    assert "row 5, column 3" in _refusal(tmp_path, arr)


@pytest.mark.parametrize("phase", [0.0, 0.5])  # crossing on two waypoints / inside two segments
def test_refuses_figure_eight(tmp_path, phase):
    a = 2 * np.pi * (np.arange(200) + phase) / 200 + np.pi / 2  # start on a lobe
    eight = 3.0 * np.stack([np.sin(a), np.sin(a) * np.cos(a)], axis=1)
    assert "crosses itself" in _refusal(tmp_path, _rows(eight, 0.76))


def test_refuses_narrow_road(tmp_path):
    width = np.full(100, 0.76)
    width[37] = 0.2
    msg = _refusal(tmp_path, _rows(_circle(), width))
    assert "0.200 m wide at row 37" in msg


# ---- projection -------------------------------------------------------------------------
def _straight() -> Track:
    """Open road along +x from 0 to 10 m, 1 m wide, waypoints every metre."""
    center = np.stack([np.arange(11.0), np.zeros(11)], axis=1)
    return from_centerline(center, 1.0, closed=False)


def test_projection_on_straight():
    track = _straight()
    assert not track.closed and track.length == pytest.approx(10.0)
    p = track.project(np.array([[3.3, 0.2], [3.3, -0.2]]))
    assert np.allclose(p.s, 3.3) and np.allclose(p.offset, [0.2, -0.2])
    edge = np.array([[3.3, 0.499], [3.3, 0.501], [3.3, -0.499], [3.3, -0.501]])
    assert track.on_road(edge).tolist() == [True, False, True, False]
    back = track.reversed().project(np.array([[3.3, 0.2]]))
    assert back.s[0] == pytest.approx(10.0 - 3.3) and back.offset[0] == pytest.approx(-0.2)


def test_projection_on_circle():
    n, radius, width = 400, 2.0, 0.76
    track = from_centerline(_circle(n, radius), width)
    chord = 2 * radius * math.sin(math.pi / n)
    assert track.closed and track.length == pytest.approx(n * chord)
    k = 123  # on the ray through the middle of segment k the foot point is that middle
    ray = np.array([math.cos(2 * math.pi * (k + 0.5) / n), math.sin(2 * math.pi * (k + 0.5) / n)])
    apothem = radius * math.cos(math.pi / n)
    p = track.project((apothem - 0.25) * ray)  # inside the loop: left of a counter-clockwise drive
    assert p.s[0] == pytest.approx((k + 0.5) * chord) and p.offset[0] == pytest.approx(0.25)
    radii = apothem + np.array([-(width / 2 - 1e-3), -(width / 2 + 1e-3), width / 2 - 1e-3, width / 2 + 1e-3])
    assert track.on_road(radii[:, None] * ray).tolist() == [True, False, True, False]
    back = track.reversed().project((apothem - 0.25) * ray)
    assert back.s[0] == pytest.approx(track.length - (k + 0.5) * chord)
    assert back.offset[0] == pytest.approx(-0.25)


def test_closest_waypoints_by_arc_length():
    xs = np.array([0.0, 1.0, 3.0, 3.2, 5.0])
    track = from_centerline(np.stack([xs, np.zeros(5)], axis=1), 1.0, closed=False)
    point = np.array([[2.8, 0.1]])
    nearest = int(np.argmin(np.abs(xs - 2.8)))
    assert nearest == 2  # the Euclidean nearest waypoint is the next one
    assert track.closest_waypoints(track.project(point)) == (1, 2)


def test_closest_waypoints_wrap_on_loop():
    n = 100
    track = from_centerline(_circle(n), 0.76)
    a = 2 * np.pi * (n - 0.5) / n  # inside the last segment, n-1 -> 0
    assert track.closest_waypoints(track.project(np.array([[2 * math.cos(a), 2 * math.sin(a)]]))) == (n - 1, 0)


def test_checks_flag_tight_and_overlapping_loops():
    a = 2 * np.pi * np.arange(400) / 400
    thin = from_centerline(np.stack([5.0 * np.cos(a), 0.45 * np.sin(a)], axis=1), 0.76)
    assert trackgen.surface_gap(thin) < trackgen.MIN_GAP  # the straights are 0.14 m apart
    assert trackgen.min_radius(thin) == pytest.approx(0.45**2 / 5.0, rel=0.05)
    assert trackgen.min_radius(from_centerline(_circle(400), 0.76)) == pytest.approx(2.0, rel=1e-3)

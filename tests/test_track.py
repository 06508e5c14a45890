"""Tracks: bundled files, the generator, `.npy` I/O, refusals, projection, the road and its width as
DeepRacer's (a real track with skewed rows)."""
from __future__ import annotations

import io
import math
import pathlib
import warnings

import numpy as np
import pytest
from numpy.lib import format as npformat

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


def test_refuses_too_few_waypoints(tmp_path):
    for rows in (0, 1, 3):
        msg = _refusal(tmp_path, _rows(_circle(), 0.76)[:rows])
        assert f"at least 4 distinct centre-line points, got {rows}" in msg


# ---- files that are not tracks, tracks too big, open tracks (issue 9, item 10) -----------------
def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _header_only(shape: tuple[int, ...]) -> bytes:
    """A .npy header that promises `shape` float64 values, followed by one row of data."""
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(48)


class _Touch:
    """Unpickling this creates the file: proof that a loader unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


GOOD = _rows(_circle(), 0.76)


@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty"),
    (_npy(GOOD)[:-100], "truncated: the header announces 600 float64 values (4800 bytes) but 4700 bytes follow"),
    (_npy(GOOD)[:40], "truncated or damaged .npy header"),
    (b"x,y\n1.0,2.0\n3.0,4.0\n", "not a NumPy .npy file"),
    (b"PK\x03\x04" + bytes(60), "not a NumPy .npy file"),
    (_header_only((10**12, 6)), "holds 6000000000000 values; a track has at most"),
    (_header_only((1000, 6)), "truncated: the header announces 6000 float64 values (48000 bytes) but 48 bytes follow"),
], ids=["empty", "truncated", "cut-header", "text", "zip", "huge-header", "short-data"])
def test_unreadable_files_are_named(tmp_path, content, expected):
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(TrackError) as err:
        load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and expected in msg
    assert "pickle" not in msg.lower()


def test_python_objects_in_a_npy_are_never_loaded(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "objects.npy"
    path.write_bytes(_npy(np.array([_Touch(marker)], dtype=object)))
    with pytest.raises(TrackError) as err:
        load(path)
    assert "Python objects" in str(err.value) and "pickle" not in str(err.value).lower()
    assert not marker.exists()


def test_a_folder_is_not_a_track(tmp_path):
    folder = tmp_path / "dir.npy"
    folder.mkdir()
    with pytest.raises(TrackError, match="cannot read"):
        load(folder)


@pytest.mark.parametrize("scale, across", [(100.0, "476 m across"), (1e7, "47600000 m across")])
def test_refuses_a_track_larger_than_a_room(tmp_path, scale, across):
    """A track in centimetres (or one wild coordinate) is refused before any raster is sized."""
    msg = _refusal(tmp_path, _rows(_circle(), 0.76) * scale)
    assert across in msg and "in metres" in msg and "centimetres" in msg


def test_refuses_one_wild_coordinate(tmp_path):
    arr = _rows(_circle(), 0.76)
    arr[5, 0] = 1e9
    assert "m across" in _refusal(tmp_path, arr)


def test_refuses_too_many_waypoints(tmp_path):
    assert "a track has at most" in _refusal(tmp_path, _rows(_circle(20_000, radius=30.0), 0.76))


def test_a_large_track_projects_without_a_huge_raster():
    """59 m across (allowed): the nearest-segment raster would hold 6 M cells; it is not built."""
    import tracemalloc
    n, radius = 2000, 29.5
    track = from_centerline(_circle(n, radius), 0.76)
    a = 2 * np.pi * (np.arange(50) + 0.5) / n
    ray = np.stack([np.cos(a), np.sin(a)], axis=1)
    tracemalloc.start()
    p = track.project((radius - 0.2) * ray)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6, peak
    assert np.allclose(p.offset, 0.2, atol=1e-3) and np.array_equal(p.segment, np.arange(50))
    far = track.project(np.array([[0.0, 0.0], [radius + 30.0, 0.0]]))  # the infield centre, far outside
    assert np.allclose(far.distance, [radius, 30.0], atol=0.01)


def test_open_track_is_refused_unless_asked_for(tmp_path):
    arc = _circle(100)[:60]  # 60 % of a loop: the ends are 3.84 m apart
    path = tmp_path / "arc.npy"
    np.save(path, _rows(arc, 0.76))
    with pytest.raises(TrackError) as err:
        load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: the track is open: its first and last waypoints are 3.84 m apart")
    assert "--open-track" in msg
    track = load(path, allow_open=True)
    assert not track.closed and len(track.center) == 60
    assert from_array(_rows(arc, 0.76), allow_open=True).length == pytest.approx(track.length)
    with pytest.raises(TrackError, match="the track is open"):
        from_array(_rows(arc, 0.76))


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


# ---- the road as DeepRacer's: the polygon between the borders, whatever a row's direction (issue 10, item 10) ----
TOKYO = pathlib.Path(__file__).parent / "data" / "tracks" / "Tokyo_Training_track.npy"


def test_a_real_track_with_skewed_rows_imports():
    """Tokyo_Training_track's rows run far along the road (row 114's border points are 0.14 m apart along
    the centre line's normal, 1.55 m apart in fact): DeepRacer drives it, so it loads, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        track = load(TOKYO)
    arr = np.load(TOKYO)
    assert track.closed and len(track.center) == len(arr) - 1  # one repeated row is dropped
    assert 0.65 < track.widths.min() and track.widths.max() < 1.98  # inner to outer point of each row
    width = track.project(track.point_at(np.linspace(0.0, track.length, 2000))[0]).width
    assert 0.62 < width.min() and width.max() < 0.83  # the road itself
    assert track.on_road(track.center).all()


@pytest.mark.parametrize("reverse", [False, True])
def test_the_road_is_the_polygon_between_the_borders(reverse):
    """Just inside every border edge of Tokyo is road, just outside is not (the road lies right of the left
    border and left of the right border, both drawn in the driving direction)."""
    track = load(TOKYO)
    track = track.reversed() if reverse else track
    for border, inward in ((track.left, -1.0), (track.right, 1.0)):
        a, b = border[:-1], border[1:]
        d = b - a
        length = np.hypot(d[:, 0], d[:, 1])
        a, d, length = a[length > 0.03], d[length > 0.03], length[length > 0.03]
        normal = inward * np.stack([-d[:, 1], d[:, 0]], axis=1) / length[:, None]
        mid = a + 0.5 * d
        assert track.on_road(mid + 0.005 * normal).all()
        assert not track.on_road(mid - 0.005 * normal).any()


def _skewed_straight() -> Track:
    """An open road along +x, its borders y = 0.4 and y = -0.6, each row's border points 0.3 m ahead (left)
    and behind (right) of its centre point."""
    x = np.arange(0.0, 10.5, 0.5)
    rows = np.stack([x, 0 * x, x + 0.3, 0 * x + 0.4, x - 0.3, 0 * x - 0.6], axis=1)
    return from_array(rows, allow_open=True)


def test_width_is_the_distance_between_the_borders_nearest_points():
    """DeepRacer's `track_width` (simapp `agent_ctrl/utils.py`): the nearest point of the centre line, then
    the nearest point of each border to it, then the distance between those two."""
    road = _skewed_straight()
    assert np.allclose(road.widths, math.hypot(0.6, 1.0))  # the rows
    p = road.project(np.array([[4.2, 0.1], [4.2, 0.399], [4.2, 0.401], [4.2, -0.599], [4.2, -0.601]]))
    assert np.allclose(p.width, 1.0) and np.allclose(p.half_left, 0.4) and np.allclose(p.half_right, 0.6)
    assert p.on_road.tolist() == [True, True, False, True, False]
    # the end rows close the polygon: from (-0.3, -0.6) to (0.3, 0.4) and from (9.7, -0.6) to (10.3, 0.4)
    assert road.on_road(np.array([[0.07, 0.0], [0.0, 0.0], [10.05, 0.0], [10.07, 0.0]])).tolist() == \
        [True, False, True, False]
    # a 12-gon of radius 2, its borders on the vertices' normals 0.38 m either side: the borders' nearest
    # points to a point of a centre-line edge lie on the parallel border edges, w cos(pi / 12) apart
    n, width = 12, 0.76
    ring = from_centerline(_circle(n), width)
    foot = ring.point_at(ring.waypoint_s[3] + np.array([0.25, 0.5]) * (ring.waypoint_s[4] - ring.waypoint_s[3]))[0]
    p = ring.project(foot)
    assert np.allclose(ring.widths, width)
    assert np.allclose(p.width, width * math.cos(math.pi / n), rtol=0, atol=1e-9)
    assert np.allclose(p.half_left, width / 2 * math.cos(math.pi / n), rtol=0, atol=1e-9)


def _nearest_on(line: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The nearest point of a polyline to each point, over every edge."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((pts[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300), 0.0, 1.0)
    near = a + t[..., None] * ab
    return near[np.arange(len(pts)), np.linalg.norm(pts[:, None] - near, axis=-1).argmin(axis=1)]


@pytest.mark.parametrize("which", ["tokyo", "tokyo-reversed", "12-gon"])
def test_width_matches_a_brute_force_of_the_reference(which):
    """At 4000 points of the centre line and where a border's nearest point jumps (on the outside of a bend,
    from one edge to the next past their vertex), within 5e-5 m of the distance between the borders' nearest
    points (the width is interpolated between samples at least every 1 cm and wherever a nearest point
    reaches a border vertex, and worked out anew across a jump)."""
    track = from_centerline(_circle(12), 0.76) if which == "12-gon" else load(TOKYO)
    track = track.reversed() if which.endswith("reversed") else track
    track.project(track.center[:1]).width  # builds the samples
    at, profile = track._cache["borders"]  # (private) NaN where a border's nearest point jumps
    s = np.concatenate([np.random.default_rng(3).uniform(0.0, track.length, 4000), at[np.isnan(profile[2])]])
    foot = track.point_at(s)[0]
    want = np.linalg.norm(_nearest_on(track.left, foot) - _nearest_on(track.right, foot), axis=1)
    p = track.project(foot)
    assert np.allclose(p.width, want, rtol=0, atol=5e-5)
    assert np.allclose(p.half_left, np.linalg.norm(_nearest_on(track.left, foot) - foot, axis=1), rtol=0, atol=5e-5)


def test_refusal_names_the_files_row(tmp_path):
    """A repeated row is dropped (as DeepRacer does), and the narrow row is named by its row in the file."""
    width = np.full(100, 0.76)
    width[37] = 0.2
    arr = _rows(_circle(), width)
    arr = np.insert(arr, 10, arr[10], axis=0)  # row 10 twice: the narrow row is row 38 of the file
    assert "0.200 m wide at row 38" in _refusal(tmp_path, arr)

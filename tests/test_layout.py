"""Lanes, box and bot layouts, the start grid, start and reset lanes, by hand on the stadium.

The stadium (tests/conftest.py): waypoint 0 at (5, 0) on the bottom straight driven +x, 1.0 m wide,
counter-clockwise, so the inner lane is 0.25 m to the left; (5, 4) on the top straight is half way.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import stadium_centerline

from sim.layout import (CENTRE, SAME_LANE_GAP, bot_layout, evenly_spaced, inner_side, lane_offset, lane_pose,
                        nearest_object, obstacle_layout, reset_spot, road_point, spread, start_grid, start_lane)
from sim.race_config import INNER, OUTER, parse_race_config
from sim.track import from_centerline


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _same(places, expected) -> bool:
    """Places (s, lane) equal: the same lanes, arc lengths within 1e-9 m."""
    return [lane for _, lane in places] == [lane for _, lane in expected] and \
        np.allclose([s for s, _ in places], [s for s, _ in expected], rtol=0, atol=1e-9)


def test_inner_side_is_the_inside_of_the_loop(stadium, circle):
    assert inner_side(stadium) == 1 and inner_side(circle) == 1
    assert inner_side(stadium.reversed()) == -1


@pytest.mark.parametrize("s_from_half, lane, point", [
    (None, INNER, (7.0, 0.25)), (None, OUTER, (7.0, -0.25)), (None, CENTRE, (7.0, 0.0)),
    (2.0, INNER, (3.0, 3.75)), (2.0, OUTER, (3.0, 4.25)),  # top straight, driven -x: inner is -y
])
def test_lanes_on_the_stadium(stadium, s_from_half, lane, point):
    s = 2.0 if s_from_half is None else stadium.length / 2 + s_from_half
    x, y, yaw = lane_pose(stadium, s, lane)
    assert (x, y) == pytest.approx(point, abs=1e-9)
    assert yaw == pytest.approx(0.0 if s_from_half is None else math.pi, abs=1e-9)
    assert abs(lane_offset(stadium, s, lane)) == pytest.approx(0.25 if lane else 0.0)


def test_lanes_on_the_reversed_stadium(stadium):
    rev = stadium.reversed()  # waypoint 0 still at (5, 0), driven -x: the inner (+y) side is on the right
    assert lane_offset(rev, 2.0, INNER) == pytest.approx(-0.25)
    x, y, yaw = lane_pose(rev, 2.0, INNER)
    assert (x, y, abs(yaw)) == pytest.approx((3.0, 0.25, math.pi))
    assert lane_pose(rev, 2.0, OUTER)[:2] == pytest.approx((3.0, -0.25))


def test_lane_follows_the_local_width():
    center = stadium_centerline()
    widths = np.where(center[:, 1] == 0.0, 1.4, 1.0)  # the bottom straight is 1.4 m wide
    track = from_centerline(center, widths, name="wide-straight")
    assert lane_offset(track, 0.0, INNER) == pytest.approx(0.35)  # at (5, 0)
    assert lane_offset(track, 2.125, OUTER) == pytest.approx(-0.35)
    assert lane_offset(track, track.length - 2.0, INNER) == pytest.approx(0.35)  # (3, 0), before the start line
    assert lane_offset(track, track.length / 2 + 2.0, INNER) == pytest.approx(0.25)  # the top straight
    # everywhere half the half width the params measure at each waypoint
    proj = track.project(track.center)
    assert [lane_offset(track, s, INNER) for s in track.waypoint_s] == pytest.approx(proj.half_left / 2)
    assert [lane_offset(track, s, OUTER) for s in track.waypoint_s] == pytest.approx(-proj.half_right / 2)


def test_a_lane_is_a_continuous_line_round_the_curves(stadium):
    s = np.arange(0.0, stadium.length, 0.001)
    p = np.array([road_point(stadium, x, lane_offset(stadium, x, OUTER)) for x in s])
    step = np.hypot(*np.diff(p, axis=0).T)
    # 1 mm of centre line is at most 1.125 mm on the outer lane of the 2 m radius ends: no jump at a waypoint
    assert step.max() < 0.001 * (1 + 0.25 / 2.0) * 1.01
    straight = s < 4.75  # up to the last segment before the curve, whose end normal turns with the curve
    assert np.allclose(p[straight], np.stack([5.0 + s[straight], np.full(straight.sum(), -0.25)], axis=1))
    centre = np.array([10.0, 2.0])  # the first half circle: the outer lane is 2.25 m from its centre
    on_arc = (s > 5.0 + 0.2) & (s < 5.0 + math.pi * 2.0 - 0.2)
    assert np.hypot(*(p[on_arc] - centre).T) == pytest.approx(2.25, abs=0.005)


def test_even_obstacles_by_hand(stadium):
    L = stadium.length
    cfg = parse_race_config("object-avoidance", {"NUMBER_OF_OBSTACLES": 3, "MIN_DISTANCE_BETWEEN_OBSTACLES": 10})
    first, last = 0.1 * L, L - 1.0  # 10 % of the length, to 1 m before the start line
    expected = [(first, INNER), ((first + last) / 2, OUTER), (last, INNER)]
    assert _same(obstacle_layout(stadium, cfg, _rng()), expected)
    assert _same(obstacle_layout(stadium, cfg, _rng(), start_s=5.0), [((s + 5.0) % L, lane) for s, lane in expected])
    six = obstacle_layout(stadium, parse_race_config("object-avoidance"), _rng())
    assert [lane for _, lane in six] == [INNER, OUTER] * 3
    assert [s for s, _ in six] == pytest.approx(np.linspace(0.02 * L, L - 1.0, 6))


def test_object_positions_place_the_boxes(stadium):
    L = stadium.length
    cfg = parse_race_config("object-avoidance", {"OBJECT_POSITIONS": "0.5,-1;0.0625,1"})
    boxes = obstacle_layout(stadium, cfg, _rng())
    assert _same(boxes, [(L / 2, OUTER), (L / 16, INNER)])
    assert lane_pose(stadium, boxes[0][0], boxes[0][1])[:2] == pytest.approx((5.0, 4.25))
    assert _same(obstacle_layout(stadium, cfg, _rng(), start_s=L / 2), [(0.0, OUTER), (9 * L / 16, INNER)])


def test_random_obstacles(stadium):
    L = stadium.length
    cfg = parse_race_config("object-avoidance", {"RANDOMIZE_OBSTACLE_LOCATIONS": "True",
                                                 "MIN_DISTANCE_BETWEEN_OBSTACLES": 5})
    gap = 0.05 * L
    lanes = set()
    layouts = []
    for seed in range(40):
        boxes = obstacle_layout(stadium, cfg, _rng(seed))
        assert boxes == obstacle_layout(stadium, cfg, _rng(seed))  # seeded: the same layout
        s = np.array([b[0] for b in boxes])
        assert len(s) == 6 and s.min() >= gap - 1e-9 and s.max() <= L - 1.0 + 1e-9  # never onto the start line
        assert np.all(np.diff(s) >= gap - 1e-9)
        lanes |= {b[1] for b in boxes}
        layouts.append(s)
    assert lanes == {INNER, OUTER}
    assert np.std(np.array(layouts), axis=0).min() > 0.1  # every box moves
    rng = _rng(1)
    assert obstacle_layout(stadium, cfg, rng) != obstacle_layout(stadium, cfg, rng)  # a new layout per episode


def test_random_obstacles_without_room_stay_evenly_spaced(stadium):
    cfg = parse_race_config("object-avoidance", {"RANDOMIZE_OBSTACLE_LOCATIONS": True, "NUMBER_OF_OBSTACLES": 5,
                                                 "MIN_DISTANCE_BETWEEN_OBSTACLES": 20})
    L = stadium.length
    assert [s for s, _ in obstacle_layout(stadium, cfg, _rng())] == pytest.approx(np.linspace(0.2 * L, L - 1, 5))


def _numpy_spread(n, first, last, min_gap, randomize, rng):
    """The layout's numpy formula (linspace, arrays of distances and lanes): `spread`'s reference."""
    d = np.linspace(first, last, n)
    if not randomize:
        return [(float(x), INNER if i % 2 == 0 else OUTER) for i, x in enumerate(d)]
    for i in rng.permutation(n):
        lo = first if i == 0 else d[i - 1] + min_gap
        hi = last if i == n - 1 else d[i + 1] - min_gap
        if lo < hi:
            d[i] = rng.uniform(lo, hi)
    lanes = np.where(rng.integers(0, 2, size=n) == 1, OUTER, INNER)
    for i in range(1, n):
        if d[i] - d[i - 1] < SAME_LANE_GAP:
            lanes[i] = lanes[i - 1]
    return [(float(x), int(lane)) for x, lane in zip(d, lanes)]


def test_spread_is_the_numpy_formula_bit_for_bit():
    """Distances, lanes and the draws they take from the generator, on random spans, gaps and counts."""
    draw = _rng(1)
    for _ in range(2000):
        n, first, span, gap = int(draw.integers(0, 9)), draw.uniform(0, 5), draw.uniform(-1, 30), draw.uniform(0, 4)
        randomize, seed = bool(draw.integers(0, 2)), int(draw.integers(1 << 30))
        assert evenly_spaced(n, first, first + span) == np.linspace(first, first + span, n).tolist()
        ours_rng, rng = _rng(seed), _rng(seed)
        ours = spread(n, first, first + span, gap, randomize, ours_rng)
        assert ours == _numpy_spread(n, first, first + span, gap, randomize, rng)
        assert ours_rng.bit_generator.state == rng.bit_generator.state
        assert all(type(s) is float and type(lane) is int for s, lane in ours)


def test_bots_layout_in_metres(stadium):
    L = stadium.length
    cfg = parse_race_config("head-to-bot", {"MIN_DISTANCE_BETWEEN_BOT_CARS": "2.0"})
    assert _same(bot_layout(stadium, cfg, _rng()), [(2.0, INNER), ((1.0 + L) / 2, OUTER), (L - 1, INNER)])
    rand = parse_race_config("head-to-bot", {"RANDOMIZE_BOT_CAR_LOCATIONS": True, "NUMBER_OF_BOT_CARS": 4})
    bots = bot_layout(stadium, rand, _rng(3))
    assert bots == bot_layout(stadium, rand, _rng(3)) != bot_layout(stadium, rand, _rng(4))
    assert np.all(np.diff([b[0] for b in bots]) >= 2.0)


def test_start_grid(stadium):
    L = stadium.length
    assert start_grid(stadium, 1) == [(0.0, CENTRE)]
    assert _same(start_grid(stadium, 4), [(0.0, OUTER), (L - 0.75, INNER), (L - 1.5, OUTER), (L - 2.25, INNER)])
    assert _same(start_grid(stadium, 2, offset=0.5, start_s=10.0), [(10.0, OUTER), (9.5, INNER)])


def test_start_lane_avoids_a_near_object(stadium):
    L = stadium.length
    assert start_lane(stadium, 0.0, []) == CENTRE
    assert start_lane(stadium, 0.0, [(0.5, INNER)]) == OUTER
    assert start_lane(stadium, 0.0, [(5.0, INNER), (L - 0.5, OUTER)]) == INNER  # behind, across the line
    assert start_lane(stadium, 0.0, [(1.5, INNER)]) == CENTRE
    assert nearest_object(stadium, 3.0, [(2.5, INNER), (3.2, OUTER), (9.0, INNER)]) == 1


def test_reset_spot(stadium):
    cfg = parse_race_config("object-avoidance", {"RESET_BEHIND_DIST": 1.0, "RESET_AHEAD_DIST": 1.5})
    boxes = [(5.0, INNER), (12.0, OUTER)]
    assert _same([reset_spot(stadium, 5.4, 0.2, boxes, cfg)], [(4.0, OUTER)])  # behind the box, free lane
    assert _same([reset_spot(stadium, 4.5, -0.2, boxes, cfg, ahead=True)], [(6.5, OUTER)])  # mercy
    assert _same([reset_spot(stadium, 11.5, 0.0, boxes, cfg)], [(11.0, INNER)])
    assert _same([reset_spot(stadium, 3.0, 0.1, boxes, cfg)], [(3.0, INNER)])  # no box: the nearer lane
    assert _same([reset_spot(stadium, 3.0, -0.1, boxes, cfg)], [(3.0, OUTER)])
    assert _same([reset_spot(stadium.reversed(), 3.0, 0.1, [], cfg)], [(3.0, OUTER)])
    assert _same([reset_spot(stadium, 0.5, 0.0, [(0.2, OUTER)], cfg)], [(stadium.length - 0.8, INNER)])

"""Bot cars: constant speed along a lane, lane-change timing and shape, freezes, seeded determinism.

On the stadium (tests/conftest.py) the bottom straight runs from x = 0 to x = 10 at y = 0, driven +x,
with waypoint 0 at (5, 0), so arc length s = x - 5 there (s = L + x - 5 before the start line);
the inner lane is at y = +0.25, the outer one at y = -0.25.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.bots import BotCar
from sim.layout import bot_layout, lane_offset
from sim.race_config import INNER, OUTER, parse_race_config

LANE_CHANGE = {"IS_LANE_CHANGE": True, "LOWER_LANE_CHANGE_TIME": 1.0, "UPPER_LANE_CHANGE_TIME": 2.0,
               "LANE_CHANGE_DISTANCE": 1.0, "BOT_CAR_SPEED": 0.5}


def test_constant_speed_along_its_lane(stadium):
    cfg = parse_race_config("head-to-bot", {"BOT_CAR_SPEED": 0.75})
    bot = BotCar(stadium, 3.0, OUTER, cfg, np.random.default_rng(0))
    assert bot.speed == 0.75 and bot.pose == pytest.approx((8.0, -0.25, 0.0))
    s = [bot.s]
    for _ in range(600):  # 40 s: a lap and a bit, round both ends
        bot.step(1 / 15)
        s.append(bot.s)
        x, y, _ = bot.pose
        proj = stadium.project(np.array([[x, y]]))
        assert proj.offset[0] == pytest.approx(lane_offset(stadium, bot.s, OUTER), abs=0.002)
        assert bot.offset == pytest.approx(lane_offset(stadium, bot.s, OUTER))
        assert bot.lane == OUTER and not bot.changing
    ds = (np.diff(s) + stadium.length / 2) % stadium.length - stadium.length / 2
    assert ds == pytest.approx(np.full(600, 0.75 / 15))
    assert bot.s == pytest.approx((3.0 + 0.75 * 40) % stadium.length)


def test_lane_change_timing_and_shape(stadium):
    cfg = parse_race_config("head-to-bot", LANE_CHANGE)
    draws = np.random.default_rng(7).uniform(1.0, 2.0, size=2)  # the bot's delays, in the order it draws them
    start = stadium.length - 2.0  # (3, 0): the change runs across the start line
    bot = BotCar(stadium, start, INNER, cfg, np.random.default_rng(7))
    bot.step(draws[0] - 0.2)
    assert bot.pose == pytest.approx((3.0 + 0.5 * draws[0] - 0.1, 0.25, 0.0)) and not bot.changing
    bot.step(0.2 - 1e-6)
    assert not bot.changing and bot.offset == pytest.approx(0.25)
    bot.step(1e-6)
    assert bot.changing and bot.offset == pytest.approx(0.25)
    bot.step(1.0)  # half way: 0.5 m of the 1 m change, at 0.5 m/s
    x, y, yaw = bot.pose
    assert (x, y) == pytest.approx((3.0 + 0.5 * draws[0] + 0.5, 0.0), abs=1e-9) and bot.lane == INNER
    # smoothstep: the offset falls 0.5 m with slope 1.5 * 0.5 / 1 m at mid-change
    assert yaw == pytest.approx(math.atan(-0.75), abs=0.005)
    bot.step(1.0 - 1e-6)
    assert bot.changing and bot.offset == pytest.approx(-0.25, abs=1e-6) and bot.lane == OUTER
    bot.step(1e-6)  # distance / speed = 2 s after it began, it is on the outer midline
    assert not bot.changing and bot.offset == pytest.approx(-0.25)
    assert bot.s == pytest.approx((start + 0.5 * (draws[0] + 2.0)) % stadium.length)
    bot.step(0.2)
    assert bot.pose[1:] == pytest.approx((-0.25, 0.0))
    bot.step(draws[1] - 0.2 - 1e-3)  # the next change comes the second drawn delay after this one ended
    assert not bot.changing and bot.offset == pytest.approx(-0.25)
    bot.step(2e-3)
    assert bot.changing
    bot.step(2.0)
    assert bot.lane == INNER and bot.offset == pytest.approx(0.25)


def test_no_lane_change_unless_asked(stadium):
    cfg = parse_race_config("head-to-bot", {**LANE_CHANGE, "IS_LANE_CHANGE": False})
    bot = BotCar(stadium, 0.0, INNER, cfg, np.random.default_rng(0))
    for _ in range(200):
        bot.step(0.1)
        assert bot.lane == INNER and not bot.changing


def test_path_is_continuous(stadium):
    """Position and heading change smoothly through lane changes, waypoints and curves."""
    cfg = parse_race_config("head-to-bot", {**LANE_CHANGE, "BOT_CAR_SPEED": 1.0, "LOWER_LANE_CHANGE_TIME": 0.3,
                                            "UPPER_LANE_CHANGE_TIME": 0.6, "LANE_CHANGE_DISTANCE": 0.8})
    bot = BotCar(stadium, 3.0, INNER, cfg, np.random.default_rng(1))
    poses, changes = [bot.pose], 0
    for _ in range(6000):  # 6 m at 1 mm a step: the end of the straight and into the first curve
        was = bot.lane
        bot.step(0.001)
        poses.append(bot.pose)
        changes += bot.lane != was
    p = np.array(poses)
    step = np.hypot(*np.diff(p[:, :2], axis=0).T)
    turn = np.abs((np.diff(p[:, 2]) + math.pi) % (2 * math.pi) - math.pi)
    assert changes >= 4
    assert step.max() < 0.0015 and step.min() > 0.0008
    # the sharpest turn: a 0.5 m lane change over 0.8 m (curvature up to 6 * 0.5 / 0.8**2) plus the 2 m curve
    assert turn.max() < 0.001 * (6 * 0.5 / 0.8 ** 2 + 1 / 1.75) * 1.2


def test_freeze(stadium):
    cfg = parse_race_config("head-to-bot", {**LANE_CHANGE, "LOWER_LANE_CHANGE_TIME": 1.0,
                                            "UPPER_LANE_CHANGE_TIME": 1.0})
    bot = BotCar(stadium, 0.0, INNER, cfg, np.random.default_rng(0))
    bot.freeze(2.0)
    bot.step(0.5)
    bot.freeze(1.0)  # already frozen: not longer
    assert bot.frozen == pytest.approx(1.5)
    bot.step(1.0)
    assert bot.s == 0.0
    bot.step(1.0)  # frozen for the first 0.5 s of it
    assert bot.s == pytest.approx(0.25) and bot.frozen == 0.0
    assert not bot.changing  # the lane-change clock stood still too: 1 s of driving comes at t = 3 s
    bot.step(0.49)
    assert not bot.changing
    bot.step(0.02)
    assert bot.changing


def test_seeded_bots_drive_the_same(stadium):
    cfg = parse_race_config("head-to-bot", {**LANE_CHANGE, "RANDOMIZE_BOT_CAR_LOCATIONS": True})

    def drive(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        bots = [BotCar(stadium, s, lane, cfg, rng) for s, lane in bot_layout(stadium, cfg, rng)]
        out = []
        for _ in range(300):
            for bot in bots:
                bot.step(1 / 15)
            out.append([bot.pose for bot in bots])
        return np.array(out)

    assert np.array_equal(drive(5), drive(5))
    assert not np.allclose(drive(5), drive(6))


def test_heading_and_speed_for_the_params(stadium):
    cfg = parse_race_config("head-to-bot", {"BOT_CAR_SPEED": "0.6"})
    bot = BotCar(stadium, stadium.length / 2 + 1.0, INNER, cfg, np.random.default_rng(0))
    assert bot.pose == pytest.approx((4.0, 3.75, math.pi))  # the top straight, driven -x
    assert bot.heading == pytest.approx(math.pi) and bot.speed == 0.6

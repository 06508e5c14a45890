"""The DeepRacer reward `params` and the race rules, pinned with hand-computed cases.

Tracks (tests/conftest.py): `stadium` = CCW loop, waypoint 0 at (5, 0), bottom straight y = 0
driven +x from x = 0 to 10, half circles of radius 2 round (10, 2) and (0, 2), top straight
y = 4 driven -x; 1.0 m wide.  `circle` = a 1.0 m wide loop the car drives at 10 deg steering.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import CIRCLE_STEER_DEG, STRAIGHT_ACTION, stadium_centerline

from sim.env import RewardError
from sim.params import PARAM_KEYS, closest_objects
from sim.track import from_centerline

FRONT = 0.14  # m: the reward x, y lie this far ahead of the car origin
HALF_TRACK = 0.162 / 2  # m: wheel contact points either side of the car's axis
HALF_BASE = 0.164 / 2
DT = 1.0 / 15.0
CIRCLE_ACTIONS = STRAIGHT_ACTION + [{"steering_angle": CIRCLE_STEER_DEG, "speed": 1.0}]

BOOL_KEYS = ("all_wheels_on_track", "is_left_of_center", "is_offtrack", "is_reversed", "is_crashed",
             "object_in_camera")
FLOAT_KEYS = ("x", "y", "heading", "distance_from_center", "progress", "speed", "steering_angle", "steps",
              "track_length", "track_width", "projection_distance", "sim_time")
LIST_KEYS = ("waypoints", "closest_waypoints", "closest_objects", "objects_distance",
             "objects_distance_from_center", "objects_heading", "objects_left_of_center",
             "objects_location", "objects_speed")


def _pose_params(env, x, y, heading):
    _, info = env.reset(options={"pose": (x, y, heading)})
    return info["params"]


# ---- pose: x, y, heading -----------------------------------------------------------------
def test_xy_is_the_point_ahead_of_the_origin(make_env, stadium):
    env = make_env(stadium, action_space=[{"steering_angle": 20.0, "speed": 1.0}])
    p = _pose_params(env, 5.0, 0.1, 30.0)
    assert p["x"] == pytest.approx(5.0 + FRONT * math.cos(math.radians(30)), abs=1e-6)
    assert p["y"] == pytest.approx(0.1 + FRONT * math.sin(math.radians(30)), abs=1e-6)
    assert p["heading"] == pytest.approx(30.0, abs=1e-9)
    # and after turning: still 0.14 m ahead of the origin along the (new) heading
    _, _, _, _, info = env.step(0)
    p, (ox, oy, yaw) = info["params"], env.state[:3]
    assert p["x"] == pytest.approx(ox + FRONT * math.cos(yaw), abs=1e-6)
    assert p["y"] == pytest.approx(oy + FRONT * math.sin(yaw), abs=1e-6)
    assert p["heading"] == pytest.approx(math.degrees(yaw), abs=1e-9)


@pytest.mark.parametrize("given, expected", [(0, 0), (30, 30), (90, 90), (-90, -90), (180, 180),
                                             (-180, 180), (270, -90), (-270, 90), (390, 30)])
def test_heading_degrees_ccw_in_half_open_range(make_env, stadium, given, expected):
    env = make_env(stadium)
    p = _pose_params(env, 5.0, 2.0, given)
    assert p["heading"] == pytest.approx(expected, abs=1e-9)
    assert -180.0 < p["heading"] <= 180.0
    # the front point lies 0.14 m from the origin in the direction of the heading
    a = math.radians(expected)
    assert (p["x"], p["y"]) == pytest.approx((5.0 + FRONT * math.cos(a), 2.0 + FRONT * math.sin(a)), abs=1e-6)


# ---- progress ----------------------------------------------------------------------------
def test_progress_counts_from_this_episodes_start(make_env, stadium):
    env = make_env(stadium, action_space=STRAIGHT_ACTION)
    L = stadium.length
    _, info = env.reset(options={"start": 0.5})  # origin at (5, 4), heading -x
    p0 = info["params"]
    assert p0["progress"] == 0.0
    assert p0["x"] == pytest.approx(5.0 - FRONT, abs=1e-6) and p0["y"] == pytest.approx(4.0, abs=1e-6)
    assert p0["projection_distance"] == pytest.approx(0.5 * L + FRONT, abs=1e-6)
    last = 0.0
    for k in range(1, 31):
        _, _, terminated, _, info = env.step(0)
        p = info["params"]
        assert not terminated
        driven = p0["x"] - p["x"]  # along the top straight, arc distance = x distance
        assert driven > 0
        assert p["progress"] == pytest.approx(100.0 * driven / L, rel=0.005)
        assert p["progress"] > last
        last = p["progress"]
    assert 4.0 < last < 7.0  # ~1.9 m of 32.6 m; from waypoint 0 it would be over 50 %


# ---- closest waypoints ------------------------------------------------------------------
def test_closest_waypoints_by_arc_length(make_env):
    xs = [0.0, 1.0, 2.0, 2.2, 5.0, 10.0, 15.0]  # uneven spacing
    track = from_centerline(np.stack([xs, np.zeros(len(xs))], axis=1), 1.0, closed=False)
    env = make_env(track)
    # front point at x = 2.15: between waypoints 2 (x = 2) and 3 (x = 2.2); 3 is the nearest
    p = _pose_params(env, 2.15 - FRONT, 0.1, 0.0)
    assert p["closest_waypoints"] == [2, 3]
    # front point at x = 5.3: between 4 (x = 5, nearest) and 5 (x = 10)
    p = _pose_params(env, 5.3 - FRONT, -0.1, 0.0)
    assert p["closest_waypoints"] == [4, 5]
    # front point at x = 9.0: between 4 and 5, the nearest is 5
    p = _pose_params(env, 9.0 - FRONT, 0.0, 0.0)
    assert p["closest_waypoints"] == [4, 5]


# ---- sides and direction -----------------------------------------------------------------
@pytest.mark.parametrize("y, left_ccw", [(0.2, True), (-0.2, False)])
def test_left_of_center_in_both_directions(make_env, stadium, y, left_ccw):
    fwd = make_env(stadium)
    p = _pose_params(fwd, 5.0 - FRONT, y, 0.0)  # front point at (5, y), driving +x
    assert (p["x"], p["y"]) == pytest.approx((5.0, y), abs=1e-9)
    assert p["is_left_of_center"] is left_ccw
    assert p["distance_from_center"] == pytest.approx(0.2, abs=1e-9)
    assert p["is_reversed"] is False
    assert p["waypoints"][0] == pytest.approx((5.0, 0.0))
    assert p["waypoints"][1] == pytest.approx((5.25, 0.0))

    rev = make_env(stadium, reverse=True)
    q = _pose_params(rev, 5.0 + FRONT, y, 180.0)  # same front point, driving -x
    assert (q["x"], q["y"]) == pytest.approx((5.0, y), abs=1e-9)
    assert q["is_left_of_center"] is (not left_ccw)
    assert q["distance_from_center"] == pytest.approx(0.2, abs=1e-9)
    assert q["is_reversed"] is True
    assert q["waypoints"] == list(reversed(p["waypoints"]))
    assert q["track_length"] == pytest.approx(p["track_length"])
    # arc lengths run the other way: front at s = 0 forward is s = L reversed (mod L)
    L = stadium.length
    assert min(q["projection_distance"], L - q["projection_distance"]) == pytest.approx(0.0, abs=1e-6)


# ---- wheels and the border ---------------------------------------------------------------
# car parallel to the bottom straight (half width 0.5) with its axis at y = c;
# wheel contacts at y = c +- 0.081
@pytest.mark.parametrize("c, all_on, off", [
    (0.0, True, False),
    (0.4, True, False),       # wheels at 0.481 and 0.319
    (0.418, True, False),     # outer wheels at 0.499: still inside
    (0.420, False, False),    # outer wheels at 0.501: straddling
    (0.5, False, False),      # 0.581 out, 0.419 in
    (0.580, False, False),    # inner wheels at 0.499: one pair still on the road
    (0.582, False, True),     # inner wheels at 0.501: all four out
    (0.7, False, True),
    (-0.45, False, False),    # right side: -0.531 out, -0.369 in
    (-0.6, False, True),
])
def test_all_wheels_on_track_and_offtrack(make_env, stadium, c, all_on, off):
    env = make_env(stadium)
    p = _pose_params(env, 5.0, c, 0.0)
    assert p["all_wheels_on_track"] is all_on
    assert p["is_offtrack"] is off


# ---- local track width -------------------------------------------------------------------
def test_track_width_is_local(make_env):
    center = stadium_centerline()
    widths = 1.0 - 0.1 * center[:, 1]  # 1.0 on the bottom straight, 0.6 on the top, 0.8 at y = 2
    track = from_centerline(center, widths, name="varying")  # one width per given point
    env = make_env(track)
    assert _pose_params(env, 5.0 - FRONT, 0.0, 0.0)["track_width"] == pytest.approx(1.0, abs=1e-9)
    assert _pose_params(env, 5.0 + FRONT, 4.0, 180.0)["track_width"] == pytest.approx(0.6, abs=1e-9)
    # waypoint at (12, 2), the middle of the right half circle (rows 0.8 m wide): the reference's width is
    # the distance between the borders' nearest points to it (simapp's value, worked out with shapely),
    # and the outer border's nearest point lies on an edge of the polygon, not at the row's vertex
    assert _pose_params(env, 12.0, 2.0 - FRONT, 90.0)["track_width"] == pytest.approx(0.7974036365067388, abs=1e-9)
    # between the waypoints at 0 deg (12, 2; width 0.8) and 5 deg (width 1 - 0.1 * (2 + 2 sin 5) = 0.7826)
    # of the right half circle: a width between the two
    a5 = math.radians(5.0)
    mid = np.array([(12.0 + 10.0 + 2 * math.cos(a5)) / 2, (2.0 + 2.0 + 2 * math.sin(a5)) / 2])
    h = math.radians(92.5)  # direction of that chord
    p = _pose_params(env, mid[0] - FRONT * math.cos(h), mid[1] - FRONT * math.sin(h), 92.5)
    assert (p["x"], p["y"]) == pytest.approx(tuple(mid), abs=1e-9)
    assert 1.0 - 0.1 * (2 + 2 * math.sin(a5)) < p["track_width"] < 0.8


# ---- steps -------------------------------------------------------------------------------
def test_reward_first_sees_steps_2(make_env, stadium):
    seen = []

    def reward(params):
        seen[-1].append(params["steps"])
        return 1.0

    env = make_env(stadium, action_space=STRAIGHT_ACTION, reward_fn=reward)
    for episode in range(3):
        seen.append([])
        _, info = env.reset(seed=0 if episode == 0 else None)
        assert info["params"]["steps"] == 1.0  # the prepare step
        for k in range(8):
            _, _, terminated, truncated, info = env.step(0)
            assert not (terminated or truncated)
            assert info["params"]["steps"] == float(k + 2)
    for steps in seen:
        assert steps == [float(k) for k in range(2, 10)]
    assert min(min(s) for s in seen) == 2.0


# ---- keys and types ----------------------------------------------------------------------
def _check_types(p: dict) -> None:
    assert set(p) == set(PARAM_KEYS) and len(PARAM_KEYS) == 27
    for k in BOOL_KEYS:
        assert type(p[k]) is bool, k
    for k in FLOAT_KEYS:
        assert type(p[k]) is float, (k, type(p[k]))
    for k in LIST_KEYS:
        assert type(p[k]) is list, (k, type(p[k]))
    assert all(type(i) is int for i in p["closest_waypoints"])
    assert all(type(i) is int for i in p["closest_objects"])
    assert all(len(w) == 2 and all(type(v) is float for v in w) for w in p["waypoints"])


def test_all_27_keys_with_python_types(make_env, stadium):
    calls = []

    def reward(params):
        calls.append(params)
        return 0.5

    env = make_env(stadium, reward_fn=reward)
    _, info = env.reset(seed=1)
    _check_types(info["params"])
    for _ in range(3):
        _, _, _, _, info = env.step(2)
        _check_types(info["params"])
    assert len(calls) == 3
    for p in calls:
        _check_types(p)
    assert len(calls[0]["waypoints"]) == len(stadium.center)


def test_reward_function_gets_a_copy(make_env, stadium):
    seen = []

    def vandal(params):
        seen.append((len(params["waypoints"]), params["x"], list(params["closest_waypoints"]),
                     len(params["objects_location"]), "y" in params))
        params["waypoints"].clear()
        params["x"] = 99.0
        params["closest_waypoints"].append(5)
        params["closest_objects"][0] = 7
        params["objects_location"].append([1.0, 2.0])
        del params["y"]
        return 1.0

    env = make_env(stadium, action_space=STRAIGHT_ACTION, reward_fn=vandal)
    env.reset(options={"pose": (5.0, 0.0, 0.0)})
    n = len(stadium.center)
    for _ in range(3):
        _, _, _, _, info = env.step(0)
        p = info["params"]
        assert len(p["waypoints"]) == n
        assert p["x"] != 99.0 and "y" in p
        assert len(p["closest_waypoints"]) == 2
        assert p["closest_objects"] == [0, 0]
        assert p["objects_location"] == []
    for count, x, cw, objs, has_y in seen:
        assert count == n and x < 6.0 and len(cw) == 2 and objs == 0 and has_y


# ---- objects -----------------------------------------------------------------------------
def test_time_trial_has_no_objects(make_env, stadium):
    env = make_env(stadium, action_space=STRAIGHT_ACTION)
    _, info = env.reset(seed=0)
    _, _, _, _, step_info = env.step(0)
    for p in (info["params"], step_info["params"]):
        assert p["closest_objects"] == [0, 0]
        for k in ("objects_distance", "objects_distance_from_center", "objects_heading",
                  "objects_left_of_center", "objects_location", "objects_speed"):
            assert p[k] == [], k
        assert p["is_crashed"] is False and p["object_in_camera"] is False


def test_boxes_appear_in_object_params(make_env, stadium):
    env = make_env(stadium)
    L = stadium.length
    env.world.add_box(7.0, 0.3, 0.0, 0.2, 0.2, 0.2)  # 2 m ahead of waypoint 0, left
    env.world.add_box(3.0, -0.25, 0.0, 0.2, 0.2, 0.2)  # 2 m before it, right
    p = _pose_params(env, 5.0, 0.0, 0.0)  # front point at s = 0.14
    assert p["objects_location"] == [[7.0, 0.3], [3.0, -0.25]]
    assert p["objects_distance"] == pytest.approx([2.0, L - 2.0], abs=1e-6)
    assert p["objects_distance_from_center"] == pytest.approx([0.3, 0.25], abs=1e-6)
    assert p["objects_left_of_center"] == [True, False]
    assert p["objects_heading"] == [0.0, 0.0] and p["objects_speed"] == [0.0, 0.0]
    assert p["closest_objects"] == [1, 0]  # [behind, ahead]
    assert p["object_in_camera"] is True  # the next box is 9 deg off the heading (hfov 1.13 rad)
    # turned round at the same place: the next box along the track is behind the camera
    q = _pose_params(env, 5.28, 0.0, 180.0)
    assert q["closest_objects"] == [1, 0]
    assert q["object_in_camera"] is False


def test_closest_objects_take_the_first_of_equals(stadium):
    """Objects as far behind or ahead as another: the first of them (a bot beside a box, two boxes
    abreast), as the reference's index search picks."""
    L = stadium.length
    assert closest_objects(stadium, [2.0, L - 2.0, 2.0, L - 2.0], 0.0) == [1, 0]
    assert closest_objects(stadium, [3.0, 1.0, 3.0, 1.0], 1.0) == [0, 1]  # one object at the car: 0 ahead
    assert closest_objects(stadium, [], 1.0) == []


# ---- reward errors -----------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e6, -1e6, "abc", None, [1.0]])
def test_bad_rewards_raise_naming_the_step(make_env, stadium, bad):
    env = make_env(stadium, action_space=STRAIGHT_ACTION, reward_fn=lambda p: bad)
    env.reset(seed=0)
    with pytest.raises(RewardError, match=r"\bstep 2\b"):
        env.step(0)


@pytest.mark.parametrize("good, value", [(1e5, 1e5), (-1e5, -1e5), (True, 1.0), (3, 3.0),
                                         (np.float32(0.25), 0.25), ("0.5", 0.5), (0.0, 0.0)])
def test_acceptable_rewards_pass_through_float(make_env, stadium, good, value):
    env = make_env(stadium, action_space=STRAIGHT_ACTION, reward_fn=lambda p: good)
    env.reset(seed=0)
    _, reward, _, _, _ = env.step(0)
    assert type(reward) is float and reward == value


# ---- termination in training -------------------------------------------------------------
def _drive(env, action, max_steps, until=()):
    """Step until the episode ends or a status in `until` shows; (infos, terminated, truncated)."""
    infos = []
    for _ in range(max_steps):
        _, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated or info["status"] in until:
            return infos, terminated, truncated
    return infos, False, False


def test_straight_off_a_curve_is_off_track(make_env, stadium):
    calls = []
    env = make_env(stadium, action_space=STRAIGHT_ACTION, reward_fn=lambda p: calls.append(p) or 1.0)
    env.reset(options={"pose": (9.0, 0.0, 0.0)})
    infos, terminated, truncated = _drive(env, 0, 60)
    assert terminated and not truncated
    assert infos[-1]["status"] == "off_track"
    assert all(i["status"] == "in_progress" for i in infos[:-1])
    assert infos[-1]["params"]["is_offtrack"] is True
    assert calls[-1]["is_offtrack"] is True  # the reward is called on the terminal step
    # nearest wheel (rear-left, at x - 0.082, y = 0.081) leaves the 2.5 m outer border of the
    # half circle round (10, 2) when x > 10.082 + sqrt(2.5^2 - 1.919^2) = 11.68
    assert 11.6 < env.state.x < 11.9
    assert abs(env.state.y) < 1e-9


def test_driving_backwards_is_reversed_after_15_steps(make_env, stadium):
    env = make_env(stadium, action_space=STRAIGHT_ACTION)
    env.reset(options={"pose": (8.0, 0.0, 180.0)})  # facing -x on a +x straight
    infos, terminated, _ = _drive(env, 0, 40)
    assert terminated
    assert len(infos) == 15
    assert [i["status"] for i in infos] == ["in_progress"] * 14 + ["reversed"]
    assert infos[-1]["params"]["is_offtrack"] is False
    assert infos[-1]["params"]["all_wheels_on_track"] is True
    assert all(i["params"]["progress"] == 0.0 for i in infos)


def test_lap_complete(make_env, circle):
    env = make_env(circle, action_space=CIRCLE_ACTIONS)
    env.reset(seed=0)
    infos, terminated, truncated = _drive(env, 1, 200)
    assert terminated and not truncated
    last = infos[-1]
    assert last["status"] == "lap_complete"
    assert last["params"]["progress"] == 100.0
    assert last["laps"] == 1 and last["lap_times"] == [pytest.approx(len(infos) * DT)]
    assert all(i["status"] == "in_progress" for i in infos[:-1])
    assert infos[-2]["params"]["progress"] > 97.0
    # ~5.87 m at 1 m/s (plus 1/6 s to accelerate): about 89 steps
    assert 84 <= len(infos) <= 94


# ---- evaluation --------------------------------------------------------------------------
def test_evaluation_off_track_resets_with_penalty(make_env, circle):
    env = make_env(circle, action_space=CIRCLE_ACTIONS, mode="evaluation", laps=1)
    env.reset(seed=0)
    clean, terminated, _ = _drive(env, 1, 300)
    assert terminated and clean[-1]["status"] == "lap_complete"
    clean_time = clean[-1]["lap_times"][0]

    env.reset(seed=0)
    infos, terminated, _ = _drive(env, 0, 60, until=("off_track",))  # straight on: leaves the circle
    assert not terminated
    off = infos[-1]
    assert off["status"] == "off_track" and off["resets"] == 1 and off["off_track_count"] == 1
    best = max(i["params"]["progress"] for i in infos)
    steps_before = len(infos)

    pauses = []
    for _ in range(75):
        _, reward, terminated, truncated, info = env.step(1)
        assert not (terminated or truncated)
        pauses.append(info)
    assert all(i["status"] == "pause" for i in pauses)
    xy = {(i["params"]["x"], i["params"]["y"]) for i in pauses}
    assert len(xy) == 1  # held still
    p = pauses[0]["params"]
    assert p["is_offtrack"] is False and p["distance_from_center"] < 0.02  # back on the centre line
    assert p["progress"] == pytest.approx(best, abs=0.05)  # at the furthest progress
    assert pauses[-1]["sim_time"] == pytest.approx(off["sim_time"] + 5.0)
    assert pauses[-1]["resets"] == 1

    _, _, _, _, moving = env.step(1)
    assert moving["status"] == "in_progress"
    assert (moving["params"]["x"], moving["params"]["y"]) != xy.pop()

    rest, terminated, _ = _drive(env, 1, 300)
    assert terminated and rest[-1]["status"] == "lap_complete"
    total_steps = steps_before + 75 + 1 + len(rest)
    lap_time = rest[-1]["lap_times"][0]
    assert lap_time == pytest.approx(total_steps * DT)
    assert lap_time > clean_time + 5.0 - 0.1  # the penalty is inside the lap time
    assert rest[-1]["resets"] == 1

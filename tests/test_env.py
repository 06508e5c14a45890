"""The Gymnasium env: API checkers, determinism, isolation, track loading, starts, actions."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

from sim.track import TrackError

CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2.0}}
FRONT = 0.14


# ---- API checkers ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {"sensors": ["FRONT_FACING_CAMERA"]},
    {"sensors": ["STEREO_CAMERAS", "LIDAR"]},
    {"sensors": ["LIDAR"]},
    {"sensors": ["FRONT_FACING_CAMERA"], "action_space": CONTINUOUS},
], ids=["camera", "stereo+lidar", "lidar", "continuous"])
def test_gymnasium_and_sb3_checkers(make_env, kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_env("reinvent-like", **kwargs)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert type(reward) is float and isinstance(terminated, bool) and isinstance(truncated, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings (e.g. no render mode) are fine, errors are not
        sb3_check_env(env, warn=True)
        gym_check_env(env)  # last: its close check closes the env (twice)


# ---- determinism -------------------------------------------------------------------------
def _run(make_env, n=200):
    env = make_env("reinvent-like", sensors=["STEREO_CAMERAS", "LIDAR"])
    (x, y), h = env.track.point_at(1.0, 0.3)
    env.world.add_box(float(x), float(y), float(h), 0.3, 0.2, 0.3)  # near the start: lidar readings vary
    acts = np.random.default_rng(7).integers(0, env.action_space.n, n)
    out = []
    obs, info = env.reset(seed=42)
    out.append((obs, 0.0, info["params"], info["status"]))
    for a in acts:
        obs, reward, terminated, truncated, info = env.step(int(a))
        out.append((obs, reward, info["params"], info["status"]))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs, 0.0, info["params"], info["status"]))
    return out


def test_same_seed_same_everything(make_env):
    a, b = _run(make_env), _run(make_env)
    assert len(a) == len(b) >= 201
    assert len({s for *_, s in a}) >= 2  # at least one episode ended on the way
    assert any(o["LIDAR"].min() < 1.0 for o, *_ in a)
    for (oa, ra, pa, sa), (ob, rb, pb, sb) in zip(a, b):
        assert set(oa) == set(ob)
        for k in oa:
            assert np.array_equal(oa[k], ob[k]), k
        assert ra == rb and sa == sb
        assert pa == pb


# ---- isolation ---------------------------------------------------------------------------
def test_two_envs_do_not_see_each_other(make_env, stadium):
    pose = {"pose": (5.0, 0.0, 0.0)}
    a = make_env(stadium, sensors=["FRONT_FACING_CAMERA", "LIDAR"])
    b = make_env(stadium, sensors=["FRONT_FACING_CAMERA", "LIDAR"])
    a0, _ = a.reset(seed=0, options=pose)
    b0, _ = b.reset(seed=0, options=pose)
    a.world.add_box(5.8, 0.0, 0.0, 0.3, 0.3, 0.3)  # ahead of the camera
    a.world.add_box(5.0, 0.4, 0.0, 0.3, 0.2, 0.3)  # 0.3 m to the left: lidar beams at +-90 deg
    a1, ia = a.reset(seed=0, options=pose)
    b1, ib = b.reset(seed=0, options=pose)
    # A sees its boxes ...
    assert np.count_nonzero(a1["FRONT_FACING_CAMERA"] != a0["FRONT_FACING_CAMERA"]) > 500
    assert a1["LIDAR"].min() < 0.45 and a0["LIDAR"].min() == 1.0
    assert len(ia["params"]["objects_location"]) == 2
    # ... B sees nothing of them
    assert np.array_equal(b1["FRONT_FACING_CAMERA"], b0["FRONT_FACING_CAMERA"])
    assert np.array_equal(b1["LIDAR"], b0["LIDAR"]) and b1["LIDAR"].min() == 1.0
    assert ib["params"]["objects_location"] == []
    assert b.world.crashed_into(b.car_index) == []
    # B's car parked on A's box does not crash A's world or B's
    b.reset(seed=0, options={"pose": (5.8, 0.0, 0.0)})
    assert b.world.crashed_into(b.car_index) == []
    assert a.world.crashed_into(a.car_index) == []


# ---- tracks ------------------------------------------------------------------------------
def test_track_by_name_and_by_npy_path(make_env, stadium, tmp_path):
    named = make_env("oval")
    assert named.track.name == "oval" and 8.0 < named.track.length < 10.0
    path = tmp_path / "my_track.npy"
    stadium.save(path)
    for given in (str(path), path):
        env = make_env(given)
        assert env.track.length == pytest.approx(stadium.length, abs=1e-9)
        assert np.allclose(env.track.center, stadium.center)
        _, info = env.reset(options={"pose": (5.0 - FRONT, 0.2, 0.0)})
        assert info["params"]["is_left_of_center"] is True
        assert info["params"]["track_length"] == pytest.approx(stadium.length)


def test_bad_track_path_names_it(make_env, tmp_path):
    missing = tmp_path / "no_such_track.npy"
    with pytest.raises(TrackError, match="no_such_track"):
        make_env(str(missing))
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"this is not numpy")
    with pytest.raises(TrackError) as err:
        make_env(str(garbage))
    assert str(garbage) in str(err.value)
    wrong = tmp_path / "wrong_shape.npy"
    np.save(wrong, np.zeros((10, 4)))
    with pytest.raises(TrackError) as err:
        make_env(str(wrong))
    assert str(wrong) in str(err.value) and "(10, 4)" in str(err.value)


# ---- starts ------------------------------------------------------------------------------
def test_round_robin_start(make_env, stadium):
    env = make_env(stadium)
    L = stadium.length
    starts = [env.reset(seed=0)[1]["params"]["projection_distance"]]
    starts += [env.reset()[1]["params"]["projection_distance"] for _ in range(21)]
    for k, s in enumerate(starts):
        expected = (0.05 * k * L + FRONT) % L  # the front point, 0.14 m ahead of the start point
        assert (s - expected + L / 2) % L - L / 2 == pytest.approx(0.0, abs=2e-3), k
    for s0, s1 in zip(starts, starts[1:]):
        assert (s1 - s0) % L == pytest.approx(0.05 * L, abs=3e-3)
    assert starts[20] == pytest.approx(starts[0], abs=1e-6)  # 20 x 5 % = once round
    assert env.reset(seed=0)[1]["params"]["projection_distance"] == pytest.approx(starts[0])  # a seed restarts it
    assert env.reset()[1]["params"]["progress"] == 0.0


def test_evaluation_always_starts_at_the_line(make_env, stadium):
    env = make_env(stadium, mode="evaluation")
    for k in range(3):
        _, info = env.reset(seed=0 if k == 0 else None)
        assert info["params"]["projection_distance"] == pytest.approx(FRONT, abs=1e-6)


# ---- actions -----------------------------------------------------------------------------
def test_default_action_space_is_the_console_default(make_env, stadium):
    env = make_env(stadium)
    assert env.action_space.n == 10
    meta = env.actions.to_metadata()
    pairs = {(a["steering_angle"], a["speed"]) for a in meta}
    assert pairs == {(s, v) for s in (-30.0, -15.0, 0.0, 15.0, 30.0) for v in (0.5, 1.0)}
    for i, a in enumerate(meta):
        env.reset(options={"pose": (5.0, 0.0, 0.0)})
        _, _, _, _, info = env.step(i)
        assert info["command"] == pytest.approx((a["steering_angle"], a["speed"]))
        assert info["params"]["steering_angle"] == pytest.approx(a["steering_angle"])
        assert info["params"]["speed"] == pytest.approx(a["speed"])


@pytest.mark.parametrize("space, cases", [
    (CONTINUOUS, [([-1, -1], (-30.0, 0.5)), ([1, 1], (30.0, 2.0)), ([0, 0], (0.0, 1.25)),
                  ([0.5, -0.5], (15.0, 0.875)), ([-3, 3], (-30.0, 2.0))]),
    ({"steering_angle": {"low": -10, "high": 20}, "speed": {"low": 1.0, "high": 3.0}},
     [([-1, -1], (-10.0, 1.0)), ([1, 1], (20.0, 3.0)), ([0, 0], (5.0, 2.0)), ([1, -1], (20.0, 1.0))]),
])
def test_continuous_actions_are_rescaled(make_env, stadium, space, cases):
    env = make_env(stadium, action_space=space)
    assert env.action_space.shape == (2,)
    assert np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)
    for action, (steer, speed) in cases:
        env.reset(options={"pose": (5.0, 0.0, 0.0)})
        _, _, _, _, info = env.step(np.array(action, dtype=np.float32))
        assert info["command"] == pytest.approx((steer, speed))
        assert info["params"]["steering_angle"] == pytest.approx(steer)
        assert info["params"]["speed"] == pytest.approx(speed)
        assert math.degrees(env.state.steer) * steer >= 0  # the car turns the commanded way

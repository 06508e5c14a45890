"""Head-to-model: learned policies racing in one world (PettingZoo) and a gym env against frozen opponents
(issue 10, item 5)."""
from __future__ import annotations

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import sim
from racer.bundle.runtime import BundlePolicy
from racer.runs import TrainConfig, env_kwargs, opponent_policy
from sim.actions import parse_action_space
from sim.expert import PurePursuit, avoid_offset
from sim.race_config import START_POS_OFFSET
from bundle_copies import copy_bundle, read_json

BUNDLE = "tests/data/bundle-oval"
FORWARD = next(i for i, (steer, _) in enumerate(parse_action_space(None).actions) if steer == 0)  # default car


def test_parallel_env_passes_the_pettingzoo_api_test():
    env = sim.parallel_env(track="oval", agents=3, sensors=["LIDAR"])
    try:
        parallel_api_test(env, num_cycles=100)
    finally:
        env.close()


def test_parallel_cars_start_on_the_grid_and_see_each_other():
    env = sim.parallel_env(track="oval", agents=3, sensors=["LIDAR"])
    try:
        _, infos = env.reset(seed=0)
        s = [infos[a]["params"]["projection_distance"] for a in env.agents]
        L = env.track.length
        gaps = [(s[i] - s[i + 1]) % L for i in range(2)]
        assert gaps == [pytest.approx(START_POS_OFFSET, abs=0.05)] * 2  # 0.75 m apart behind the line
        sides = [infos[a]["params"]["is_left_of_center"] for a in env.agents]
        assert sides[0] != sides[1] and sides[0] == sides[2]  # alternating lanes
        assert all(len(infos[a]["params"]["objects_location"]) == 2 for a in env.agents)
        assert [infos[a]["position"] for a in env.agents] == [1, 2, 3]
        for _ in range(30):
            _, _, terms, truncs, infos = env.step({a: FORWARD for a in env.agents})
            assert set(terms) == set(infos)
            if not env.agents:
                break
        assert env.agents or all(terms.values())
    finally:
        env.close()


def test_gym_env_races_a_callable_opponent(stadium):
    forward = FORWARD  # the stadium starts on a straight
    env = gymnasium.make("racer/DeepRacer-v0", track=stadium, sensors=["LIDAR"], race="head-to-model",
                         opponents=[lambda obs: forward])
    try:
        _, info = env.reset(seed=0)
        opponent = env.unwrapped.race.cars[1]
        assert len(info["params"]["objects_location"]) == 1
        start = opponent.lap.distance
        for _ in range(20):  # 1.3 s at the action's 0.5 m/s (the learner does the same, ahead of it)
            env.step(forward)
        assert opponent.lap.distance > start + 0.4 and opponent.lap.resets == 0  # it drove
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_a_bundle_drives_as_an_opponent_through_openvino():
    opponent = BundlePolicy.load(BUNDLE)  # a camera model trained on oval
    env = gymnasium.make("racer/DeepRacer-v0", track="oval", sensors=["LIDAR"], race="head-to-model",
                         opponents=[opponent], mode="evaluation", laps=1)
    try:
        env.reset(seed=0)
        e = env.unwrapped
        car = e.race.cars[1]
        assert car.suite.camera_name == "FRONT_FACING_CAMERA" and car.suite.lidar_name is None
        expert = PurePursuit(max_speed=1.0)
        for _ in range(150):  # 10 s; this car keeps ahead of it with the scripted driver
            e.step_command(*expert.command(e.driving, e.state, avoid_offset(e.params)))
        assert car.lap.resets == 0 and (car.lap.distance > 4.0 or car.lap.laps_done >= 1)
    finally:
        env.close()


def test_head_to_model_needs_opponents():
    with pytest.raises(ValueError, match="needs at least one"):
        gymnasium.make("racer/DeepRacer-v0", track="oval", sensors=["LIDAR"], race="head-to-model")


def test_an_opponent_bundle_is_loaded_once_per_process(tmp_path):
    """Every env of a run (and its evaluations) shares one compiled opponent; a changed bundle is loaded anew."""
    bundle = copy_bundle(tmp_path / "rival")
    cfg = TrainConfig(reward="r.py", metadata=read_json(bundle / "model_metadata.json"), track="oval",
                      race="head-to-model", opponents=[str(bundle)])
    first, second = (env_kwargs(cfg, cfg.car())["opponents"][0] for _ in range(2))
    assert first is second and isinstance(first, BundlePolicy)
    meta = bundle / "bundle.json"
    meta.write_text(meta.read_text() + "\n")  # the same bundle, written again
    assert opponent_policy(bundle) is not first

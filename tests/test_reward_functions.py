"""The example reward functions shipped in racer/reward_functions run unchanged in the simulator."""
import importlib.util
import math
from pathlib import Path

import gymnasium as gym
import pytest

import sim
from racer.reward import example_rewards
from sim.expert import PurePursuit, expert_policy

FUNCTIONS = list(example_rewards().values())
CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2.0}}


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_function


def first_reward(fn, offset: float, action, heading_offset: float = 0.0, steps: int = 1) -> float:
    """Reward of step `steps` from a pose `offset` m left of the centre line on reinvent-like."""
    env = gym.make(sim.ENV_ID, track="reinvent-like", sensors=["LIDAR"], reward_fn=fn,
                   action_space=CONTINUOUS)
    track = env.unwrapped.track
    (x, y), yaw = track.point_at(8.0, offset)
    env.reset(seed=0, options={"pose": (x, y, math.degrees(yaw) + heading_offset)})
    for _ in range(steps):
        _, reward, *_ = env.step(action)
    env.close()
    return reward


def test_all_four_examples_are_there():
    assert {p.stem for p in FUNCTIONS} >= {"follow_center", "stay_inside_borders", "prevent_zigzag",
                                           "progress_per_step"}


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.stem)
def test_runs_unchanged_for_a_lap(path):
    fn = load(path)
    env = gym.make(sim.ENV_ID, track="reinvent-like", sensors=["LIDAR"], reward_fn=fn, action_space=CONTINUOUS)
    policy = expert_policy(PurePursuit(max_speed=1.5))
    obs, info = env.reset(seed=0)
    rewards = []
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(policy(obs, env))
        rewards.append(r)
        done = term or trunc
    env.close()
    assert info["status"] == "lap_complete"
    assert all(isinstance(r, float) and math.isfinite(r) for r in rewards)
    assert max(rewards) > 1e-3  # the expert earns more than the floor value somewhere


def test_follow_center_bands():
    fn = load(FUNCTIONS[[p.stem for p in FUNCTIONS].index("follow_center")])
    straight = [0.0, 0.0]  # steering 0, mid speed
    assert first_reward(fn, 0.0, straight) == 1.0
    assert first_reward(fn, 0.15, straight) == 0.5  # 0.076 < d <= 0.19 of a 0.76 m road
    assert first_reward(fn, 0.30, straight) == 0.1


def test_prevent_zigzag_halves_hard_steering():
    fn = load(FUNCTIONS[[p.stem for p in FUNCTIONS].index("prevent_zigzag")])
    assert first_reward(fn, 0.0, [0.0, 0.0]) == 1.0
    assert first_reward(fn, 0.0, [1.0, 0.0]) == 0.5  # 30 degrees > 15


def test_progress_per_step_prefers_speed_and_heading():
    fn = load(FUNCTIONS[[p.stem for p in FUNCTIONS].index("progress_per_step")])
    slow, fast = first_reward(fn, 0.0, [0.0, -1.0], steps=8), first_reward(fn, 0.0, [0.0, 1.0], steps=8)
    assert 0 < slow < fast
    assert first_reward(fn, 0.0, [0.0, 1.0], heading_offset=40.0) < first_reward(fn, 0.0, [0.0, 1.0])


def test_lane_and_progress_pays_for_the_lane_free_of_the_box_ahead():
    """A box 1.5 m ahead in the left lane: driving the right lane pays more than the left one; with no
    box, anywhere between the lanes' midlines pays alike and less towards a border; a box beside the car
    counts until the car is past it."""
    fn = load(FUNCTIONS[[p.stem for p in FUNCTIONS].index("lane_and_progress")])

    def reward(offset: float, race: str, positions: tuple[str, ...] = (f"{9.5 / 17.7},1",)) -> float:
        boxes = {"OBJECT_POSITIONS": list(positions)} if race != "time-trial" else None  # inner = left
        env = gym.make(sim.ENV_ID, track="reinvent-like", sensors=["LIDAR"], reward_fn=fn, action_space=CONTINUOUS,
                       race=race, race_config=boxes)
        track = env.unwrapped.track
        (x, y), yaw = track.point_at(8.0, offset)
        env.reset(seed=0, options={"pose": (x, y, math.degrees(yaw))})
        for _ in range(4):
            _, r, *_ = env.step([0.0, 0.0])
        env.close()
        return r

    lane = 0.19  # a quarter of reinvent-like's 0.76 m width
    assert reward(-lane, "object-avoidance") > reward(0.0, "object-avoidance") > reward(lane, "object-avoidance")

    def paid(offset: float) -> float:  # 0.1 m of progress at `offset` with no object about
        base = {"track_length": 20.0, "track_width": 0.8, "is_offtrack": False, "is_crashed": False,
                "distance_from_center": abs(offset), "is_left_of_center": offset > 0, "projection_distance": 5.0,
                "objects_distance": [], "objects_left_of_center": []}
        fn(base | {"steps": 1, "progress": 0.0})
        return fn(base | {"steps": 3, "progress": 0.5})

    assert paid(0.0) == paid(0.2) == paid(-0.2) == pytest.approx(1.0)  # 10 a metre between the midlines
    assert paid(0.0) > paid(-0.3) > paid(0.4) == pytest.approx(0.5)  # towards a border, less
    # in the right lane beside a box in the left one: the box beside decides until the car is past it,
    # whichever lane the next box (1 m ahead) is in
    then_right, then_left = (f"{8.0 / 17.7},1", f"{9.2 / 17.7},-1"), (f"{8.0 / 17.7},1", f"{9.2 / 17.7},1")
    assert reward(-lane, "object-avoidance", then_right) == pytest.approx(reward(-lane, "object-avoidance", then_left))
    assert reward(-lane, "object-avoidance", then_left) > 0.1

"""The scripted expert driving evaluation laps (`racer drive`)."""
from __future__ import annotations

import gymnasium as gym

import sim  # noqa: F401  (registers the env)
from sim.car import CarSpec
from sim.expert import PurePursuit, expert_policy
from sim.laps import LapResult, run_laps


def drive_expert(track: str, laps: int = 3, max_speed: float = 1.0, reverse: bool = False,
                 seed: int = 0, start: float = 0.0, race: str = "time-trial",
                 race_config: dict | None = None) -> list[LapResult]:
    """Evaluation laps of the pure-pursuit expert under `max_speed`, from `start` (track fraction), in
    `race` with its `race_config`."""
    car = CarSpec()
    space = {"steering_angle": {"low": -car.max_steer_deg, "high": car.max_steer_deg},
             "speed": {"low": car.min_speed, "high": max_speed}}
    env = gym.make(sim.ENV_ID, track=track, sensors=["LIDAR"], mode="evaluation", laps=laps,
                   reverse=reverse, action_space=space, race=race, race_config=race_config)
    try:
        return run_laps(env, expert_policy(PurePursuit(max_speed=max_speed)), seed=seed, options={"start": start})
    finally:
        env.close()

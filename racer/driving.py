"""The scripted expert driving evaluation laps (`racer drive`)."""
from __future__ import annotations

import gymnasium as gym

import sim  # noqa: F401  (registers the env)
from racer.laps import LapResult, run_laps
from sim.expert import PurePursuit, expert_policy


def drive_expert(track: str, laps: int = 3, max_speed: float = 1.0, reverse: bool = False,
                 seed: int = 0, start: float = 0.0) -> list[LapResult]:
    """Evaluation laps of the pure-pursuit expert under `max_speed`, from `start` (track fraction)."""
    env = gym.make(sim.ENV_ID, track=track, sensors=["LIDAR"], mode="evaluation", laps=laps,
                   reverse=reverse, action_space={"steering_angle": {"low": -30, "high": 30},
                                                  "speed": {"low": 0.1, "high": max_speed}})
    try:
        return run_laps(env, expert_policy(PurePursuit(max_speed=max_speed)), seed=seed,
                        options={"start": start})
    finally:
        env.close()

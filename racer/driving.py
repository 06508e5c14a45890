"""The scripted expert driving evaluation laps (`racer drive`), alone or against scripted opponents."""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

import sim  # noqa: F401  (registers the env)
from sim.car import CarSpec
from sim.expert import PurePursuit, ScriptedOpponent, expert_policy
from sim.laps import LapResult, run_laps


@dataclass(frozen=True)
class Standing:
    """A car's place when the first car's laps ended: laps done, their total time (penalties included), how
    far into its current lap it is, and its resets (crashes and off tracks) so far."""

    car: str
    laps: int
    time_s: float
    progress: float
    resets: int


def drive_race(track: str, laps: int = 3, max_speed: float = 1.0, reverse: bool = False, seed: int = 0,
               start: float = 0.0, race: str = "time-trial", race_config: dict | None = None,
               opponents: int = 0) -> tuple[list[LapResult], list[Standing]]:
    """Evaluation laps of the pure-pursuit expert under `max_speed`, from `start` (track fraction), in `race`
    with its `race_config`; in a head-to-model race against `opponents` scripted copies of it (same speed
    limit) starting on the grid behind.  Returns the expert's laps and every car's standing, first first."""
    car = CarSpec()
    space = {"steering_angle": {"low": -car.max_steer_deg, "high": car.max_steer_deg},
             "speed": {"low": car.min_speed, "high": max_speed}}
    rivals = [ScriptedOpponent(PurePursuit(max_speed=max_speed)) for _ in range(opponents)]
    env = gym.make(sim.ENV_ID, track=track, sensors=["LIDAR"], mode="evaluation", laps=laps,
                   reverse=reverse, action_space=space, race=race, race_config=race_config, opponents=rivals)
    try:
        results = run_laps(env, expert_policy(PurePursuit(max_speed=max_speed)), seed=seed, options={"start": start})
        cars = env.unwrapped.race.standings()
        names = {c.index: "expert" if k == 0 else f"opponent {k}" for k, c in enumerate(env.unwrapped.race.cars)}
        return results, [Standing(names[c.index], c.lap.laps_done, sum(c.lap.lap_times), c.lap.progress,
                                  c.lap.resets) for c in cars]
    finally:
        env.close()


def drive_expert(track: str, laps: int = 3, max_speed: float = 1.0, reverse: bool = False,
                 seed: int = 0, start: float = 0.0, race: str = "time-trial",
                 race_config: dict | None = None) -> list[LapResult]:
    """The expert's evaluation laps alone (see `drive_race`): the reference lap times of a race."""
    return drive_race(track, laps, max_speed, reverse, seed, start, race, race_config)[0]

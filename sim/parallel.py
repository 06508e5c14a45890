"""Head-to-model races as a PettingZoo `ParallelEnv`: N learned policies on one track, each seeing the
others in its cameras and LIDAR and getting its own params and reward.

    env = sim.parallel_env(track="reinvent-like", agents=2, sensors=["STEREO_CAMERAS", "LIDAR"])
    observations, infos = env.reset(seed=0)
    while env.agents:
        actions = {agent: policy(observations[agent]) for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)

Cars start on the reference's grid (car i START_POS_OFFSET x i metres behind the line, alternating
lanes).  An agent whose episode ended leaves the race (its car is taken off the track) until the
next reset; `infos[agent]["position"]` is its place in the race (1 = leading: more laps, then the
earlier finish with penalties inside the times, then the further progress).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from sim.actions import parse_action_space
from sim.car import CarSpec
from sim.env import race_rules, resolve_track
from sim.layout import lane_pose, start_grid
from sim.observation import LidarConfig, SensorSuite, observation_shapes
from sim.params import default_reward
from sim.race import Race
from sim.race_config import RaceConfig, parse_race_config
from sim.track import Track


class RaceParallelEnv(ParallelEnv):
    """N cars racing ("car_0", "car_1", ...) with the same sensors and action space."""

    metadata = {"name": "racer_head_to_model_v0", "render_modes": []}

    def __init__(self, track: str | Path | Track = "reinvent-like", agents: int = 2,
                 sensors: Sequence[str] = ("FRONT_FACING_CAMERA",), action_space: list | dict | None = None,
                 action_space_type: str | None = None, race_config: RaceConfig | dict | str | Path | None = None,
                 reward_fns: Callable[[dict], Any] | Sequence[Callable[[dict], Any]] | None = None,
                 mode: str = "training", laps: int | None = None, lidar: LidarConfig | dict | None = None) -> None:
        if not isinstance(agents, int) or agents < 2:
            raise ValueError(f"agents: a head-to-model race needs at least 2 cars, got {agents!r}")
        self.track = resolve_track(track)
        config = race_config if isinstance(race_config, RaceConfig) else \
            parse_race_config("head-to-model", race_config)
        self.config = config
        lidar_cfg = LidarConfig.from_overrides(lidar) if isinstance(lidar, dict) or lidar is None else lidar
        self.suite = SensorSuite(tuple(sensors), lidar=lidar_cfg)
        self.actions = parse_action_space(action_space, action_space_type)
        self.possible_agents = [f"car_{i}" for i in range(agents)]
        fns = list(reward_fns) if isinstance(reward_fns, (list, tuple)) else [reward_fns] * agents
        if len(fns) != agents:
            raise ValueError(f"reward_fns: {len(fns)} given for {agents} agents")
        self.race = Race(self.track, race_rules(config, mode, laps or (3 if mode == "evaluation" else 1)), config)
        self._cars = {name: self.race.add_car(CarSpec(), self.suite, fn or default_reward, np.random.default_rng())
                      for name, fn in zip(self.possible_agents, fns)}
        shapes = observation_shapes(self.suite)
        self._obs_space = gym.spaces.Dict({
            name: gym.spaces.Box(low, high, shape, dtype) for name, (shape, dtype, low, high) in shapes.items()})
        self._act_space = gym.spaces.Discrete(self.actions.n) if self.actions.kind == "discrete" else \
            gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> gym.spaces.Dict:
        return self._obs_space

    def action_space(self, agent: str) -> gym.spaces.Space:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        """A new race from the start grid (options: "start", a fraction of the track for the line)."""
        rng = np.random.default_rng(seed)
        for i, car in enumerate(self._cars.values()):
            if car.lidar:
                car.lidar.rng = np.random.default_rng(rng.integers(2**63))
        start = (options or {}).get("start", 0.0) * self.track.length
        grid = start_grid(self.track, len(self._cars), self.config.start_pos_offset, start)
        self.race.reset(self.track, [lane_pose(self.track, s, lane) for s, lane in grid], rng=rng)
        self.agents = list(self.possible_agents)
        return {a: self.race.observe(self._cars[a]) for a in self.agents}, \
            {a: self._info(a) for a in self.agents}

    def step(self, actions: dict[str, Any]):
        """Every remaining agent's action at once; a missing action is a car standing still."""
        commands = [(*self.actions.command(actions[a]), None) if a in actions and a in self.agents else None
                    for a in self.possible_agents]
        results = dict(zip(self.possible_agents, self.race.step(commands)))
        acting = list(self.agents)
        obs = {a: self.race.observe(self._cars[a]) for a in acting}
        rewards = {a: results[a].reward for a in acting}
        terminations = {a: results[a].terminated for a in acting}
        truncations = {a: results[a].truncated for a in acting}
        infos = {a: self._info(a) for a in acting}
        for a in acting:
            if terminations[a] or truncations[a]:
                self.race.retire(self._cars[a])
        self.agents = [a for a in acting if not (terminations[a] or truncations[a])]
        return obs, rewards, terminations, truncations, infos

    def _info(self, agent: str) -> dict:
        order = self.race.standings()
        car = self._cars[agent]
        return {**self.race.info(car), "position": order.index(car) + 1}

    def close(self) -> None:
        self.race.close()


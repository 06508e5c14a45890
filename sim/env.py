"""The Gymnasium environment `racer/DeepRacer-v0`: one car, DeepRacer rules and params."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sim import rules as R
from sim.actions import parse_action_space
from sim.car import CarSpec, CarState
from sim.lidar import Lidar
from sim.observation import (CameraConfig, LidarConfig, SensorSuite, camera_observation, observation_shapes)
from sim.layout import lane_pose, start_grid
from sim.race import Race, RaceCar
from sim.race_config import RACE_TYPES, RaceConfig, RaceConfigError, parse_race_config
from sim.params import default_reward
from sim.render import CameraRig
from sim.reward_check import RewardError, check_reward  # noqa: F401  (RewardError re-exported)
from sim.track import Track, load
from sim.world import World

RACES = RACE_TYPES
Opponent = Callable[[dict], Any]  # obs -> action; or an object with `sensors` and `command(obs) -> (deg, m/s)`,
# or with `drive(race, car) -> (deg, m/s)`


def race_rules(config: RaceConfig, mode: str, laps: int) -> R.RaceRules:
    """The rules of a race: DeepRacer's defaults, with the penalties and resets the config gives."""
    given = {"off_track_penalty": config.off_track_penalty, "collision_penalty": config.collision_penalty,
             "max_resets": config.number_of_resets}
    return R.RaceRules(mode=mode, laps=laps, **{k: v for k, v in given.items() if v is not None})


@lru_cache(maxsize=16)
def _cached_track(key: str, mtime: float) -> Track:
    return load(key)


def resolve_track(track: str | Path | Track) -> Track:
    """A Track from a Track, a bundled track's name or a `.npy` path (loaded once per process)."""
    if isinstance(track, Track):
        return track
    p = Path(track)
    return _cached_track(str(track), p.stat().st_mtime if p.exists() else 0.0)


@lru_cache(maxsize=16)
def _reversed(track: Track) -> Track:
    return track.reversed()


class DeepRacerEnv(gym.Env):
    """A DeepRacer car on a track.  Observations are a Dict keyed by sensor name.

    Args:
        track: a bundled track's name, a DeepRacer `.npy` path, or a Track.
        sensors: DeepRacer sensor names (one camera and/or one lidar).
        action_space: `model_metadata.json` form (list of actions, or ranges); None = default car.
        race: race type, one of RACES.
        race_config: the race's knobs in DeepRacer's spelling (NUMBER_OF_OBSTACLES, OBJECT_POSITIONS,
            NUMBER_OF_BOT_CARS, ...): a dict, a YAML file or a RaceConfig (see sim.race_config).
        reward_fn: `reward_function(params) -> float`; None = follow the centre line.
        mode: "training" (first failure ends the episode) or "evaluation" (resets with penalty).
        laps: laps per evaluation episode.
        reverse: drive the track clockwise; `alternate_direction` flips it every episode.
        start_step: fraction of the track the training start point moves each episode.
        start_offset: where this env's round robin begins (parallel envs spread their starts).
        camera, lidar: CameraConfig / LidarConfig or dicts of overrides (`lidar_config` keys too).
        opponents: head-to-model: the other cars' drivers, frozen policies (an exported bundle's
            BundlePolicy: its own sensors, `command(obs)` in deg and m/s; or a callable `obs -> action` in
            this env's sensors and action space; or a scripted driver with `drive(race, car)` in deg and
            m/s, sim.expert.ScriptedOpponent).  They start on the grid behind this car and race on
            through failures (put back with a penalty) while this env's episode lasts.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, track: str | Path | Track = "reinvent-like",
                 sensors: Sequence[str] = ("FRONT_FACING_CAMERA",),
                 action_space: list | dict | None = None, action_space_type: str | None = None,
                 race: str = "time-trial", race_config: RaceConfig | dict | str | Path | None = None,
                 reward_fn: Callable[[dict], Any] | None = None, mode: str = "training",
                 laps: int | None = None, reverse: bool = False, alternate_direction: bool = False,
                 start_step: float = 0.05, start_offset: float = 0.0, camera: CameraConfig | dict | None = None,
                 lidar: LidarConfig | dict | None = None, car: CarSpec | None = None,
                 rules: R.RaceRules | None = None, render_mode: str | None = None,
                 opponents: Sequence[Opponent] = ()) -> None:
        config = race_config if isinstance(race_config, RaceConfig) else parse_race_config(race, race_config)
        self.track = resolve_track(track)
        self.suite = SensorSuite(tuple(sensors), _config(CameraConfig, camera), _lidar_config(lidar))
        self.actions = parse_action_space(action_space, action_space_type)
        self.spec_car = car or CarSpec()
        self.reverse, self.alternate_direction, self.start_step = reverse, alternate_direction, start_step
        self.start_offset = start_offset
        self.render_mode = render_mode
        self.race_type = config.race

        rules = rules or race_rules(config, mode, laps or (3 if mode == "evaluation" else 1))
        self.race = Race(self.track, rules, config)
        self.car = self.race.add_car(self.spec_car, self.suite, reward_fn or default_reward, np.random.default_rng())
        if (config.race == "head-to-model") != bool(opponents):
            raise RaceConfigError("opponents: a head-to-model race needs at least one (opponents=[policy, ...]; "
                                  "sim.parallel_env races learners against each other), and only it takes them")
        self.opponents = [(opp, self._opponent_car(opp)) for opp in opponents]
        shapes = observation_shapes(self.suite)
        self.observation_space = gym.spaces.Dict({
            name: gym.spaces.Box(low, high, shape, dtype) for name, (shape, dtype, low, high) in shapes.items()})
        if self.actions.kind == "discrete":
            self.action_space = gym.spaces.Discrete(self.actions.n)
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.episode = -1

    # ---- the race and this env's car, as attributes ------------------------------------
    @property
    def rules(self) -> R.RaceRules:
        return self.race.rules

    @rules.setter
    def rules(self, rules: R.RaceRules) -> None:
        self.race.rules = rules

    @property
    def world(self) -> World:
        return self.race.world

    @property
    def car_index(self) -> int:
        return self.car.index

    @property
    def lidar(self) -> Lidar | None:
        return self.car.lidar

    @property
    def state(self) -> CarState:
        return self.car.state

    @property
    def lap(self) -> R.LapState | None:
        return self.car.lap

    @property
    def params(self) -> dict:
        return self.car.params

    @property
    def driving(self) -> Track:
        return self.race.driving

    @property
    def sim_time(self) -> float:
        return self.race.sim_time

    @property
    def command(self) -> tuple[float, float]:
        return self.car.command

    # ---- gymnasium API ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.episode = 0 if seed is not None else self.episode + 1  # a seed restarts the round robin
        is_reversed = self.reverse != (self.alternate_direction and self.episode % 2 == 1)
        driving = _reversed(self.track) if is_reversed else self.track
        if self.car.lidar:
            self.car.lidar.rng = self.np_random
        if "pose" in options:
            x, y, heading_deg = options["pose"]
            start = (float(x), float(y), math.remainder(math.radians(float(heading_deg)), 2 * math.pi))  # (-pi, pi]
        else:
            frac = options.get("start", 0.0 if self.rules.mode == "evaluation"
                               else (self.start_offset + self.episode * self.start_step) % 1.0)
            start = frac * driving.length
        starts = [start]
        if self.opponents:  # the reference's grid: this car first, the opponents behind it
            s0 = float(driving.project(np.array([start[:2]])).s[0]) if isinstance(start, tuple) else start
            grid = [lane_pose(driving, s, lane) for s, lane in
                    start_grid(driving, 1 + len(self.opponents), self.race.config.start_pos_offset, s0)]
            starts = [start if isinstance(start, tuple) else grid[0], *grid[1:]]
        self.race.reset(driving, starts, rng=self.np_random)
        return self._observe(), self.info()

    def step(self, action):
        return self.step_command(*self.actions.command(action))

    def step_command(self, steer_deg: float, speed: float, min_speed: float | None = None):
        """A step driven by a raw command (deg, m/s) instead of an action: what the car's motor
        and servo commands become in the simulator bridge.  `min_speed=0` lets the car stop."""
        assert self.car.lap is not None, "call reset() before step()"
        commands = [(steer_deg, speed, min_speed)] + [self._opponent_command(opp, car) for opp, car in self.opponents]
        result = self.race.step(commands)[0]
        return self._observe(), result.reward, result.terminated, result.truncated, self.info()

    def _opponent_car(self, opponent: Opponent) -> RaceCar:
        sensors = getattr(opponent, "sensors", None)
        suite = SensorSuite(tuple(sensors), lidar=getattr(opponent, "lidar", LidarConfig())) if sensors else self.suite
        car = self.race.add_car(CarSpec(), suite, None, np.random.default_rng())
        car.keeps_racing = True
        return car

    def _opponent_command(self, opponent: Opponent, car: RaceCar) -> tuple[float, float, None]:
        if hasattr(opponent, "drive"):  # a scripted driver reading the ground truth (sim.expert.ScriptedOpponent)
            return (*opponent.drive(self.race, car), None)
        obs = self.race.observe(car)
        if hasattr(opponent, "command"):
            return (*opponent.command(obs), None)
        return (*self.actions.command(opponent(obs)), None)

    def render(self) -> np.ndarray | None:
        """rgb_array: the (left) camera's RGB frame."""
        return self.camera_frames()[0] if self.render_mode == "rgb_array" else None

    def close(self):
        self.race.close()

    def camera_rig(self) -> CameraRig:
        """The renderer of this env's camera(s), made on first use and kept (one per mono/stereo)."""
        return self.race.camera_rig(self.car)

    def _observe(self) -> dict[str, np.ndarray]:
        return self.race.observe(self.car)

    def camera_frames(self) -> list[np.ndarray]:
        """The current raw RGB camera frame(s), left first, as a car's camera driver delivers them."""
        return self.race.camera_frames(self.car)

    def info(self) -> dict:
        """The step's info: `params` (the reward's dict), `status`, `laps`, `lap_times`, `resets`,
        one `<failure>_count` per failure status, `sim_time` (s) and the applied `command` (deg, m/s).
        What `reset` and `step` return as info; the sim bridge reads it between steps."""
        return self.race.info(self.car)


def _config(cls, value):
    if value is None:
        return cls()
    if isinstance(value, dict):
        return replace(cls(), **value)
    return value


def _lidar_config(value: LidarConfig | dict | None) -> LidarConfig:
    return LidarConfig.from_overrides(value) if isinstance(value, dict) or value is None else value


def contract_camera_observation(env: DeepRacerEnv) -> np.ndarray:
    """The camera observation built from raw RGB frames through the observation contract."""
    return camera_observation(env.camera_frames(), env.suite.camera)

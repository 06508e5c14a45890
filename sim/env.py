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
from sim.car import CONTROL_DT, CarSpec, CarState, body_points, clip_command, step_dynamics
from sim.lidar import Lidar
from sim.observation import (CameraConfig, LidarConfig, SensorSuite, camera_observation, lidar_observation,
                             observation_shapes)
from sim.params import ObjectInfo, build_params, copy_params, default_reward, waypoint_list
from sim.render import CameraRig
from sim.reward_check import RewardError, check_reward  # noqa: F401  (RewardError re-exported)
from sim.track import Track, load
from sim.world import World

RACES = ("time-trial",)


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
        race: race type ("time-trial").
        reward_fn: `reward_function(params) -> float`; None = follow the centre line.
        mode: "training" (first failure ends the episode) or "evaluation" (resets with penalty).
        laps: laps per evaluation episode.
        reverse: drive the track clockwise; `alternate_direction` flips it every episode.
        start_step: fraction of the track the training start point moves each episode.
        start_offset: where this env's round robin begins (parallel envs spread their starts).
        camera, lidar: CameraConfig / LidarConfig or dicts of overrides (`lidar_config` keys too).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, track: str | Path | Track = "reinvent-like",
                 sensors: Sequence[str] = ("FRONT_FACING_CAMERA",),
                 action_space: list | dict | None = None, action_space_type: str | None = None,
                 race: str = "time-trial", reward_fn: Callable[[dict], Any] | None = None, mode: str = "training",
                 laps: int | None = None, reverse: bool = False, alternate_direction: bool = False,
                 start_step: float = 0.05, start_offset: float = 0.0, camera: CameraConfig | dict | None = None,
                 lidar: LidarConfig | dict | None = None, car: CarSpec | None = None,
                 rules: R.RaceRules | None = None, render_mode: str | None = None) -> None:
        if race not in RACES:
            raise ValueError(f"race: {race!r} is not one of {', '.join(RACES)}")
        self.track = resolve_track(track)
        self.suite = SensorSuite(tuple(sensors), _config(CameraConfig, camera), _lidar_config(lidar))
        self.actions = parse_action_space(action_space, action_space_type)
        self.spec_car = car or CarSpec()
        self.rules = rules or R.RaceRules(mode=mode, laps=laps or (3 if mode == "evaluation" else 1))
        self.reward_fn = reward_fn or default_reward
        self.reverse, self.alternate_direction, self.start_step = reverse, alternate_direction, start_step
        self.start_offset = start_offset
        self.render_mode = render_mode
        self.race = race

        self.world = World(self.track)
        self.car_index = self.world.add_car(self.spec_car)
        shapes = observation_shapes(self.suite)
        self.observation_space = gym.spaces.Dict({
            name: gym.spaces.Box(low, high, shape, dtype) for name, (shape, dtype, low, high) in shapes.items()})
        if self.actions.kind == "discrete":
            self.action_space = gym.spaces.Discrete(self.actions.n)
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._rigs: dict[bool, CameraRig] = {}
        lidar_name = self.suite.lidar_name
        self.lidar = Lidar(self.world, self.car_index, self.suite.lidar, np.random.default_rng(),
                           reach=self.suite.lidar.observed_range(lidar_name)) if lidar_name else None
        self.episode = -1
        self.driving: Track = self.track
        self._waypoints = waypoint_list(self.track)
        self.state = CarState(0.0, 0.0, 0.0, 0.0, 0.0)
        self.lap: R.LapState | None = None
        self.sim_time, self.steps = 0.0, 1
        self.command = (0.0, 0.0)
        self.params: dict = {}

    # ---- gymnasium API ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.episode = 0 if seed is not None else self.episode + 1  # a seed restarts the round robin
        is_reversed = self.reverse != (self.alternate_direction and self.episode % 2 == 1)
        self.driving = _reversed(self.track) if is_reversed else self.track
        self._waypoints = waypoint_list(self.driving)
        if self.lidar:
            self.lidar.rng = self.np_random
        if "pose" in options:
            x, y, heading_deg = options["pose"]
            yaw = math.remainder(math.radians(float(heading_deg)), 2 * math.pi)  # (-pi, pi]
        else:
            frac = options.get("start", 0.0 if self.rules.mode == "evaluation"
                               else (self.start_offset + self.episode * self.start_step) % 1.0)
            (x, y), yaw = self.driving.point_at(frac * self.driving.length)
            yaw = float(yaw)
        self.state = CarState(float(x), float(y), yaw, 0.0, 0.0)
        self.sim_time, self.steps = 0.0, 1
        self.command = (0.0, 0.0)
        front = self._front_s()
        self.lap = R.LapState(self.driving.length, front, front)
        limit = self.rules.time_limit
        self._time_limit = limit if limit is not None else self.rules.laps * self.driving.length / 0.1
        if self.lidar:
            self.lidar.reset(self.sim_time)
        self.world.set_car_pose(self.car_index, *self.state[:3])
        self._status = R.Status.PREPARE
        self.params = self._measure(crashed=False)
        return self._observe(), self.info()

    def step(self, action):
        return self.step_command(*self.actions.command(action))

    def step_command(self, steer_deg: float, speed: float, min_speed: float | None = None):
        """A step driven by a raw command (deg, m/s) instead of an action: what the car's motor
        and servo commands become in the simulator bridge.  `min_speed=0` lets the car stop."""
        assert self.lap is not None, "call reset() before step()"
        lap, rules = self.lap, self.rules
        self.steps += 1
        self.sim_time += CONTROL_DT
        reward, terminated, truncated = 0.0, False, False
        if lap.pause_left > 1e-9:
            lap.pause_left -= CONTROL_DT
            self.command = (0.0, 0.0)
            self.params = self._measure(crashed=False)
            truncated = self.sim_time >= self._time_limit - 1e-9
            self._status = R.Status.TIME_UP if truncated else R.Status.PAUSE
        else:
            steer, speed = clip_command(self.spec_car, steer_deg, speed, min_speed)
            self.command = (steer, speed)
            old = self.state
            self.state = step_dynamics(self.spec_car, old, math.radians(steer), speed)
            self.world.set_car_pose(self.car_index, *self.state[:3])
            crashed = bool(self.world.objects or len(self.world.cars) > 1) and \
                bool(self.world.crashed_into(self.car_index))
            self.params = self._measure(crashed)
            ds = R.advance(lap, self.params["projection_distance"])
            moved = math.hypot(self.state.x - old.x, self.state.y - old.y)
            status = R.judge(rules, lap, ds, moved, self.params["is_offtrack"], crashed,
                             self.sim_time, self._time_limit)
            self.params["progress"] = 100.0 if status == R.Status.LAP_COMPLETE else lap.progress
            reward = check_reward(self.reward_fn(copy_params(self.params)),
                                  self.steps, self.params)
            self._status = status
            if status == R.Status.LAP_COMPLETE:
                R.complete_lap(lap, self.sim_time)
                terminated = rules.mode == "training" or lap.laps_done >= rules.laps
            elif status in R.FAILURES:
                if rules.mode == "training":
                    terminated = True
                else:
                    R.start_penalty(rules, lap, status)
                    self._put_back()
                    terminated = rules.max_resets is not None and lap.resets > rules.max_resets
            elif status == R.Status.TIME_UP:
                truncated = True
        return self._observe(), reward, terminated, truncated, self.info()

    def render(self) -> np.ndarray | None:
        """rgb_array: the (left) camera's RGB frame."""
        return self.camera_frames()[0] if self.render_mode == "rgb_array" else None

    def close(self):
        self.world.close()

    # ---- internals --------------------------------------------------------------------
    def _front_s(self) -> float:
        return float(self.driving.project(body_points(self.spec_car, self.state)[:1]).s[0])

    def _measure(self, crashed: bool) -> dict:
        """Params of the current pose (progress filled in by the caller)."""
        pts = body_points(self.spec_car, self.state)
        proj = self.driving.project(pts)
        wheels = proj.on_road[1:]
        steer, speed = self.command
        return build_params(
            track=self.driving, waypoints=self._waypoints, x=pts[0, 0], y=pts[0, 1], yaw=self.state.yaw,
            front=proj[:1], wheels_on_road=wheels, steering_angle=steer, speed=speed,
            progress=self.lap.progress if self.lap else 0.0, steps=self.steps, sim_time=self.sim_time,
            is_reversed=self.driving is not self.track, is_crashed=crashed,
            objects=self._objects(), camera_hfov=self.suite.camera.hfov)

    def _objects(self) -> list[ObjectInfo]:
        """Every other object the reward sees: obstacle boxes, then the other cars."""
        w = self.world
        return [ObjectInfo(b.box.x, b.box.y) for b in w.objects] + \
               [ObjectInfo(c.box.x, c.box.y, c.box.yaw) for i, c in enumerate(w.cars) if i != self.car_index]

    def _put_back(self) -> None:
        """Evaluation reset: on the centre line at the lap's furthest progress, standing still."""
        lap = self.lap
        s = lap.start_s + lap.best_distance - self.spec_car.front_point
        (x, y), yaw = self.driving.point_at(s)
        self.state = CarState(float(x), float(y), float(yaw), 0.0, 0.0)
        self.world.set_car_pose(self.car_index, *self.state[:3])
        lap.last_s = self._front_s()
        lap.distance = lap.best_distance

    def camera_rig(self) -> CameraRig:
        """The renderer of this env's camera(s), made on first use and kept (one per mono/stereo)."""
        stereo = self.suite.stereo
        if stereo not in self._rigs:
            self._rigs[stereo] = CameraRig(self.track, self.suite.camera, stereo)
        return self._rigs[stereo]

    def _observe(self) -> dict[str, np.ndarray]:
        obs = {}
        x, y, yaw = self.state[:3]
        if self.suite.camera_name:
            obs[self.suite.camera_name] = self.camera_rig().render(x, y, yaw, self.world.boxes_seen_by(self.car_index))
        if self.lidar:
            beams = self.lidar.update(self.sim_time, x, y, yaw)
            obs[self.suite.lidar_name] = lidar_observation(beams, self.suite.lidar_name, self.suite.lidar)
        return obs

    def camera_frames(self) -> list[np.ndarray]:
        """The current raw RGB camera frame(s), left first, as a car's camera driver delivers them."""
        return list(self.camera_rig().render(*self.state[:3], self.world.boxes_seen_by(self.car_index), rgb=True))

    def info(self) -> dict:
        """The step's info: `params` (the reward's dict), `status`, `laps`, `lap_times`, `resets`,
        one `<failure>_count` per failure status, `sim_time` (s) and the applied `command` (deg, m/s).
        What `reset` and `step` return as info; the sim bridge reads it between steps."""
        lap = self.lap
        return {"params": self.params, "status": self._status, "laps": lap.laps_done,
                "lap_times": list(lap.lap_times), "resets": lap.resets,
                **{f"{k}_count": v for k, v in lap.counts.items()},
                "sim_time": self.sim_time, "command": self.command}


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

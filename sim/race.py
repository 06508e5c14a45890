"""A race: cars on one track in one World (one PyBullet client), stepped together.

Each car has its own pose, lap state, sensors, params and reward.  A step moves every car
first (its command, or standing still during a penalty), then judges each one against the
others' new poses, so no car sees a world half a step old.  `DeepRacerEnv` is the
single-agent adapter over a race; obstacles and bot cars are bodies of the same World.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim import rules as R
from sim.bots import Bots
from sim.car import CONTROL_DT, CarSpec, CarState, body_points, clip_command
from sim.dynamics import step_dynamics
from sim.lidar import Lidar
from sim.observation import SensorSuite, lidar_observation
from sim.layout import (CENTRE, Place, bot_layout, lane_pose, nearest_object, obstacle_layout, reset_spot,
                        start_lane)
from sim.params import NO_OBJECTS, ObjectInfo, build_params, copy_params, join_columns, object_columns, waypoint_list
from sim.race_config import RaceConfig, parse_race_config
from sim.render import CameraRig
from sim.reward_check import check_reward
from sim.track import Track
from sim.world import World

Reward = Callable[[dict], Any]
# m: each OBSTACLE_TYPE's box (length along the track, width, height), the reference's models
BOX_SIZES = {"box_obstacle": (0.4, 0.3, 0.25), "deepracer_box_obstacle": (0.36, 0.265, 0.24),
             "amazon_box_obstacle": (0.4, 0.3, 0.25)}
BOT_SPEC = CarSpec(length=0.32352, width=0.1961)  # the reference's bot car collision box
BOT_COLOR = (40, 120, 220)
RESET_STEP, RESET_TRIES = 0.25, 20  # m back, and how often, from a reset spot that touches a box
_PARKED = (1e3, 1e3)  # where bodies wait for their first layout
_COUNT_KEYS = {status: f"{status.value}_count" for status in R.FAILURES}  # info keys: "off_track_count", ...


@dataclass
class RaceCar:
    """One car of a race: its body in the World, sensors, reward, and its episode's state."""

    index: int  # in World.cars
    spec: CarSpec
    suite: SensorSuite
    reward_fn: Reward | None  # None: no reward is computed (a scripted car, an opponent)
    lidar: Lidar | None = None
    rigs: dict[bool, CameraRig] = field(default_factory=dict)
    state: CarState = CarState(0.0, 0.0, 0.0, 0.0, 0.0)
    lap: R.LapState | None = None
    command: tuple[float, float] = (0.0, 0.0)
    params: dict = field(default_factory=dict)
    status: R.Status = R.Status.PREPARE
    steps: int = 1
    moved: float = 0.0  # m the last step moved the car
    hit: Hit | None = None  # what the car crashed into at its last crash
    box_resets: tuple[int, int] = (-1, 0)  # (box, resets near it in a row): ENABLE_MERCY_RESET's count
    segment_hint: int | None = None  # the centre-line segment of its last projection: a local search next step
    keeps_racing: bool = False  # an opponent: put back after a failure and on after a lap, in training too
    active: bool = True  # False once its agent is done (its body is parked off the track)


@dataclass(frozen=True)
class Hit:
    """What a car crashed into: an obstacle (`kind` "object", index in World.objects), a bot car it was
    behind ("bot", index in Race.bots) or a racing car it was behind ("car", index in World.cars)."""

    kind: str
    index: int


@dataclass
class StepResult:
    """What one car's step gives its agent."""

    reward: float
    terminated: bool
    truncated: bool


class Race:
    """Cars on `track` under `rules`, with the obstacles and bot cars `config` asks for (a race of
    `config.race`); the driving direction and the layout are chosen at each reset."""

    def __init__(self, track: Track, rules: R.RaceRules, config: RaceConfig | None = None) -> None:
        self.track = track
        self.config = config or parse_race_config("time-trial")
        self.rules = rules
        self.world = World(track)
        self.cars: list[RaceCar] = []
        self.driving: Track = track
        self.waypoints = waypoint_list(track)
        self.sim_time = 0.0
        self.time_limit = 0.0
        cfg = self.config
        n_boxes = len(cfg.object_positions) or cfg.number_of_obstacles
        self.boxes: list[Place] = []  # (s, lane) of each box on the driven track
        self._boxes_seen: tuple[tuple, dict] = ((None, -1), NO_OBJECTS)  # (track, World.objects_changed), columns
        for _ in range(n_boxes):
            self.world.add_box(*_PARKED, 0.0, *BOX_SIZES[cfg.obstacle_type])
        self.bots = Bots(track, [], self.config, np.random.default_rng())  # laid out at each reset
        self._bot_bodies = [self.world.add_car(BOT_SPEC, BOT_COLOR) for _ in range(cfg.number_of_bot_cars)]

    def add_car(self, spec: CarSpec, suite: SensorSuite, reward_fn: Reward | None,
                rng: np.random.Generator) -> RaceCar:
        """A new car (parked until the next reset), with its LIDAR when its sensors have one."""
        index = self.world.add_car(spec)
        name = suite.lidar_name
        lidar = Lidar(self.world, index, suite.lidar, rng, reach=suite.lidar.observed_range(name)) if name else None
        car = RaceCar(index, spec, suite, reward_fn, lidar)
        self.cars.append(car)
        return car

    def close(self) -> None:
        self.world.close()

    # ---- episodes ---------------------------------------------------------------------
    def reset(self, driving: Track, starts: list[tuple[float, float, float] | float],
              rng: np.random.Generator | None = None) -> None:
        """Start an episode driving `driving` (the track or its reverse); boxes and bot cars take a new
        layout (drawn with `rng` when the config randomises it); car i starts at `starts[i]`: a pose
        (x, y, yaw), or an arc length where `start_pose` puts it."""
        rng = rng if rng is not None else np.random.default_rng()
        self.driving = driving
        self.waypoints = waypoint_list(driving)
        self.sim_time = 0.0
        limit = self.rules.time_limit
        self.time_limit = limit if limit is not None else self.rules.laps * driving.length / 0.1
        self.place_objects(rng)
        poses = [start if isinstance(start, tuple) else self.start_pose(start) for start in starts]
        for car, (x, y, yaw) in zip(self.cars, poses):
            car.state = CarState(float(x), float(y), float(yaw), 0.0, 0.0)
            car.steps, car.command, car.moved, car.hit, car.active = 1, (0.0, 0.0), 0.0, None, True
            car.box_resets = (-1, 0)
            car.segment_hint = None  # the driving direction may have changed
            self.world.set_car_pose(car.index, *car.state[:3])
        for car in self.cars:
            front = self.front_s(car)
            car.lap = R.LapState(driving.length, front, front)
            if car.lidar:
                car.lidar.reset(self.sim_time)
            car.status = R.Status.PREPARE
            car.params = self.measure(car, crashed=False)

    def place_objects(self, rng: np.random.Generator) -> None:
        """A new layout of the boxes and bot cars on the driven track."""
        if self.world.objects:
            self.boxes = obstacle_layout(self.driving, self.config, rng)
            for j, (s, lane) in enumerate(self.boxes):
                self.world.set_object_pose(j, *lane_pose(self.driving, s, lane))
        if self._bot_bodies:
            self.bots = Bots(self.driving, bot_layout(self.driving, self.config, rng), self.config, rng)
            self.world.set_car_poses(self._bot_bodies, self.bots.poses)

    def start_pose(self, s: float) -> tuple[float, float, float]:
        """Where a car starting at arc length `s` stands: on the centre line, or in the lane free of an
        object within 1 m (the reference's training start)."""
        lane = start_lane(self.driving, s, self.boxes + [(b.s, b.lane) for b in self.bots])
        if lane == CENTRE:
            (x, y), yaw = self.driving.point_at(s)
            return float(x), float(y), float(yaw)
        return lane_pose(self.driving, s, lane)

    def step(self, commands: list[tuple[float, float, float | None] | None]) -> list[StepResult]:
        """One control step: `commands[i]` = (steer deg, speed m/s, min speed or None) for car i, or None
        for a car that stands still this step; returns each car's reward and episode end."""
        self.sim_time += CONTROL_DT
        if self._bot_bodies:
            self.bots.step(CONTROL_DT)
            self.world.set_car_poses(self._bot_bodies, self.bots.poses)
        moving = []
        for car, cmd in zip(self.cars, commands):
            if not car.active:
                moving.append(False)
                continue
            car.steps += 1
            paused = car.lap.pause_left > 1e-9
            if paused:
                car.lap.pause_left -= CONTROL_DT
                car.command = (0.0, 0.0)
            else:
                steer, speed = clip_command(car.spec, *cmd) if cmd is not None else (0.0, 0.0)
                car.command = (steer, speed)
                old = car.state
                car.state = step_dynamics(car.spec, old, math.radians(steer), speed)
                car.moved = math.hypot(car.state.x - old.x, car.state.y - old.y)
                self.world.set_car_pose(car.index, *car.state[:3])
            moving.append(not paused)
        return [self._judge(car, m) if car.active else StepResult(0.0, False, False)
                for car, m in zip(self.cars, moving)]

    def retire(self, car: RaceCar) -> None:
        """Take a car whose agent is done out of the race until the next reset (its body leaves the track)."""
        car.active = False
        self.world.set_car_pose(car.index, *_PARKED, 0.0)

    def standings(self) -> list[RaceCar]:
        """The cars in race order: more laps first, then the earlier finish (penalties are inside the
        times), then the further progress."""
        def key(car: RaceCar) -> tuple:
            lap = car.lap
            return (-lap.laps_done, sum(lap.lap_times) if lap.laps_done else 0.0, -lap.distance)
        return sorted(self.cars, key=key)

    def _judge(self, car: RaceCar, moved: bool) -> StepResult:
        """The car's status, reward and episode end after every car moved."""
        lap, rules = car.lap, self.rules
        if not moved:
            car.params = self.measure(car, crashed=False)
            truncated = self.sim_time >= self.time_limit - 1e-9
            car.status = R.Status.TIME_UP if truncated else R.Status.PAUSE
            return StepResult(0.0, False, truncated)
        hit = self.collision(car)
        crashed = hit is not None
        if crashed:
            car.hit = hit
        car.params = self.measure(car, crashed)
        ds = R.advance(lap, car.params["projection_distance"])
        status = R.judge(rules, lap, ds, car.moved, car.params["is_offtrack"], crashed, self.sim_time,
                         self.time_limit)
        car.params["progress"] = 100.0 if status == R.Status.LAP_COMPLETE else lap.progress
        reward = 0.0
        if car.reward_fn is not None:
            reward = check_reward(car.reward_fn(copy_params(car.params)), car.steps, car.params)
        car.status = status
        terminated = truncated = False
        ends_at_first = rules.mode == "training" and not car.keeps_racing  # a training episode: one lap, no resets
        if status == R.Status.LAP_COMPLETE:
            R.complete_lap(lap, self.sim_time)
            terminated = ends_at_first or lap.laps_done >= rules.laps
        elif status in R.FAILURES:
            if ends_at_first:
                terminated = True
            else:
                R.start_penalty(rules, lap, status)
                self.put_back(car, status)
                terminated = rules.max_resets is not None and lap.resets > rules.max_resets
        elif status == R.Status.TIME_UP:
            truncated = True
        return StepResult(reward, terminated, truncated)

    # ---- what a car senses ------------------------------------------------------------
    def front_s(self, car: RaceCar) -> float:
        """Arc length of the car's front point along the driven track."""
        return float(self.driving.project(body_points(car.spec, car.state)[:1]).s[0])

    def collision(self, car: RaceCar) -> Hit | None:
        """What the car's body overlaps: an obstacle, or another car when this car is behind it (the
        reference's rule: of two cars that touch, the one behind crashed); None."""
        w = self.world
        if not (w.objects or len(w.cars) > 1):
            return None
        hits = set(w.crashed_into(car.index))
        if not hits:
            return None
        for j, body in enumerate(w.objects):
            if body.uid in hits:
                return Hit("object", j)
        for j, index in enumerate(self._bot_bodies):
            if w.cars[index].uid in hits:
                if self._is_behind(car.state, w.cars[index].box):
                    return Hit("bot", j)
                self.bots.freeze(self.config.penalty_seconds)  # it ran into a bot: all stand still (the reference's)
        for other in self.cars:
            body = w.cars[other.index]
            if other is not car and body.uid in hits and self._is_behind(car.state, body.box):
                return Hit("car", other.index)
        return None

    def _is_behind(self, state: CarState, other) -> bool:
        """Whether a car at `state` is behind the body `other` along the driven track."""
        s = self.driving.project(np.array([[state.x, state.y], [other.x, other.y]])).s
        return 0.0 < (s[1] - s[0]) % self.driving.length < self.driving.length / 2

    def measure(self, car: RaceCar, crashed: bool) -> dict:
        """Params of the car's current pose (progress filled in by the caller)."""
        pts = body_points(car.spec, car.state)
        where = self.driving.locate(pts, hint=car.segment_hint)
        car.segment_hint = where.segment
        steer, speed = car.command
        return build_params(
            track=self.driving, waypoints=self.waypoints, x=pts[0, 0], y=pts[0, 1], yaw=car.state.yaw,
            s=where.s, offset=where.offset, segment=where.segment, width=where.width,
            wheels_on_road=where.on_road[1:], steering_angle=steer, speed=speed,
            progress=car.lap.progress if car.lap else 0.0, steps=car.steps, sim_time=self.sim_time,
            is_reversed=self.driving is not self.track, is_crashed=crashed,
            objects=self.objects_seen_by(car), camera_hfov=car.suite.camera.hfov)

    def objects_seen_by(self, car: RaceCar) -> dict[str, list]:
        """The `object_columns` of every other object the car's reward sees: obstacle boxes, bot cars, then
        the other racing cars."""
        w = self.world
        others = [w.cars[o.index].box for o in self.cars if o is not car]
        if others:  # their places are projected, and then every object's (`object_columns`)
            return object_columns(self.driving, [ObjectInfo(b.box.x, b.box.y) for b in w.objects] +
                                  [bot.info for bot in self.bots] + [ObjectInfo(b.x, b.y, b.yaw) for b in others])
        if not self._bot_bodies:
            return self._box_columns()
        bot_columns = self.bots.columns()
        return join_columns(self._box_columns(), bot_columns) if w.objects else bot_columns

    def _box_columns(self) -> dict[str, list]:
        """The boxes' `object_columns` on the driven track, made again only when a box was added or moved."""
        key = (self.driving, self.world.objects_changed)
        if self._boxes_seen[0] != key:
            boxes = [ObjectInfo(b.box.x, b.box.y) for b in self.world.objects]
            self._boxes_seen = (key, object_columns(self.driving, boxes))
        return self._boxes_seen[1]

    def put_back(self, car: RaceCar, status: R.Status) -> None:
        """Evaluation reset, standing still.  Time trial: on the centre line at the lap's furthest progress.
        With obstacles, as the reference: near a box RESET_BEHIND_DIST behind it in the free lane (with
        ENABLE_MERCY_RESET, after MAX_RESETS_AFTER_CRASH resets in a row there, RESET_AHEAD_DIST ahead of it),
        else at the furthest progress on the lane nearer the car."""
        lap = car.lap
        s = lap.start_s + lap.best_distance - car.spec.front_point
        if self.boxes:
            offset = float(self.driving.project(np.array([car.state[:2]])).offset[0])
            s = s % self.driving.length
            spot, lane = reset_spot(self.driving, s, offset, self.boxes, self.config, ahead=self._mercy(car, s))
            x, y, yaw = self._clear_spot(car, spot, lane)
        else:
            (x, y), yaw = self.driving.point_at(s)
        car.state = CarState(float(x), float(y), float(yaw), 0.0, 0.0)
        self.world.set_car_pose(car.index, *car.state[:3])
        if self.boxes:
            R.advance(lap, self.front_s(car))
        else:
            lap.last_s = self.front_s(car)
            lap.distance = lap.best_distance

    def _mercy(self, car: RaceCar, s: float) -> bool:
        """Count a reset near a box; True when this one is the MAX_RESETS_AFTER_CRASH-th there in a row and
        ENABLE_MERCY_RESET is on (then the count starts again)."""
        near = nearest_object(self.driving, s, self.boxes)
        if near is None:
            car.box_resets = (-1, 0)
            return False
        count = car.box_resets[1] + 1 if car.box_resets[0] == near else 1
        mercy = self.config.enable_mercy_reset and count >= self.config.max_resets_after_crash
        car.box_resets = (near, 0 if mercy else count)
        return mercy

    def _clear_spot(self, car: RaceCar, s: float, lane: int) -> tuple[float, float, float]:
        """The pose on `lane` at `s`, else on the other lane there, moved back in RESET_STEP steps while the
        car would touch a box (boxes can stand closer together than the reset distance)."""
        for k in range(RESET_TRIES):
            for side in (lane, -lane):
                pose = lane_pose(self.driving, s - k * RESET_STEP, side)
                self.world.set_car_pose(car.index, *pose)
                if not any(box.uid in self.world.crashed_into(car.index) for box in self.world.objects):
                    return pose
        return pose

    def camera_rig(self, car: RaceCar) -> CameraRig:
        """The renderer of a car's camera(s), made on first use and kept (one per mono/stereo)."""
        stereo = car.suite.stereo
        if stereo not in car.rigs:
            car.rigs[stereo] = CameraRig(self.track, car.suite.camera, stereo)
        return car.rigs[stereo]

    def observe(self, car: RaceCar) -> dict[str, np.ndarray]:
        """The car's observation: one tensor per sensor, as the contract builds them."""
        obs = {}
        x, y, yaw = car.state[:3]
        suite = car.suite
        if suite.camera_name:
            obs[suite.camera_name] = self.camera_rig(car).render(x, y, yaw, self.world.boxes_seen_by(car.index))
        if car.lidar:
            beams = car.lidar.update(self.sim_time, x, y, yaw)
            obs[suite.lidar_name] = lidar_observation(beams, suite.lidar_name, suite.lidar)
        return obs

    def camera_frames(self, car: RaceCar) -> list[np.ndarray]:
        """The car's current raw RGB camera frame(s), left first."""
        return list(self.camera_rig(car).render(*car.state[:3], self.world.boxes_seen_by(car.index), rgb=True))

    def info(self, car: RaceCar) -> dict:
        """The car's step info: `params`, `status`, `laps`, `lap_times`, `resets`, one `<failure>_count`
        per failure status, `sim_time` (s) and the applied `command` (deg, m/s)."""
        lap = car.lap
        return {"params": car.params, "status": car.status, "laps": lap.laps_done,
                "lap_times": list(lap.lap_times), "resets": lap.resets,
                **{_COUNT_KEYS[k]: v for k, v in lap.counts.items()},
                "sim_time": self.sim_time, "command": car.command}

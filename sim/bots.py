"""Scripted bot cars of a head-to-bot race: a lane at constant speed, lane changes, a freeze when hit.

As in the reference's code (the community simapp): a bot's centre-line arc length grows at
BOT_CAR_SPEED; with IS_LANE_CHANGE the next change starts U(LOWER_LANE_CHANGE_TIME,
UPPER_LANE_CHANGE_TIME) seconds of driving after the last one ended (the first that long after
the start) and moves it to the other lane over LANE_CHANGE_DISTANCE metres of travel, that is
distance / speed seconds, along a smooth curve (a smoothstep blend of the two lanes' offsets, so
position and heading are continuous); a collision freezes it for PENALTY_SECONDS, its lane-change
clock included.  The reference freezes every bot at once on a collision with any of them.
"""
from __future__ import annotations

import math

import numpy as np

from sim import kernels
from sim.layout import path_pose
from sim.params import ObjectInfo
from sim.race_config import RaceConfig
from sim.track import Track


class BotCar:
    """One bot car on `track`, starting at arc length `s` on `lane` (1 inner, -1 outer).

    `rng` draws the lane-change delays (once at the start, then at the end of each change), so a
    seeded generator gives the same drive.
    """

    def __init__(self, track: Track, s: float, lane: int, cfg: RaceConfig, rng: np.random.Generator):
        self.track = track
        self.speed = cfg.bot_car_speed  # m/s, configured: what objects_speed reports
        self._cfg = cfg
        self._rng = rng
        self._s0 = float(s)
        self._travel = 0.0  # m driven since the start (arc length)
        self._lane = lane  # the lane driven, or left by the change under way
        self._change_at = self._next_change(0.0)  # travel at which the next (or current) change starts
        self._last_change_at = -math.inf  # travel at which the last finished change started
        self._frozen = 0.0  # s left standing still
        self._info: ObjectInfo | None = None  # made on first use after a step

    def _next_change(self, after: float) -> float:
        if not self._cfg.is_lane_change:
            return math.inf
        delay = self._rng.uniform(self._cfg.lower_lane_change_time, self._cfg.upper_lane_change_time)
        return after + delay * self.speed

    def step(self, dt: float) -> None:
        """Advance `dt` seconds (standing still while frozen)."""
        moving = max(0.0, dt - self._frozen)
        self._frozen = max(0.0, self._frozen - dt)
        self._travel += self.speed * moving
        self._info = None
        length = self._cfg.lane_change_distance
        while self._travel >= self._change_at + length:  # a change ended: on the other lane now
            self._lane = -self._lane
            self._last_change_at = self._change_at
            self._change_at = self._next_change(self._change_at + length)

    def freeze(self, seconds: float) -> None:
        """Stand still for `seconds` (a collision); a bot already frozen is not frozen longer, as the
        reference counts no collision while its bots are paused."""
        self._frozen = max(self._frozen, seconds)

    @property
    def s(self) -> float:
        """Arc length of the bot's origin along the centre line, m, in [0, length)."""
        return (self._s0 + self._travel) % self.track.length

    @property
    def offset(self) -> float:
        """Lateral offset (+ left) of the bot's origin from the centre line, m."""
        return self.info.offset

    @property
    def lane(self) -> int:
        """The lane the bot is nearer: the one it drives, or during a change the one it has passed
        the middle towards."""
        changed = kernels.blend(self._travel, self._change_at, self._cfg.lane_change_distance)
        return -self._lane if changed > 0.5 else self._lane

    @property
    def changing(self) -> bool:
        """True while a lane change is under way."""
        return self._change_at <= self._travel

    @property
    def frozen(self) -> float:
        """Seconds the bot still stands still."""
        return self._frozen

    @property
    def pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of the bot's origin, yaw in radians along its path."""
        return self.info[:3]

    @property
    def heading(self) -> float:
        """Yaw in radians (what objects_heading reports)."""
        return self.info.heading

    @property
    def info(self) -> ObjectInfo:
        """The bot as the reward's params see it: its origin's place on its path (the lane, the last finished
        change and the next or current one: `layout.path_pose`), heading, speed, arc length and offset; made
        once per step."""
        if self._info is None:
            x, y, yaw, offset = path_pose(self.track, self._s0 + self._travel, self._lane, self._s0,
                                          self._last_change_at, self._change_at, self._cfg.lane_change_distance)
            self._info = ObjectInfo(x, y, yaw, self.speed, self.s, offset)
        return self._info

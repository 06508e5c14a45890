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

from sim.layout import lane_offset, path_pose
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
        self._pose: tuple[float, float, float] | None = None  # computed on first use after a step

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
        self._pose = None
        length = self._cfg.lane_change_distance
        while self._travel >= self._change_at + length:  # a change ended: on the other lane now
            self._lane = -self._lane
            self._last_change_at = self._change_at
            self._change_at = self._next_change(self._change_at + length)

    def freeze(self, seconds: float) -> None:
        """Stand still for `seconds` (a collision); a bot already frozen is not frozen longer, as the
        reference counts no collision while its bots are paused."""
        self._frozen = max(self._frozen, seconds)

    def _blend(self, travel: float, change_at: float) -> float:
        """0 before the change starting at `change_at`, 1 after it, a smoothstep in between (C1)."""
        u = min(max((travel - change_at) / self._cfg.lane_change_distance, 0.0), 1.0)
        return u * u * (3.0 - 2.0 * u)

    def _offset_at(self, s: float) -> float:
        """Lateral offset at (unwrapped) arc length `s` of this bot's path, the last finished change
        included (the heading looks a little behind)."""
        travel = s - self._s0
        a = lane_offset(self.track, s, self._lane)
        if self._last_change_at + self._cfg.lane_change_distance <= travel <= self._change_at:
            return a  # on its lane, between changes
        b = lane_offset(self.track, s, -self._lane)
        if travel < self._last_change_at + self._cfg.lane_change_distance:
            return b + (a - b) * self._blend(travel, self._last_change_at)
        return a + (b - a) * self._blend(travel, self._change_at)

    @property
    def s(self) -> float:
        """Arc length of the bot's origin along the centre line, m, in [0, length)."""
        return (self._s0 + self._travel) % self.track.length

    @property
    def offset(self) -> float:
        """Lateral offset (+ left) of the bot's origin from the centre line, m."""
        return self._offset_at(self._s0 + self._travel)

    @property
    def lane(self) -> int:
        """The lane the bot is nearer: the one it drives, or during a change the one it has passed
        the middle towards."""
        return -self._lane if self._blend(self._travel, self._change_at) > 0.5 else self._lane

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
        if self._pose is None:
            self._pose = path_pose(self.track, self._s0 + self._travel, self._offset_at)
        return self._pose

    @property
    def heading(self) -> float:
        """Yaw in radians (what objects_heading reports)."""
        return self.pose[2]

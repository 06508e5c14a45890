"""Scripted bot cars of a head-to-bot race: a lane at constant speed, lane changes, a freeze when hit.

As in the reference's code (the community simapp): a bot's centre-line arc length grows at
BOT_CAR_SPEED; with IS_LANE_CHANGE the next change starts U(LOWER_LANE_CHANGE_TIME,
UPPER_LANE_CHANGE_TIME) seconds of driving after the last one ended (the first that long after
the start) and moves it to the other lane over LANE_CHANGE_DISTANCE metres of travel, that is
distance / speed seconds, along a smooth curve (a smoothstep blend of the two lanes' offsets, so
position and heading are continuous); a collision freezes it for PENALTY_SECONDS, its lane-change
clock included.  The reference freezes every bot at once on a collision with any of them.

A race's bots are stepped together (`Bots`: one compiled call moves and poses them all); `Bot` is a view
of one of them, and `BotCar` a lone bot.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from sim import kernels
from sim.layout import HEADING_STEP, Place, lane_frame
from sim.params import ObjectInfo, place_columns
from sim.race_config import RaceConfig
from sim.track import Track

# the columns of `Bots.state` (as `kernels.move_bots` takes them) and of `Bots.poses`
S0, TRAVEL, LANE, CHANGE_AT, LAST_CHANGE_AT, FROZEN = range(6)
X, Y, YAW, OFFSET, S = range(5)


class Bots:
    """The bot cars on `track`, bot i starting at arc length `places[i][0]` on lane `places[i][1]` (1 inner,
    -1 outer), all stepped at once.

    `rng` draws the lane-change delays (each bot's first at the start, in order, then one at the end of each
    change, bot by bot), so a seeded generator gives the same drive.
    """

    def __init__(self, track: Track, places: Sequence[Place], cfg: RaceConfig, rng: np.random.Generator):
        self.speed = float(cfg.bot_car_speed)  # m/s, configured: what objects_speed reports
        self.span = cfg.lane_change_distance  # m of travel a lane change takes
        self._cfg = cfg
        self._rng = rng
        self._frame = lane_frame(track)
        # each bot's start, travel (m driven), lane (driven, or left by the change under way), travel at which its
        # next (or current) change starts and at which its last finished one started, and seconds frozen
        self.state = np.array([(s, 0.0, lane, self._next_change(0.0), -math.inf, 0.0) for s, lane in places],
                              dtype=float).reshape(-1, 6)
        self.poses = np.empty((len(places), 5))  # each bot's x, y, yaw, offset and arc length (`kernels.bot_poses`)
        self._pose()

    def _next_change(self, after: float) -> float:
        if not self._cfg.is_lane_change:
            return math.inf
        delay = self._rng.uniform(self._cfg.lower_lane_change_time, self._cfg.upper_lane_change_time)
        return after + delay * self.speed

    def _pose(self) -> None:
        f = self._frame
        kernels.bot_poses(f.table, f.length, f.closed, f.inner, self.state, self.span, HEADING_STEP, self.poses)

    def step(self, dt: float) -> None:
        """Advance every bot `dt` seconds (standing still while frozen)."""
        f, length = self._frame, self.span
        if not kernels.move_bots(f.table, f.length, f.closed, f.inner, self.state, dt, self.speed, length,
                                 HEADING_STEP, self.poses):
            return
        for bot in self.state:  # some change ended: that bot is on the other lane now
            while bot[TRAVEL] >= bot[CHANGE_AT] + length:
                bot[LANE] = -bot[LANE]
                bot[LAST_CHANGE_AT] = bot[CHANGE_AT]
                bot[CHANGE_AT] = self._next_change(bot[CHANGE_AT] + length)
        self._pose()

    def freeze(self, seconds: float) -> None:
        """Stand every bot still for `seconds` (a collision); a bot already frozen is not frozen longer, as the
        reference counts no collision while its bots are paused."""
        frozen = self.state[:, FROZEN]
        np.maximum(frozen, seconds, out=frozen)

    def columns(self) -> dict[str, list]:
        """The bots' `params.object_columns`, from their poses."""
        x, y, yaw, offset, s = self.poses.T.tolist()
        return place_columns(s, offset, yaw, list(zip(x, y)), [self.speed] * len(s))

    def __iter__(self) -> Iterator[Bot]:
        return (Bot(self, i) for i in range(len(self.state)))


class Bot:
    """Bot `index` of `bots`, as it stands after their last step."""

    def __init__(self, bots: Bots, index: int):
        self.bots = bots
        self.index = index

    @property
    def speed(self) -> float:
        """m/s, configured: what objects_speed reports."""
        return self.bots.speed

    @property
    def s(self) -> float:
        """Arc length of the bot's origin along the centre line, m, in [0, length)."""
        return float(self.bots.poses[self.index, S])

    @property
    def offset(self) -> float:
        """Lateral offset (+ left) of the bot's origin from the centre line, m."""
        return float(self.bots.poses[self.index, OFFSET])

    @property
    def lane(self) -> int:
        """The lane the bot is nearer: the one it drives, or during a change the one it has passed
        the middle towards."""
        bot = self.bots.state[self.index]
        lane = int(bot[LANE])
        changed = kernels.blend(bot[TRAVEL], bot[CHANGE_AT], self.bots.span)
        return -lane if changed > 0.5 else lane

    @property
    def changing(self) -> bool:
        """True while a lane change is under way."""
        bot = self.bots.state[self.index]
        return bool(bot[CHANGE_AT] <= bot[TRAVEL])

    @property
    def frozen(self) -> float:
        """Seconds the bot still stands still."""
        return float(self.bots.state[self.index, FROZEN])

    @property
    def pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of the bot's origin, yaw in radians along its path."""
        return tuple(self.bots.poses[self.index, :3].tolist())

    @property
    def heading(self) -> float:
        """Yaw in radians (what objects_heading reports)."""
        return float(self.bots.poses[self.index, YAW])

    @property
    def info(self) -> ObjectInfo:
        """The bot as the reward's params see it: its origin's place on its path (the lane, the last finished
        change and the next or current one: `kernels.path_pose`), heading, speed, arc length and offset."""
        x, y, yaw, offset, s = self.bots.poses[self.index].tolist()
        return ObjectInfo(x, y, yaw, self.speed, s, offset)


class BotCar(Bot):
    """A lone bot car on `track`, starting at arc length `s` on `lane` (1 inner, -1 outer): `Bots` of one.

    `rng` draws the lane-change delays (once at the start, then at the end of each change), so a
    seeded generator gives the same drive.
    """

    def __init__(self, track: Track, s: float, lane: int, cfg: RaceConfig, rng: np.random.Generator):
        super().__init__(Bots(track, [(s, lane)], cfg, rng), 0)

    def step(self, dt: float) -> None:
        """Advance `dt` seconds (standing still while frozen)."""
        self.bots.step(dt)

    def freeze(self, seconds: float) -> None:
        """Stand still for `seconds` (a collision); a bot already frozen is not frozen longer."""
        self.bots.freeze(seconds)

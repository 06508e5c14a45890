"""Action spaces in the `model_metadata.json` forms, validated, and mapped to car commands."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.car import CarSpec
from sim.errors import InputError

_CAR = CarSpec()
MAX_STEER, MIN_SPEED, MAX_SPEED = _CAR.max_steer_deg, _CAR.min_speed, _CAR.max_speed  # the default action ranges


class ActionSpaceError(InputError, ValueError):
    """A malformed action space; the message names the offending key."""


@dataclass(frozen=True)
class ActionSpace:
    """Discrete: a tuple of (steering_deg, speed); continuous: steering and speed ranges."""

    kind: str  # "discrete" | "continuous"
    actions: tuple[tuple[float, float], ...] = ()
    steer_range: tuple[float, float] = (-MAX_STEER, MAX_STEER)
    speed_range: tuple[float, float] = (MIN_SPEED, MAX_SPEED)

    @property
    def n(self) -> int:
        return len(self.actions)

    def command(self, action) -> tuple[float, float]:
        """Policy output -> (steering deg, speed m/s): an index, or [-1, 1]^2 rescaled."""
        if self.kind == "discrete":
            return self.actions[int(action)]
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        (s0, s1), (v0, v1) = self.steer_range, self.speed_range
        return s0 + (a[0] + 1) / 2 * (s1 - s0), v0 + (a[1] + 1) / 2 * (v1 - v0)

    def to_metadata(self) -> list | dict:
        """The `action_space` value of model_metadata.json."""
        if self.kind == "discrete":
            return [{"steering_angle": s, "speed": v} for s, v in self.actions]
        return {"steering_angle": {"low": self.steer_range[0], "high": self.steer_range[1]},
                "speed": {"low": self.speed_range[0], "high": self.speed_range[1]}}


def default_action_space() -> ActionSpace:
    """The DeepRacer console's default: 5 steering angles x 2 speeds, max 30 deg and 1 m/s."""
    return ActionSpace("discrete", tuple((float(s), v) for v in (0.5, 1.0) for s in (-30, -15, 0, 15, 30)))


def _number(value, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ActionSpaceError(f"{key}: expected a number, got {value!r}")
    if not np.isfinite(value) or not low <= value <= high:
        raise ActionSpaceError(f"{key}: {value} is outside [{low}, {high}]")
    return float(value)


def parse_action_space(spec, kind: str | None = None) -> ActionSpace:
    """Validate an `action_space` value (list of actions or ranges) from model_metadata.json."""
    if spec is None:
        return default_action_space()
    if isinstance(spec, ActionSpace):
        return spec
    if kind is None:
        kind = "continuous" if isinstance(spec, dict) else "discrete"
    if kind == "discrete":
        if not isinstance(spec, (list, tuple)) or not spec:
            raise ActionSpaceError("action_space: a discrete action space is a non-empty list of "
                                   "{\"steering_angle\": deg, \"speed\": m/s}")
        actions = []
        for i, a in enumerate(spec):
            if not isinstance(a, dict):
                raise ActionSpaceError(f"action_space[{i}]: expected an object, got {a!r}")
            for key in ("steering_angle", "speed"):
                if key not in a:
                    raise ActionSpaceError(f"action_space[{i}].{key}: missing")
            actions.append((_number(a["steering_angle"], f"action_space[{i}].steering_angle", -MAX_STEER, MAX_STEER),
                            _number(a["speed"], f"action_space[{i}].speed", MIN_SPEED, MAX_SPEED)))
        return ActionSpace("discrete", tuple(actions))
    if kind == "continuous":
        if not isinstance(spec, dict):
            raise ActionSpaceError("action_space: a continuous action space is "
                                   "{\"steering_angle\": {\"low\", \"high\"}, \"speed\": {\"low\", \"high\"}}")
        ranges = []
        for key, lo, hi in (("steering_angle", -MAX_STEER, MAX_STEER), ("speed", MIN_SPEED, MAX_SPEED)):
            r = spec.get(key)
            if not isinstance(r, dict) or "low" not in r or "high" not in r:
                raise ActionSpaceError(f"action_space.{key}: expected {{\"low\": ..., \"high\": ...}}, got {r!r}")
            low = _number(r["low"], f"action_space.{key}.low", lo, hi)
            high = _number(r["high"], f"action_space.{key}.high", lo, hi)
            if low >= high:
                raise ActionSpaceError(f"action_space.{key}: low {low} must be below high {high}")
            ranges.append((low, high))
        return ActionSpace("continuous", steer_range=ranges[0], speed_range=ranges[1])
    raise ActionSpaceError(f"action_space_type: {kind!r} is not 'discrete' or 'continuous'")

"""The reference simulator's rules for a reward value (a light module: no PyBullet)."""
from __future__ import annotations

import math
from typing import Any

from sim.errors import InputError

MAX_ABS_REWARD = 1e5


class RewardError(InputError, RuntimeError):
    """A reward function returned something DeepRacer would reject (the job stops)."""


def abbreviated(params: dict) -> dict:
    """Params for an error message: `waypoints` shown by its length only."""
    return {k: (f"<{len(v)} points>" if k == "waypoints" else v) for k, v in params.items()}


def check_reward(value: Any, steps: int, params: dict) -> float:
    """Convert a reward with `float()` and refuse NaN, inf and |r| > 1e5 as DeepRacer does."""
    try:
        r = float(value)
    except (TypeError, ValueError) as exc:
        raise RewardError(f"step {steps}: the reward function returned {value!r}, which is not a "
                          f"number ({exc}); params: {abbreviated(params)}") from exc
    if not math.isfinite(r) or abs(r) > MAX_ABS_REWARD:
        raise RewardError(f"step {steps}: the reward function returned {r}, outside the allowed "
                          f"[-1e5, 1e5] (NaN and inf are refused too); params: {abbreviated(params)}")
    return r

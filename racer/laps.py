"""Running evaluation episodes and reporting them per lap (contract section 8)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import gymnasium as gym

COUNTS = ("off_track", "crashed", "reversed", "immobilized")


@dataclass(frozen=True)
class LapResult:
    """One lap of an evaluation: times in simulated seconds, penalties included."""

    trial: int
    time_s: float
    completion: float  # % of the lap driven (100 for a finished lap)
    off_track: int
    crashed: int
    reversed: int
    immobilized: int
    resets: int
    status: str  # "lap_complete", or how the unfinished lap ended

    @property
    def elapsed_ms(self) -> int:
        return int(round(self.time_s * 1000))

    def as_dict(self) -> dict:
        return asdict(self) | {"elapsed_ms": self.elapsed_ms}


Policy = Callable[[Any, gym.Env], Any]


def run_laps(env: gym.Env, policy: Policy, seed: int = 0, options: dict | None = None) -> list[LapResult]:
    """Drive one evaluation episode with `policy(obs, env) -> action` and report each lap."""
    obs, info = env.reset(seed=seed, options=options)
    laps: list[LapResult] = []
    last = {k: 0 for k in COUNTS} | {"resets": 0, "time": 0.0}
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(policy(obs, env))
        finished = len(info["lap_times"]) > len(laps)
        if finished or terminated or truncated:
            counts = {k: info[f"{k}_count"] - last[k] for k in COUNTS}
            if finished:
                time_s, completion, status = info["lap_times"][-1], 100.0, "lap_complete"
            else:
                time_s = info["sim_time"] - last["time"]
                completion, status = info["params"]["progress"], info["status"]
            laps.append(LapResult(len(laps) + 1, time_s, completion, resets=info["resets"] - last["resets"],
                                  status=status, **counts))
            last = {k: info[f"{k}_count"] for k in COUNTS} | {"resets": info["resets"],
                                                                "time": info["sim_time"]}
    return laps

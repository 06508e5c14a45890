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
BatchPolicy = Callable[[list], list]


class _LapBook:
    """Turns the cumulative counters in `info` into one LapResult per lap."""

    def __init__(self) -> None:
        self.laps: list[LapResult] = []
        self._last = {k: 0 for k in COUNTS} | {"resets": 0, "time": 0.0}

    def update(self, info: dict, done: bool) -> None:
        finished = len(info["lap_times"]) > len(self.laps)
        if not (finished or done):
            return
        last = self._last
        counts = {k: info[f"{k}_count"] - last[k] for k in COUNTS}
        if finished:
            time_s, completion, status = info["lap_times"][-1], 100.0, "lap_complete"
        else:
            time_s = info["sim_time"] - last["time"]
            completion, status = info["params"]["progress"], info["status"]
        self.laps.append(LapResult(len(self.laps) + 1, time_s, completion,
                                   resets=info["resets"] - last["resets"], status=status, **counts))
        self._last = {k: info[f"{k}_count"] for k in COUNTS} | {"resets": info["resets"], "time": info["sim_time"]}


def run_laps_batch(envs: list[gym.Env], predict: BatchPolicy, options: list[dict | None],
                   seed: int = 0) -> list[list[LapResult]]:
    """One evaluation episode per env, stepped in lockstep so `predict(obs_list)` can batch."""
    obs = [env.reset(seed=seed, options=o)[0] for env, o in zip(envs, options)]
    books = [_LapBook() for _ in envs]
    active = list(range(len(envs)))
    while active:
        actions = predict([obs[i] for i in active])
        still = []
        for i, action in zip(active, actions):
            obs[i], _, terminated, truncated, info = envs[i].step(action)
            books[i].update(info, terminated or truncated)
            if not (terminated or truncated):
                still.append(i)
        active = still
    return [b.laps for b in books]


def run_laps(env: gym.Env, policy: Policy, seed: int = 0, options: dict | None = None) -> list[LapResult]:
    """Drive one evaluation episode with `policy(obs, env) -> action` and report each lap."""
    return run_laps_batch([env], lambda obs: [policy(obs[0], env)], [options], seed)[0]

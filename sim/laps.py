"""Evaluation episodes reported per lap (contract section 8): LapResult, LapBook and the runners."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym

from sim.rules import FAILURES, Status


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
    status: Status  # LAP_COMPLETE, or how the unfinished lap ended

    @property
    def elapsed_ms(self) -> int:
        return int(round(self.time_s * 1000))

    @property
    def complete(self) -> bool:
        """The lap was finished."""
        return self.status == Status.LAP_COMPLETE

    @property
    def clean(self) -> bool:
        """Finished without a reset."""
        return self.complete and self.resets == 0

    def as_dict(self) -> dict:
        return asdict(self) | {"status": str(self.status), "elapsed_ms": self.elapsed_ms}


Policy = Callable[[Any, gym.Env], Any]
BatchPolicy = Callable[[list], list]


def mean_lap_time(laps: Iterable[LapResult]) -> float | None:
    """Mean time (s) of the completed laps; None when none was completed."""
    times = [lap.time_s for lap in laps if lap.complete]
    return sum(times) / len(times) if times else None


def start_options(starts: int) -> list[dict]:
    """`reset` options for `starts` start points spread evenly round the track, the first at the line."""
    return [{"start": i / starts} for i in range(starts)]


class LapBook:
    """Turns the cumulative counters of an env's `info` into one LapResult per lap.

    Call `update(info, done)` after every step; `laps` holds the finished laps, and the
    unfinished one too once `done` is true.
    """

    def __init__(self) -> None:
        self.laps: list[LapResult] = []
        self._last = {str(k): 0 for k in FAILURES} | {"resets": 0, "time": 0.0}

    def update(self, info: dict, done: bool) -> None:
        """Book a lap when `info` shows a new lap time, or the episode ended (`done`)."""
        finished = len(info["lap_times"]) > len(self.laps)
        if not (finished or done):
            return
        last = self._last
        counts = {str(k): info[f"{k}_count"] - last[str(k)] for k in FAILURES}
        if finished:
            time_s, completion, status = info["lap_times"][-1], 100.0, Status.LAP_COMPLETE
        else:
            time_s = info["sim_time"] - last["time"]
            completion, status = info["params"]["progress"], Status(info["status"])
        self.laps.append(LapResult(len(self.laps) + 1, time_s, completion,
                                   resets=info["resets"] - last["resets"], status=status, **counts))
        self._last = {str(k): info[f"{k}_count"] for k in FAILURES} | {"resets": info["resets"],
                                                                      "time": info["sim_time"]}


def run_laps_batch(envs: list[gym.Env], predict: BatchPolicy, options: list[dict | None],
                   seed: int = 0) -> list[list[LapResult]]:
    """One evaluation episode per env, stepped in lockstep so `predict(obs_list)` can batch.  Env i is reset
    with `seed + i`: each start gets its own draw of a randomised layout (boxes, bot cars) and sensor noise."""
    obs = [env.reset(seed=seed + i, options=o)[0] for i, (env, o) in enumerate(zip(envs, options))]
    books = [LapBook() for _ in envs]
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

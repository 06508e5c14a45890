"""Race rules: progress and laps, termination order, evaluation resets with penalties.

Checked each step in this order (the reference's): lap complete, off track, crashed,
immobilised, reversed, time up.  In training the first failure ends the episode; in
evaluation the car is put back on the track and held still for a penalty while the clock runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    """A step's race status (the reference's episode_status values); compares equal to its string."""

    PREPARE = "prepare"
    IN_PROGRESS = "in_progress"
    PAUSE = "pause"
    OFF_TRACK = "off_track"
    CRASHED = "crashed"
    IMMOBILIZED = "immobilized"
    REVERSED = "reversed"
    LAP_COMPLETE = "lap_complete"
    TIME_UP = "time_up"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__
    __hash__ = str.__hash__  # a dict keyed by Status finds the plain string too


FAILURES = (Status.OFF_TRACK, Status.CRASHED, Status.IMMOBILIZED, Status.REVERSED)


@dataclass(frozen=True)
class RaceRules:
    """The knobs of the rules (DeepRacer defaults)."""

    mode: str = "training"  # or "evaluation"
    laps: int = 1  # evaluation laps; a training episode ends at its first lap
    off_track_penalty: float = 5.0  # s held still after an off track (also immobilised, reversed)
    collision_penalty: float = 5.0  # s held still after a crash
    max_resets: int | None = None  # evaluation ends after this many resets
    immobilized_steps: int = 15
    immobile_distance: float = 0.003  # m per step under which the car is not moving
    reversed_steps: int = 15
    time_limit: float | None = None  # s of simulated time; None = laps * length / 0.1 m/s

    def __post_init__(self) -> None:
        if self.mode not in ("training", "evaluation"):
            raise ValueError(f"mode: {self.mode!r} is not 'training' or 'evaluation'")
        if self.laps < 1:
            raise ValueError(f"laps: {self.laps} must be at least 1")


@dataclass
class LapState:
    """What the rules remember across steps of one episode."""

    track_length: float
    start_s: float
    last_s: float
    distance: float = 0.0  # m driven along the centre line since the lap started (signed)
    best_distance: float = 0.0  # furthest `distance` reached this lap
    laps_done: int = 0
    lap_start_time: float = 0.0
    lap_times: list[float] = field(default_factory=list)
    still_steps: int = 0
    falling_steps: int = 0
    resets: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FAILURES})
    pause_left: float = 0.0

    @property
    def progress(self) -> float:
        """0-100 % of the lap driven from this lap's start point (never below 0)."""
        return max(0.0, min(100.0, 100.0 * self.distance / self.track_length))


def advance(state: LapState, s: float) -> float:
    """Move the lap distance to arc length `s` (shortest way round); returns the change (m)."""
    L = state.track_length
    ds = (s - state.last_s + L / 2) % L - L / 2
    state.last_s = s
    state.distance += ds
    state.best_distance = max(state.best_distance, state.distance)
    return ds


def judge(rules: RaceRules, state: LapState, ds: float, moved: float, off_track: bool,
          crashed: bool, sim_time: float, time_limit: float) -> Status:
    """The status of a step after the car moved, in the reference's order of checks."""
    state.still_steps = state.still_steps + 1 if moved < rules.immobile_distance else 0
    state.falling_steps = state.falling_steps + 1 if ds < 0 else 0
    if state.distance >= state.track_length:
        return Status.LAP_COMPLETE
    if off_track:
        return Status.OFF_TRACK
    if crashed:
        return Status.CRASHED
    if state.still_steps >= rules.immobilized_steps:
        return Status.IMMOBILIZED
    if state.falling_steps >= rules.reversed_steps:
        return Status.REVERSED
    if sim_time >= time_limit - 1e-9:
        return Status.TIME_UP
    return Status.IN_PROGRESS


def complete_lap(state: LapState, sim_time: float) -> None:
    """Book a finished lap and start the next one from here."""
    state.laps_done += 1
    state.lap_times.append(sim_time - state.lap_start_time)
    state.lap_start_time = sim_time
    state.distance -= state.track_length
    state.best_distance = state.distance


def start_penalty(rules: RaceRules, state: LapState, status: Status) -> None:
    """Count a failure in evaluation and hold the car still for its penalty."""
    state.counts[status] += 1
    state.resets += 1
    state.still_steps = state.falling_steps = 0
    state.pause_left = rules.collision_penalty if status == Status.CRASHED else rules.off_track_penalty

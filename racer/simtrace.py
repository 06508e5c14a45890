"""DeepRacer trace logs (contract section 9): one CSV per training iteration, one row per step.

Community tools (deepracer-utils, the log-analysis notebooks) read these files unchanged: the
header, the column order, Python-style booleans, and `SIM_TRACE_LOG:` log lines all follow the
reference simulator.
"""
from __future__ import annotations

import csv
import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym

from racer.metrics import MetricsWriter
from sim import rules as R

COLUMNS = ("episode", "steps", "X", "Y", "yaw", "steer", "throttle", "action", "reward", "done",
           "all_wheels_on_track", "progress", "closest_waypoint", "track_len", "tstamp", "episode_status",
           "pause_duration", "obstacle_crash_counter", "wall_clock")
REQUIRED = COLUMNS[:16]  # older reference traces stop at episode_status
LOG_PREFIX = "SIM_TRACE_LOG:"
_FILE = re.compile(r"^(\d+)-iteration\.csv$")
_DECIMALS = {"X": 4, "Y": 4, "yaw": 4, "steer": 4, "throttle": 4, "reward": 4, "progress": 4,
             "track_len": 2, "tstamp": 3, "pause_duration": 4, "wall_clock": 3}


def iteration_path(directory: str | Path, iteration: int) -> Path:
    return Path(directory) / f"{iteration}-iteration.csv"


def next_free_iteration(directory: str | Path) -> int:
    """One past the highest `<N>-iteration.csv` in `directory` (0 when there is none)."""
    d = Path(directory)
    found = [int(m.group(1)) for p in d.iterdir() if (m := _FILE.match(p.name))] if d.is_dir() else []
    return max(found, default=-1) + 1


def next_free_episode(directory: str | Path) -> int:
    """One past the highest episode number in the trace CSVs of `directory` (0 when there is none).

    Every env writes a row per step to each iteration's file, so the newest non-empty file holds
    the highest number; a last line cut short by a kill is skipped."""
    d = Path(directory)
    files = sorted(((int(m.group(1)), p) for p in d.iterdir() if (m := _FILE.match(p.name))),
                   reverse=True) if d.is_dir() else []
    for _, path in files:
        with open(path, newline="", encoding="utf-8") as f:
            episodes = [int(row[0]) for row in csv.reader(f) if len(row) >= len(REQUIRED) and row[0].isdigit()]
        if episodes:
            return max(episodes) + 1
    return 0


def format_row(row: Mapping[str, Any]) -> list[str]:
    """The 19 values as the reference writes them: ints, fixed-point floats, `True`/`False`."""
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise KeyError(f"trace row lacks {', '.join(missing)}; a row needs all of {', '.join(COLUMNS)}")
    out = []
    for col in COLUMNS:
        value = row[col]
        if col in _DECIMALS:
            out.append(f"{float(value):.{_DECIMALS[col]}f}")
        elif isinstance(value, float):
            out.append(str(int(value)))  # integral columns that params hold as floats (steps)
        else:
            out.append(str(value))
    return out


class SimTraceWriter:
    """Writes `<directory>/<N>-iteration.csv`, N from `start_iteration` on.

    A file is created (replacing one of the same number) at its first row, so an iteration
    without steps leaves no file.  Rows are flushed at each episode end.  `also_log` receives
    every row as a `SIM_TRACE_LOG:` line: a text stream (one line each) or a callable.
    """

    def __init__(self, directory: str | Path, start_iteration: int = 0,
                 also_log: TextIO | Callable[[str], Any] | None = None):
        if start_iteration < 0:
            raise ValueError(f"start_iteration: {start_iteration} must be >= 0")
        self.directory = Path(directory)
        self.iteration = start_iteration
        self._log = _line_sink(also_log)
        self._file: TextIO | None = None

    @property
    def path(self) -> Path:
        """The current iteration's CSV file."""
        return iteration_path(self.directory, self.iteration)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one step (a mapping with every column of COLUMNS)."""
        line = ",".join(format_row(row))
        if line.count(",") != len(COLUMNS) - 1 or "\n" in line:
            raise ValueError(f"trace row {line!r}: a value contains a comma or newline, which the "
                             f"reference CSV (no quoting) cannot hold")
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8", newline="")
            self._file.write(",".join(COLUMNS) + "\n")
        self._file.write(line + "\n")
        if self._log:
            self._log(LOG_PREFIX + line)

    def end_episode(self) -> None:
        """Flush what is written so far (a killed run loses at most the running episode)."""
        if self._file is not None:
            self._file.flush()

    def next_iteration(self) -> None:
        """Close the current file; following rows go to the next iteration's file."""
        self.close()
        self.iteration += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SimTraceWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _line_sink(target: TextIO | Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    if target is None or callable(target):
        return target
    if hasattr(target, "write"):
        return lambda line: target.write(line + "\n")
    raise TypeError(f"also_log: expected a text stream or a callable, got {type(target).__name__}")


class SimTraceWrapper(gym.Wrapper):
    """Logs every step of one DeepRacerEnv to a SimTraceWriter (and each episode to metrics).

    Episodes are numbered `episode_offset + k * episode_stride` (k = 0, 1, ... per reset), so
    several envs sharing one writer get distinct numbers.  The reset writes the "prepare" row.
    """

    def __init__(self, env: gym.Env, writer: SimTraceWriter, episode_offset: int = 0,
                 episode_stride: int = 1, metrics: MetricsWriter | None = None):
        super().__init__(env)
        if episode_stride < 1:
            raise ValueError(f"episode_stride: {episode_stride} must be >= 1")
        self.writer, self.metrics = writer, metrics
        self.episode_offset, self.episode_stride = episode_offset, episode_stride
        self._k = -1
        self._open = False  # an episode has rows but has not ended
        self._reward = 0.0
        self._start_wall = 0.0
        self._last_info: dict = {}

    @property
    def episode(self) -> int:
        """The number of the current episode in the trace."""
        return self.episode_offset + self._k * self.episode_stride

    def reset(self, **kwargs):
        if self._open:  # abandoned before its end: report it as it stood
            self._end_episode(self._last_info, R.Status.IN_PROGRESS)
        obs, info = self.env.reset(**kwargs)
        self._k += 1
        self._reward, self._start_wall, self._open = 0.0, time.time(), True
        self._write(info, action=None, reward=0.0, done=False)
        self._last_info = info
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        self._reward += float(reward)
        self._write(info, action, reward, done)
        self._last_info = info
        if done:
            self._end_episode(info, R.Status.TIME_UP if truncated and not terminated else info["status"])
        return obs, reward, terminated, truncated, info

    def close(self):
        self.writer.end_episode()
        super().close()

    def _end_episode(self, info: dict, status: str) -> None:
        self._open = False
        self.writer.end_episode()
        if self.metrics is not None:
            self.metrics.add_episode(episode=self.episode, reward=self._reward, progress=info["params"]["progress"],
                                     status=status, sim_seconds=info["sim_time"], start_time=self._start_wall)

    def _write(self, info: dict, action, reward: float, done: bool) -> None:
        p = info["params"]
        env = self.env.unwrapped
        self.writer.write({
            "episode": self.episode, "steps": p["steps"], "X": p["x"], "Y": p["y"], "yaw": p["heading"],
            "steer": p["steering_angle"], "throttle": p["speed"], "action": _action_text(env, action, info),
            "reward": reward, "done": done, "all_wheels_on_track": p["all_wheels_on_track"],
            "progress": p["progress"], "closest_waypoint": closest_waypoint(p), "track_len": p["track_length"],
            "tstamp": info["sim_time"], "episode_status": info["status"],
            "pause_duration": max(0.0, env.lap.pause_left), "obstacle_crash_counter": info["crashed_count"],
            "wall_clock": time.time()})


def _action_text(env, action, info: dict) -> str:
    """The discrete index (-1 before the first action), or `[steer speed]` as commanded."""
    if env.actions.kind == "discrete":
        return "-1" if action is None else str(int(action))
    steer, speed = info["command"]
    return f"[{round(steer, 4)} {round(speed, 4)}]"


def closest_waypoint(params: dict) -> int:
    """The nearer (to x, y) of the two `closest_waypoints`."""
    x, y, wps = params["x"], params["y"], params["waypoints"]
    return min(params["closest_waypoints"], key=lambda i: math.hypot(wps[i][0] - x, wps[i][1] - y))


def _value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def read_trace(path: str | Path) -> list[dict]:
    """The rows of a trace CSV as dicts: numbers converted, `True`/`False` as bools."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: not a DeepRacer trace, it has no column {', '.join(missing)} "
                             f"(the header must start {','.join(REQUIRED)})")
        return [{k: _value(v) for k, v in row.items()} for row in reader]

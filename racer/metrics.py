"""DeepRacer `training_metrics.json` / `evaluation_metrics.json`: one entry per episode.

The file is rewritten atomically after every episode, so it is always valid JSON; opening an
existing file appends to it (a resumed run continues its metrics).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from racer.bundle.files import atomic_write_text
from sim.rules import Status

PHASES = ("training", "evaluation")
VERSION = "2"
# the statuses an episode can end in (or be cut in): "Lap complete", "Off track", ...
STATUS_LABELS = {s: s.value.replace("_", " ").capitalize() for s in Status if s is not Status.PREPARE}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class MetricsWriter:
    """Episode metrics of one phase ("training" or "evaluation") kept in a DeepRacer JSON file.

    `metric_time` and `start_time` are wall-clock epoch milliseconds; `elapsed_time_in_milliseconds`
    is the episode's simulated time (penalties included), as lap times are.
    """

    def __init__(self, path: str | Path, phase: str, autosave: bool = True):
        """`autosave=False`: the owner calls save() (training does, once per PPO iteration, since
        rewriting a file of thousands of episodes after each one would cost more than the episode)."""
        if phase not in PHASES:
            raise ValueError(f"phase: {phase!r} is not one of {', '.join(PHASES)}")
        self.path, self.phase, self.autosave = Path(path), phase, autosave
        self.metrics: list[dict] = self._load() if self.path.exists() else []

    def _load(self) -> list[dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path}: cannot append to it, it is not readable JSON ({exc}); "
                             f"move it away or write the metrics elsewhere") from exc
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
            raise ValueError(f"{self.path}: not a DeepRacer metrics file (expected {{\"metrics\": [...]}}); "
                             f"move it away or write the metrics elsewhere")
        return data["metrics"]

    def add_episode(self, *, episode: int, reward: float, progress: float, status: str, sim_seconds: float,
                    start_time: float, end_time: float | None = None) -> dict:
        """Record a finished episode (`status` a sim status such as "off_track"; times epoch s) and save."""
        if status not in STATUS_LABELS:
            raise ValueError(f"status: {status!r} is not an episode-ending status ({', '.join(STATUS_LABELS)})")
        entry = {
            "reward_score": int(round(reward)),
            "metric_time": _ms(time.time() if end_time is None else end_time),
            "start_time": _ms(start_time),
            "elapsed_time_in_milliseconds": _ms(sim_seconds),
            "episode": int(episode),
            "trial": len(self.metrics) + 1,
            "phase": self.phase,
            "completion_percentage": int(progress),
            "episode_status": STATUS_LABELS[status],
        }
        self.metrics.append(entry)
        if self.autosave:
            self.save()
        return entry

    def save(self) -> None:
        """Write the file atomically (a temporary file, then os.replace)."""
        atomic_write_text(self.path, json.dumps({"metrics": self.metrics, "version": VERSION,
                                                 "best_model_metric": "progress"}))

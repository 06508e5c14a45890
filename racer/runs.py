"""Run directories and their configuration (no torch: evaluation of bundles and the car use it).

Run directory layout::

    config.json            what was asked (track, car, reward, budget, hyperparameters, seed)
    model_metadata.json    the car config (DeepRacer schema)
    reward/<your file>.py  the reward file as trained, under its own name so errors name it
                           (its sha256 is in config.json; `--resume --reward FILE` replaces it)
    track/<name>.npy       a user's .npy track, copied so the run does not depend on where it was
    log.txt                reward-function prints and training messages
    checkpoints/           last.zip (atomic, every checkpoint interval), best.zip, state.json
    tensorboard/           SB3 scalars plus racer/* (progress, lap completion, episode length)
    training-simtrace/     DeepRacer trace CSVs, one per PPO iteration
    metrics/               training_metrics.json, evaluations.jsonl
    .lock                  the PID of the process training here (flock: one trainer at a time)
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from racer.bundle.files import atomic_write_text, read_json
from racer.bundle.hashes import sha256_file
from racer.garage import ModelMetadata, parse_metadata, save_metadata
from sim.errors import InputError


LOCK_FILE = ".lock"  # holds the PID of the process training in the run directory
TRACK_FOLDER = "track"  # a user's .npy track, copied into the run
MAX_ENVS = 64

class TrainError(InputError, RuntimeError):
    """A training request that cannot run, with the reason."""


@dataclass
class TrainConfig:
    """Everything a run needs; saved as config.json so `--resume` rebuilds the same run."""

    reward: str
    metadata: dict
    track: str = "reinvent-like"
    race: str = "time-trial"
    race_config: dict = field(default_factory=dict)  # the race's knobs, DeepRacer spelling (sim.race_config)
    opponents: list = field(default_factory=list)  # head-to-model: exported bundles driving the other cars
    self_play: int = 0  # head-to-model: cars driven by the learner's own latest checkpoint
    seed: int = 0
    envs: int = 4
    steps: int | None = None
    minutes: float | None = 10.0
    hyper: dict = field(default_factory=dict)
    eval_every: int = 5000
    eval_starts: int = 5
    eval_laps: int = 3
    stop_when_lapping: bool = False
    augment: bool = True
    strict: bool = False
    checkpoint_every: int = 2048
    reverse: bool = False
    train_threads: int = min(2, os.cpu_count() or 1)  # torch threads during PPO updates (1 while acting)
    imitate_steps: int = 0  # env steps of learning from the scripted expert before PPO (racer.imitation)

    def car(self) -> ModelMetadata:
        """The car config (model_metadata.json) the run trains, validated."""
        return parse_metadata(self.metadata, where="config.json metadata")

    def check_ranges(self) -> None:
        """The budget and schedule numbers are in range; TrainError names the option."""
        for key, value, low in (("envs", self.envs, 1), ("steps", self.steps, 1),
                                ("eval_every", self.eval_every, 1), ("eval_starts", self.eval_starts, 1),
                                ("eval_laps", self.eval_laps, 1), ("checkpoint_every", self.checkpoint_every, 1),
                                ("train_threads", self.train_threads, 1), ("seed", self.seed, 0),
                                ("imitate_steps", self.imitate_steps, 0)):
            if value is None and key == "steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise TrainError(f"--{key.replace('_', '-')}: must be an integer >= {low}, got {value!r}")
        if self.envs > MAX_ENVS:
            raise TrainError(f"--envs: at most {MAX_ENVS} environments in one process, got {self.envs}")
        if self.minutes is not None and not (isinstance(self.minutes, (int, float)) and self.minutes > 0):
            raise TrainError(f"--minutes: must be a number above 0, got {self.minutes!r}")
        if self.steps is None and self.minutes is None:
            raise TrainError("no budget: give --steps or --minutes")


@dataclass
class RunState:
    """Progress of a run across restarts (checkpoints/state.json)."""

    steps: int = 0
    wall_seconds: float = 0.0
    best_score: list = field(default_factory=lambda: [-1.0, 0.0, 0.0])
    best_steps: int = 0
    lapping_at: dict | None = None  # {"steps", "wall_seconds"} of the first evaluation that lapped


def _atomic_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def env_kwargs(cfg: TrainConfig, car: ModelMetadata, itself: Callable[[dict], Any] | None = None) -> dict:
    """The DeepRacerEnv arguments a run's car and config give (training and evaluation alike).
    `itself`: the policy being trained or evaluated, as `obs -> action`, for the self-play cars."""
    kw = dict(track=cfg.track, sensors=list(car.sensors), action_space=car.action_space, race=cfg.race,
              race_config=cfg.race_config, reverse=cfg.reverse)
    if car.lidar_config:
        kw["lidar"] = car.lidar_config
    opponents = [opponent_policy(path) for path in cfg.opponents]
    if cfg.self_play:
        if itself is None:
            raise TrainError("self-play: no policy of its own to race against was given")
        opponents += [itself] * cfg.self_play
    if opponents:
        kw["opponents"] = opponents
    return kw


def opponent_policy(bundle_dir: str | Path):
    """An opponent bundle's policy (racer.bundle.runtime.BundlePolicy), loaded, checked and compiled once per
    process for as long as its bundle.json is unchanged: the envs of a run and its evaluations share it (they
    step one at a time)."""
    path = Path(bundle_dir).resolve()
    stat = (path / "bundle.json").stat()
    return _load_opponent(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load_opponent(path: Path, mtime_ns: int, size: int):
    from racer.bundle.runtime import BundlePolicy
    return BundlePolicy.load(path)


class Run:
    """A run directory: creating it, reading it back, and its paths."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def reward_file(self) -> Path:
        return self.path / "reward" / Path(self.load_config().reward).name

    @contextmanager
    def lock(self, create: bool = False) -> Iterator[None]:
        """Hold the run directory for this process's life in it (`racer train`): a second process is
        refused with the holder's PID.  The kernel drops the lock when its holder dies, so the lock of
        a killed run is simply taken over.  `create`: the folder may not exist yet."""
        if not create and not self.config_file.exists():
            raise TrainError(f"{self.path} is not a run directory (no config.json)")
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK_FILE, "a+", encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                raise TrainError(f"{self.path} is in use by another racer process (PID {holder}); let it finish "
                                 f"or stop it before training in this run directory") from None
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield

    @property
    def has_checkpoint(self) -> bool:
        """Only a run that saved a checkpoint can be resumed."""
        return (self.checkpoints / "last.zip").is_file()

    def create(self, cfg: TrainConfig, versions: dict) -> None:
        """Write a new run (config, car, copies of the reward file and of a user's .npy track).  A
        folder holding a failed start (a config but no checkpoint) is replaced; a resumable run is not."""
        if self.config_file.exists():
            if self.has_checkpoint:
                raise TrainError(f"{self.path} already holds a run; use `racer train --resume {self.path}` "
                                 f"or another --run-dir")
            self._remove_failed_start()
        src = Path(cfg.reward)
        if not src.is_file():
            raise TrainError(f"--reward: no such file {src}")
        for d in (self.checkpoints, self.path / "metrics", self.path / "training-simtrace", self.path / "reward"):
            d.mkdir(parents=True, exist_ok=True)
        copy = self.path / "reward" / src.name
        shutil.copyfile(src, copy)
        extra = {}
        track = Path(cfg.track)
        if track.suffix == ".npy" and track.is_file():
            (self.path / TRACK_FOLDER).mkdir(exist_ok=True)
            shutil.copyfile(track, self.path / TRACK_FOLDER / track.name)
            extra["track_source"] = str(track.resolve())
            cfg = replace(cfg, track=f"{TRACK_FOLDER}/{track.name}")
        save_metadata(cfg.car(), self.path / "model_metadata.json")
        _atomic_json(self.config_file, {"config": asdict(cfg), "reward_sha256": sha256_file(copy),
                                        "reward_source": str(src.resolve()), **extra, "versions": versions})

    def _remove_failed_start(self) -> None:
        """Delete what a start that never reached a checkpoint wrote (nothing else in the folder)."""
        for name in ("config.json", "model_metadata.json", "log.txt", "reward", "checkpoints", "metrics",
                     "training-simtrace", "tensorboard", TRACK_FOLDER):
            p = self.path / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def link_latest(self) -> None:
        """Point `<parent>/latest` at this run, so `racer evaluate runs/latest` finds the newest."""
        latest = self.path.parent / "latest"
        if latest.exists() and not latest.is_symlink():
            return  # a real folder of that name (maybe this run): leave it alone
        if latest.is_symlink() and latest.resolve() == self.path.resolve():
            return
        tmp = latest.with_name(".latest.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.path.resolve(), target_is_directory=True)
        os.replace(tmp, latest)

    def _config_data(self) -> dict:
        if not self.config_file.exists():
            raise TrainError(f"{self.path} is not a run directory (no config.json)")
        data = read_json(self.config_file, TrainError)
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            raise TrainError(f"{self.config_file}: not a racer run config (no \"config\" object)")
        return data

    def save_config(self, cfg: TrainConfig) -> None:
        """Record a changed budget (resume with --steps / --minutes) in config.json."""
        data = self._config_data()
        stored = dict(asdict(cfg), track=data["config"].get("track", cfg.track))  # keep it run-relative
        _atomic_json(self.config_file, data | {"config": stored})

    def reward_source_changed(self) -> Path | None:
        """The file the run's reward was copied from, when it now differs from the copy."""
        data = self._config_data()
        src = Path(data.get("reward_source", ""))
        if src.is_file() and self.reward_file.is_file() and sha256_file(src) != data.get("reward_sha256"):
            return src
        return None

    def replace_reward(self, src: str | Path, steps: int) -> None:
        """Train on from here with the reward file `src` (`--resume --reward`): copy it in place of the
        old copy, record its sha256 and when it took over (config.json "reward_history")."""
        src = Path(src)
        data = self._config_data()
        old = self.reward_file
        history = data.get("reward_history") or [{"sha256": data.get("reward_sha256"), "from_steps": 0,
                                                  "source": data.get("reward_source")}]
        copy = self.path / "reward" / src.name
        shutil.copyfile(src, copy)
        if old != copy:
            old.unlink(missing_ok=True)
        digest = sha256_file(copy)
        history.append({"sha256": digest, "from_steps": steps, "source": str(src.resolve())})
        data["config"]["reward"] = str(src)
        _atomic_json(self.config_file, data | {"reward_sha256": digest, "reward_source": str(src.resolve()),
                                               "reward_history": history})

    def load_config(self) -> TrainConfig:
        """The run's TrainConfig; a track copied into the run is given by its path in the run."""
        try:
            cfg = TrainConfig(**self._config_data()["config"])
        except TypeError as exc:
            raise TrainError(f"{self.config_file}: config: {exc}") from None
        if cfg.track.startswith(f"{TRACK_FOLDER}/") and (self.path / cfg.track).is_file():
            cfg.track = str((self.path / cfg.track).resolve())
        return cfg

    def load_state(self) -> RunState:
        f = self.checkpoints / "state.json"
        return RunState(**json.loads(f.read_text())) if f.exists() else RunState()

    def save_state(self, state: RunState) -> None:
        _atomic_json(self.checkpoints / "state.json", asdict(state))

    def model_path(self, which: str = "best") -> Path:
        """best.zip, or last.zip when no evaluation has kept a best yet."""
        p = self.checkpoints / f"{which}.zip"
        if not p.exists() and which == "best":
            p = self.checkpoints / "last.zip"
        if not p.exists():
            raise TrainError(f"{self.path}: no checkpoint yet ({p.name} missing)")
        return p


def predict_batch(model) -> Callable[[list], list]:
    """A batched deterministic policy over lists of Dict observations."""
    def predict(obs_list: list) -> list:
        batch = {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
        actions, _ = model.predict(batch, deterministic=True)
        return list(actions)
    return predict

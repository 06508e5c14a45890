"""`racer train`: stable-baselines3 PPO on a user's reward function, in a resumable run directory.

Run directory layout::

    config.json            what was asked (track, car, reward, budget, hyperparameters, seed)
    model_metadata.json    the car config (DeepRacer schema)
    reward/<your file>.py  the reward file as trained, under its own name so errors name it
                           (its sha256 is in config.json)
    log.txt                reward-function prints and training messages
    checkpoints/           last.zip (atomic, every checkpoint interval), best.zip, state.json
    tensorboard/           SB3 scalars plus racer/* (progress, lap completion, episode length)
    training-simtrace/     DeepRacer trace CSVs, one per PPO iteration
    metrics/               training_metrics.json, evaluations.jsonl
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import sim
from racer.augment import CameraAugment
from racer.files import atomic_write_text
from racer.garage import ModelMetadata, metadata_to_dict, parse_metadata, save_metadata
from racer.laps import LapResult, run_laps_batch
from racer.metrics import MetricsWriter
from racer.networks import DeepRacerExtractor
from racer.reward import RewardFunction
from racer.simtrace import SimTraceWrapper, SimTraceWriter, next_free_iteration

DEFAULT_HYPER = {"n_steps": 256, "batch_size": 128, "n_epochs": 4, "learning_rate": 3e-4, "gamma": 0.99,
                 "gae_lambda": 0.95, "ent_coef": 0.01, "clip_range": 0.2}


class TrainError(RuntimeError):
    """A training request that cannot run, with the reason."""


@dataclass
class TrainConfig:
    """Everything a run needs; saved as config.json so `--resume` rebuilds the same run."""

    reward: str
    metadata: dict
    track: str = "reinvent-like"
    race: str = "time-trial"
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

    def car(self) -> ModelMetadata:
        return parse_metadata(self.metadata, where="config.json metadata")


@dataclass
class RunState:
    """Progress of a run across restarts (checkpoints/state.json)."""

    steps: int = 0
    wall_seconds: float = 0.0
    best_score: list = field(default_factory=lambda: [-1.0, 0.0])
    best_steps: int = 0
    lapping_at: dict | None = None  # {"steps", "wall_seconds"} of the first evaluation that lapped


def _atomic_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def _atomic_save(model: PPO, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def env_kwargs(cfg: TrainConfig, car: ModelMetadata) -> dict:
    """The DeepRacerEnv arguments a run's car and config give (training and evaluation alike)."""
    kw = dict(track=cfg.track, sensors=list(car.sensors), action_space=car.action_space, race=cfg.race,
              reverse=cfg.reverse)
    if car.lidar_config:
        kw["lidar"] = car.lidar_config
    return kw


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

    def create(self, cfg: TrainConfig) -> None:
        if self.config_file.exists():
            raise TrainError(f"{self.path} already holds a run; use `racer train --resume {self.path}` "
                             f"or another --run-dir")
        src = Path(cfg.reward)
        if not src.is_file():
            raise TrainError(f"--reward: no such file {src}")
        for d in (self.checkpoints, self.path / "metrics", self.path / "training-simtrace", self.path / "reward"):
            d.mkdir(parents=True, exist_ok=True)
        copy = self.path / "reward" / src.name
        shutil.copyfile(src, copy)
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()
        save_metadata(cfg.car(), self.path / "model_metadata.json")
        _atomic_json(self.config_file, {"config": asdict(cfg), "reward_sha256": digest,
                                        "reward_source": str(src.resolve()),
                                        "versions": library_versions()})
        self._link_latest()

    def _link_latest(self) -> None:
        """Point `<parent>/latest` at this run, so `racer evaluate runs/latest` finds the newest."""
        latest = self.path.parent / "latest"
        if latest.exists() and not latest.is_symlink():
            return  # a real folder of that name (maybe this run): leave it alone
        tmp = latest.with_name(".latest.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.path.resolve(), target_is_directory=True)
        os.replace(tmp, latest)

    def load_config(self) -> TrainConfig:
        if not self.config_file.exists():
            raise TrainError(f"{self.path} is not a run directory (no config.json)")
        return TrainConfig(**json.loads(self.config_file.read_text())["config"])

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


def library_versions() -> dict:
    import stable_baselines3
    return {"torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gym.__version__, "numpy": np.__version__}


def make_vec_env(cfg: TrainConfig, run: Run, log, writer: SimTraceWriter, metrics: MetricsWriter,
                 episode_base: int) -> VecMonitor:
    """`cfg.envs` training envs in one process, each with its own import of the reward file."""
    car = cfg.car()

    def factory(rank: int) -> Callable[[], gym.Env]:
        def make() -> gym.Env:
            reward = RewardFunction(str(run.reward_file), strict=cfg.strict, log=log)
            env = gym.make(sim.ENV_ID, reward_fn=reward, start_offset=rank / cfg.envs, **env_kwargs(cfg, car))
            env = SimTraceWrapper(env, writer, episode_offset=episode_base + rank, episode_stride=cfg.envs,
                                  metrics=metrics)
            return CameraAugment(env) if cfg.augment else env
        return make

    vec = DummyVecEnv([factory(i) for i in range(cfg.envs)])
    vec.seed(cfg.seed)
    return VecMonitor(vec)


def make_model(cfg: TrainConfig, vec, tensorboard: Path) -> PPO:
    car = cfg.car()
    if car.training_algorithm != "clipped_ppo":
        raise TrainError(f"model_metadata.json training_algorithm: racer trains 'clipped_ppo' only, "
                         f"got {car.training_algorithm!r}")
    hyper = DEFAULT_HYPER | cfg.hyper
    policy_kwargs = {"features_extractor_class": DeepRacerExtractor,
                     "features_extractor_kwargs": {"neural_network": car.neural_network},
                     "net_arch": {"pi": [], "vf": []}}
    try:
        return PPO("MultiInputPolicy", vec, seed=cfg.seed, policy_kwargs=policy_kwargs,
                   tensorboard_log=str(tensorboard), verbose=0, device="cpu", **hyper)
    except TypeError as exc:
        raise TrainError(f"--hyper: {exc}") from exc


def predict_batch(model: PPO) -> Callable[[list], list]:
    """A batched deterministic policy over lists of Dict observations."""
    def predict(obs_list: list) -> list:
        batch = {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
        actions, _ = model.predict(batch, deterministic=True)
        return list(actions)
    return predict


class MultiStartEvaluator:
    """Evaluation laps from evenly spread start points, batched over one env per start."""

    def __init__(self, cfg: TrainConfig, starts: int):
        car = cfg.car()
        self.envs = [gym.make(sim.ENV_ID, mode="evaluation", **env_kwargs(cfg, car)) for _ in range(starts)]
        self.options = [{"start": i / starts} for i in range(starts)]

    def run(self, predict: Callable[[list], list], laps: int) -> list[list[LapResult]]:
        for env in self.envs:
            env.unwrapped.rules = replace(env.unwrapped.rules, laps=laps)
        return run_laps_batch(self.envs, predict, self.options)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def clean(results: list[list[LapResult]], laps: int) -> bool:
    """Every start completed `laps` laps without a reset."""
    return all(len(r) == laps and all(l.status == "lap_complete" and l.resets == 0 for l in r) for r in results)


def score(results: list[list[LapResult]]) -> list[float]:
    """Sortable: mean completion of the first lap, then minus the mean lap time of finished laps."""
    completion = float(np.mean([r[0].completion if r else 0.0 for r in results]))
    times = [l.time_s for r in results for l in r if l.status == "lap_complete"]
    return [completion, -float(np.mean(times)) if times else -1e9]


class RunCallback(BaseCallback):
    """Budget, atomic checkpoints, multi-start evaluation with best-checkpoint keeping, trace files."""

    def __init__(self, cfg: TrainConfig, run: Run, state: RunState, writer: SimTraceWriter, metrics: MetricsWriter,
                 evaluator: MultiStartEvaluator, log, progress: Callable[[dict], None] | None = None):
        super().__init__()
        self.cfg, self.run, self.state, self.writer, self.evaluator = cfg, run, state, writer, evaluator
        self.metrics = metrics
        self.log, self.progress = log, progress
        self._t0 = time.monotonic()
        self._wall0 = state.wall_seconds
        self._next_ckpt = state.steps + cfg.checkpoint_every
        self._next_eval = state.steps + cfg.eval_every
        self.last_eval: dict = {}
        self.stop_reason = ""

    def wall(self) -> float:
        return self._wall0 + time.monotonic() - self._t0

    def _on_step(self) -> bool:
        steps = self.num_timesteps
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done:
                self.logger.record_mean("racer/progress", info["params"]["progress"])
                self.logger.record_mean("racer/lap_completion", float(info["status"] == "lap_complete"))
                self.logger.record_mean("racer/episode_length", info["params"]["steps"])
        if steps >= self._next_ckpt:
            self._checkpoint()
            self._next_ckpt = steps + self.cfg.checkpoint_every
        if steps >= self._next_eval:
            self._next_eval = steps + self.cfg.eval_every
            if self._evaluate():
                self.stop_reason = "lapping"
                return False
        if self.progress:
            self.progress({"steps": steps, "wall": self.wall(), **self.last_eval})
        if self.cfg.minutes is not None and self.wall() >= self.cfg.minutes * 60:
            self.stop_reason = "time budget"
            return False
        return True

    def _on_rollout_start(self) -> None:
        torch.set_num_threads(1)  # acting: small batches, and the envs share the process

    def _on_rollout_end(self) -> None:
        self.writer.next_iteration()
        self.metrics.save()
        torch.set_num_threads(self.cfg.train_threads)  # learning: nothing else runs now

    def _checkpoint(self) -> None:
        self.state.steps, self.state.wall_seconds = self.num_timesteps, self.wall()
        _atomic_save(self.model, self.run.checkpoints / "last.zip")
        self.run.save_state(self.state)

    def _evaluate(self) -> bool:
        """Quick 1-lap check from every start; the full laps only when that is clean."""
        predict = predict_batch(self.model)
        results = self.evaluator.run(predict, laps=1)
        lapping = False
        if clean(results, 1) and self.cfg.eval_laps > 1:
            results = self.evaluator.run(predict, laps=self.cfg.eval_laps)
            lapping = clean(results, self.cfg.eval_laps)
        elif self.cfg.eval_laps == 1:
            lapping = clean(results, 1)
        sc = score(results)
        self.logger.record("eval/completion", sc[0])
        if sc[1] > -1e9:
            self.logger.record("eval/lap_time", -sc[1])
        entry = {"steps": self.num_timesteps, "wall_seconds": round(self.wall(), 1), "score": sc,
                 "lapping": lapping, "laps": [[l.as_dict() for l in r] for r in results]}
        with open(self.run.path / "metrics" / "evaluations.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.last_eval = {"eval_completion": sc[0], "lapping": lapping}
        if sc > self.state.best_score:
            self.state.best_score, self.state.best_steps = sc, self.num_timesteps
            _atomic_save(self.model, self.run.checkpoints / "best.zip")
        if lapping and self.state.lapping_at is None:
            self.state.lapping_at = {"steps": self.num_timesteps, "wall_seconds": round(self.wall(), 1)}
        self._checkpoint()
        self.log(f"eval at {self.num_timesteps} steps, {self.wall():.0f} s: completion {sc[0]:.1f}%, "
                 f"lapping {lapping}")
        return lapping and self.cfg.stop_when_lapping


def train(run_dir: str | Path, cfg: TrainConfig | None = None,
          progress: Callable[[dict], None] | None = None) -> tuple[Run, RunState, str]:
    """Start a new run (with `cfg`) or resume the one in `run_dir` (cfg None); returns why it stopped."""
    torch.set_num_threads(1)
    run = Run(run_dir)
    if cfg is not None:
        run.create(cfg)
    cfg = run.load_config()
    state = run.load_state()
    with open(run.path / "log.txt", "a", buffering=1) as log_file:
        def log(text: str) -> None:
            log_file.write(text.rstrip("\n") + "\n")

        writer = SimTraceWriter(run.path / "training-simtrace",
                                start_iteration=next_free_iteration(run.path / "training-simtrace"))
        metrics = MetricsWriter(run.path / "metrics" / "training_metrics.json", phase="training", autosave=False)
        episode_base = len(metrics.metrics)
        vec = make_vec_env(cfg, run, log_file, writer, metrics, episode_base)
        last = run.checkpoints / "last.zip"
        if last.exists():
            model = PPO.load(last, env=vec, device="cpu", tensorboard_log=str(run.path / "tensorboard"))
            log(f"resumed from {last} at {model.num_timesteps} steps")
        else:
            model = make_model(cfg, vec, run.path / "tensorboard")
        evaluator = MultiStartEvaluator(cfg, cfg.eval_starts)
        callback = RunCallback(cfg, run, state, writer, metrics, evaluator, log, progress)
        total = cfg.steps if cfg.steps is not None else 10**12
        try:
            if model.num_timesteps < total:
                model.learn(total_timesteps=total - model.num_timesteps, callback=callback,
                            reset_num_timesteps=False, tb_log_name="ppo")
            callback._checkpoint()
        finally:
            metrics.save()
            writer.close()
            evaluator.close()
            vec.close()
        reason = callback.stop_reason or "step budget"
        log(f"stopped ({reason}) at {model.num_timesteps} steps, {callback.wall():.0f} s")
    if not (run.checkpoints / "best.zip").exists():
        shutil.copyfile(last, run.checkpoints / "best.zip")
    return run, state, reason

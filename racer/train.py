"""`racer train`: stable-baselines3 PPO on a user's reward function, in a resumable run
directory (layout in racer/runs.py)."""
from __future__ import annotations

import copy
import inspect
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import sim
from racer.augment import CameraAugment
from racer.extras import require
from racer.imitation import imitate
from racer.metrics import MetricsWriter
from racer.networks import DeepRacerExtractor
from racer.reward import RewardFunction
from racer.runs import Run, RunState, TrainConfig, TrainError, env_kwargs, predict_batch
from racer.simtrace import SimTraceWrapper, SimTraceWriter, next_free_episode, next_free_iteration
from sim.laps import LapResult, mean_lap_time, run_laps_batch, start_options
from sim.rules import Status

RESERVED_HYPER = {"policy", "env", "seed", "policy_kwargs", "tensorboard_log", "verbose", "device",
                  "_init_setup_model"}  # set by racer
DEFAULT_HYPER = {"n_steps": 256, "batch_size": 128, "n_epochs": 4, "learning_rate": 3e-4, "gamma": 0.99,
                 "gae_lambda": 0.95, "ent_coef": 0.01, "clip_range": 0.2}


def _atomic_save(model: PPO, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def library_versions() -> dict:
    import stable_baselines3
    return {"torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gym.__version__, "numpy": np.__version__}


def make_vec_env(cfg: TrainConfig, run: Run, log, writer: SimTraceWriter, metrics: MetricsWriter,
                 episode_base: int, itself: MirrorOpponent | None = None) -> VecMonitor:
    """`cfg.envs` training envs in one process, each with its own import of the reward file."""
    car = cfg.car()

    def factory(rank: int) -> Callable[[], gym.Env]:
        def make() -> gym.Env:
            reward = RewardFunction(str(run.reward_file), strict=cfg.strict, log=log)
            env = gym.make(sim.ENV_ID, reward_fn=reward, start_offset=rank / cfg.envs, **env_kwargs(cfg, car, itself))
            env = SimTraceWrapper(env, writer, episode_offset=episode_base + rank, episode_stride=cfg.envs,
                                  metrics=metrics)
            return CameraAugment(env) if cfg.augment else env
        return make

    vec = DummyVecEnv([factory(i) for i in range(cfg.envs)])
    vec.seed(cfg.seed)
    return VecMonitor(vec)


def make_model(cfg: TrainConfig, vec, tensorboard: Path | None) -> PPO:
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
                   tensorboard_log=str(tensorboard) if tensorboard else None, verbose=0, device="cpu", **hyper)
    except (TypeError, ValueError, AssertionError) as exc:
        raise TrainError(f"--hyper: {exc or type(exc).__name__} (hyperparameters {hyper})") from None


class MirrorOpponent:
    """Self-play: drives another car with a frozen copy of the learner's policy, renewed at each checkpoint."""

    def __init__(self) -> None:
        self.policy = None

    def refresh(self, policy) -> None:
        if self.policy is None:
            self.policy = copy.deepcopy(policy).eval()
        else:
            self.policy.load_state_dict(policy.state_dict())

    def __call__(self, obs: dict):
        if self.policy is None:
            raise TrainError("self-play: the opponent has no policy yet")
        action, _ = self.policy.predict(obs, deterministic=True)
        return action


class MultiStartEvaluator:
    """Evaluation laps from evenly spread start points, batched over one env per start."""

    def __init__(self, cfg: TrainConfig, starts: int, itself: MirrorOpponent | None = None):
        car = cfg.car()
        self.envs = [gym.make(sim.ENV_ID, mode="evaluation", **env_kwargs(cfg, car, itself)) for _ in range(starts)]
        self.options = start_options(starts)

    def run(self, predict: Callable[[list], list], laps: int) -> list[list[LapResult]]:
        for env in self.envs:
            env.unwrapped.rules = replace(env.unwrapped.rules, laps=laps)
        return run_laps_batch(self.envs, predict, self.options)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def clean(results: list[list[LapResult]], laps: int) -> bool:
    """Every start completed `laps` laps without a reset."""
    return all(len(r) == laps and all(lap.clean for lap in r) for r in results)


def score(results: list[list[LapResult]]) -> list[float]:
    """Sortable: the share of clean laps (complete, no reset), mean completion, minus mean lap time."""
    laps = [l for r in results for l in r]
    clean_share = float(np.mean([lap.clean for lap in laps])) if laps else 0.0
    completion = float(np.mean([r[0].completion if r else 0.0 for r in results]))
    mean_time = mean_lap_time(laps)
    return [clean_share, completion, -mean_time if mean_time is not None else -1e9]


class RunCallback(BaseCallback):
    """Budget, atomic checkpoints, multi-start evaluation with best-checkpoint keeping, trace files."""

    def __init__(self, cfg: TrainConfig, run: Run, state: RunState, writer: SimTraceWriter, metrics: MetricsWriter,
                 evaluator: MultiStartEvaluator, log, progress: Callable[[dict], None] | None = None,
                 itself: MirrorOpponent | None = None, evaluate_first: bool = False):
        super().__init__()
        self.itself = itself
        self.cfg, self.run, self.state, self.writer, self.evaluator = cfg, run, state, writer, evaluator
        self.metrics = metrics
        self.log, self.progress = log, progress
        self._t0 = time.monotonic()
        self._wall0 = state.wall_seconds
        self._next_ckpt = state.steps + cfg.checkpoint_every
        self._next_eval = state.steps + (0 if evaluate_first else cfg.eval_every)
        self.last_eval: dict = {}
        self.stop_reason = ""

    def wall(self) -> float:
        return self._wall0 + time.monotonic() - self._t0

    def _on_step(self) -> bool:
        steps = self.num_timesteps
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done:
                self.logger.record_mean("racer/progress", info["params"]["progress"])
                self.logger.record_mean("racer/lap_completion", float(info["status"] == Status.LAP_COMPLETE))
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
        if self.itself is not None:
            self.itself.refresh(self.model.policy)  # self-play: the other cars drive this checkpoint
        self.run.link_latest()  # the newest run that can be evaluated and resumed

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
        self.logger.record("eval/clean_laps", sc[0])
        self.logger.record("eval/completion", sc[1])
        if sc[2] > -1e9:
            self.logger.record("eval/lap_time", -sc[2])
        entry = {"steps": self.num_timesteps, "wall_seconds": round(self.wall(), 1), "score": sc,
                 "lapping": lapping, "laps": [[l.as_dict() for l in r] for r in results]}
        with open(self.run.path / "metrics" / "evaluations.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.last_eval = {"eval_completion": sc[1], "clean": sc[0], "lapping": lapping}
        if sc > self.state.best_score:
            self.state.best_score, self.state.best_steps = sc, self.num_timesteps
            _atomic_save(self.model, self.run.checkpoints / "best.zip")
        if lapping and self.state.lapping_at is None:
            self.state.lapping_at = {"steps": self.num_timesteps, "wall_seconds": round(self.wall(), 1)}
        self._checkpoint()
        self.log(f"eval at {self.num_timesteps} steps, {self.wall():.0f} s: clean laps {100 * sc[0]:.0f}%, "
                 f"completion {sc[1]:.1f}%, mean lap {-sc[2]:.2f} s, lapping {lapping}")
        return lapping and self.cfg.stop_when_lapping


def preflight(cfg: TrainConfig) -> None:
    """Everything a new run needs, checked before anything is written: the budget and schedule, the
    race, the track, the car, the reward file (imported once), the hyperparameters (a model is built)."""
    from sim.race_config import parse_race_config
    from sim.track import load as load_track
    cfg.check_ranges()
    parse_race_config(cfg.race, cfg.race_config)
    if (cfg.race == "head-to-model") != bool(cfg.opponents or cfg.self_play):
        raise TrainError("--opponent / --self-play: a head-to-model race needs at least one opponent (a bundle, or "
                         "--self-play N cars driven by the run's own checkpoints), and only it takes them")
    load_track(cfg.track)
    car = cfg.car()
    RewardFunction(cfg.reward, strict=cfg.strict, log=lambda text: None)
    check_hyper(cfg.hyper)
    vec = DummyVecEnv([lambda: gym.make(sim.ENV_ID, **env_kwargs(cfg, car, MirrorOpponent()))])
    try:
        make_model(cfg, vec, None)
    finally:
        vec.close()


def check_hyper(hyper: dict) -> None:
    """Only PPO's own keyword arguments, and not those racer sets itself."""
    allowed = sorted(set(inspect.signature(PPO.__init__).parameters) - RESERVED_HYPER - {"self", "kwargs"})
    unknown = sorted(set(hyper) - set(allowed))
    if unknown:
        raise TrainError(f"--hyper: {', '.join(unknown)}: not a PPO hyperparameter racer accepts "
                         f"(accepted: {', '.join(allowed)})")


def train(run_dir: str | Path, cfg: TrainConfig | None = None, progress: Callable[[dict], None] | None = None,
          more_steps: int | None = None, more_minutes: float | None = None,
          reward: str | Path | None = None) -> tuple[Run, RunState, str]:
    """Start a new run (with `cfg`) or resume the one in `run_dir` (cfg None); returns why it stopped.

    Resuming: `more_steps` / `more_minutes` extend the budget from where the run is (recorded in
    config.json); `reward` trains on from here with that reward file instead of the run's copy."""
    require("tensorboard")  # SB3 imports it only at the first log write, then fails with an assertion
    torch.set_num_threads(1)
    run = Run(run_dir)
    if cfg is not None:
        preflight(cfg)
    with run.lock(create=cfg is not None):
        if cfg is not None:
            run.create(cfg, library_versions())
        else:
            _prepare_resume(run, more_steps, more_minutes, reward)
        return _train(run, progress)


def _prepare_resume(run: Run, more_steps: int | None, more_minutes: float | None,
                    reward: str | Path | None) -> None:
    """Check a run can go on, extend its budget, swap its reward file; TrainError says why not."""
    cfg = run.load_config()
    if not run.has_checkpoint:
        raise TrainError(f"{run.path} has no checkpoint: its training stopped before saving one, so there is "
                         f"nothing to resume; start it again (racer train --reward ... --run-dir {run.path} "
                         f"replaces the failed start)")
    state = run.load_state()
    if more_steps is not None or more_minutes is not None:
        cfg.steps = state.steps + more_steps if more_steps is not None else None
        cfg.minutes = state.wall_seconds / 60 + more_minutes if more_minutes is not None else None
        cfg.check_ranges()
        run.save_config(cfg)
    elif cfg.steps is not None and state.steps >= cfg.steps or (
            cfg.minutes is not None and state.wall_seconds >= cfg.minutes * 60):
        budget = f"{cfg.steps} steps" if cfg.steps is not None else f"{cfg.minutes:g} minutes"
        raise TrainError(f"{run.path} has used its budget ({budget}; it is at {state.steps} steps, "
                         f"{state.wall_seconds / 60:.1f} minutes); to train on, give more: "
                         f"racer train --resume {run.path} --steps N (or --minutes M)")
    if reward is not None:
        RewardFunction(reward, strict=cfg.strict, log=lambda text: None)
        run.replace_reward(reward, state.steps)


def _train(run: Run, progress: Callable[[dict], None] | None) -> tuple[Run, RunState, str]:
    """The training loop of `train`, in a locked run directory."""
    cfg = run.load_config()
    state = run.load_state()
    with open(run.path / "log.txt", "a", buffering=1) as log_file:
        def log(text: str) -> None:
            log_file.write(text.rstrip("\n") + "\n")

        writer = SimTraceWriter(run.path / "training-simtrace",
                                start_iteration=next_free_iteration(run.path / "training-simtrace"))
        metrics = MetricsWriter(run.path / "metrics" / "training_metrics.json", phase="training", autosave=False)
        episode_base = max(len(metrics.metrics), next_free_episode(run.path / "training-simtrace"))
        itself = MirrorOpponent()
        vec = make_vec_env(cfg, run, log_file, writer, metrics, episode_base, itself)
        last = run.checkpoints / "last.zip"
        if last.exists():
            model = PPO.load(last, env=vec, device="cpu", tensorboard_log=str(run.path / "tensorboard"))
            log(f"resumed from {last} at {model.num_timesteps} steps")
        else:
            model = make_model(cfg, vec, run.path / "tensorboard")
        itself.refresh(model.policy)
        warm_start = cfg.imitate_steps > 0 and not last.exists()
        if warm_start:
            t0 = time.monotonic()
            imitate(model, cfg.imitate_steps, cfg.train_threads, cfg.seed, log)
            state.wall_seconds += time.monotonic() - t0
            itself.refresh(model.policy)
        evaluator = MultiStartEvaluator(cfg, cfg.eval_starts, itself)
        callback = RunCallback(cfg, run, state, writer, metrics, evaluator, log, progress, itself,
                               evaluate_first=warm_start)
        total = cfg.steps if cfg.steps is not None else 10**12
        try:
            if model.num_timesteps < total:
                model.learn(total_timesteps=total - model.num_timesteps, callback=callback,
                            reset_num_timesteps=False, tb_log_name="ppo")
                callback._checkpoint()
        except Exception as exc:
            log(f"stopped by an error at {model.num_timesteps} steps: {exc}")
            raise
        finally:
            metrics.save()
            writer.close()
            evaluator.close()
            vec.close()
            _keep_best(run)
        reason = callback.stop_reason or "step budget"
        log(f"stopped ({reason}) at {model.num_timesteps} steps, {callback.wall():.0f} s")
    return run, state, reason


def _keep_best(run: Run) -> None:
    """A run that has a checkpoint has a best one: the last, until an evaluation has kept another."""
    best, last = run.checkpoints / "best.zip", run.checkpoints / "last.zip"
    if last.exists() and not best.exists():
        shutil.copyfile(last, best)

"""`racer evaluate`: evaluation laps of a trained run or an exported bundle, with trace, report,
plot and replays."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

import sim
from racer.bundle.format import BUNDLE_FILE, METADATA_FILE
from racer.driving import drive_expert
from racer.garage import ModelMetadata
from racer.metrics import MetricsWriter
from racer.plots import plot_racing_line
from racer.runs import Run, TrainConfig, env_kwargs, predict_batch
from racer.simtrace import SimTraceWrapper, SimTraceWriter, read_trace
from sim.laps import LapResult, mean_lap_time, run_laps_batch, start_options


@dataclass
class EvalReport:
    """Laps per start point, where the outputs went, and the expert comparison if asked."""

    laps: list[list[LapResult]]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    expert_laps: list[list[LapResult]] | None = None

    def mean_lap_time(self) -> float | None:
        return _mean_time(self.laps)

    def expert_ratio(self) -> float | None:
        """Mean model lap time / mean expert lap time (None without both)."""
        if self.expert_laps is None:
            return None
        m, e = _mean_time(self.laps), _mean_time(self.expert_laps)
        return m / e if m and e else None


def _mean_time(laps: list[list[LapResult]]) -> float | None:
    return mean_lap_time(lap for r in laps for lap in r)


def load_policy(source: str | Path) -> tuple[Callable[[list], list], ModelMetadata, TrainConfig]:
    """A batched policy, the car and the training config of a run directory (its best checkpoint),
    or of an exported bundle (bundle.json: OpenVINO through racer.bundle, no torch)."""
    if (Path(source) / BUNDLE_FILE).exists():
        return _load_bundle(Path(source))
    from stable_baselines3 import PPO
    run = Run(source)
    cfg = run.load_config()
    model = PPO.load(run.model_path("best"), device="cpu")
    return predict_batch(model), cfg.car(), cfg


def _load_bundle(source: Path) -> tuple[Callable[[list], list], ModelMetadata, TrainConfig]:
    """The bundle's IR through BundlePolicy.load (hashes, known files, metadata agreeing with bundle.json;
    nothing unpickled); the outputs are mapped through bundle.json's action space, the one source."""
    from dataclasses import replace

    from racer.bundle.format import is_track_file
    from racer.bundle.runtime import BundlePolicy
    from racer.garage import load_metadata, metadata_to_dict
    policy = BundlePolicy.load(source)
    car = replace(load_metadata(source / METADATA_FILE), action_space=policy.actions,
                  action_space_type=policy.actions.kind)
    bundle = policy.bundle
    track = bundle["track"]
    if is_track_file(track):  # a user's .npy that travelled with the bundle (checked to be inside it)
        track = str(source / track)
    cfg = TrainConfig(reward="", metadata=metadata_to_dict(car), track=track, race=bundle["race"],
                      race_config=bundle.get("race_config") or {},
                      self_play=int(bundle["race"] == "head-to-model"),  # it races a copy of itself
                      reverse=bool(bundle.get("reverse", False)))
    return policy.actions_batch, car, cfg


def default_out_dir(source: str | Path) -> Path:
    """RUN/evaluation for a run; evaluations/<name> for a bundle (a bundle stays as exported)."""
    source = Path(source)
    return Path("evaluations") / source.resolve().name if (source / BUNDLE_FILE).exists() else source / "evaluation"


def speed_limit(car: ModelMetadata) -> float:
    """The fastest speed the car's action space can ask for."""
    a = car.action_space
    return max(v for _, v in a.actions) if a.kind == "discrete" else a.speed_range[1]


def evaluate(source: str | Path, laps: int = 3, track: str | None = None, starts: int = 1,
             out_dir: str | Path | None = None, video: bool = False, compare_expert: bool = False,
             seed: int = 0, race: str | None = None, race_config: dict | None = None) -> EvalReport:
    """Evaluation laps from `starts` evenly spread start points; writes trace, JSON and plots.
    `track`, `race`, `race_config`: other than those the model was trained on."""
    predict, car, cfg = load_policy(source)
    if track:
        cfg.track = track
    if race:
        cfg.race, cfg.race_config = race, race_config or {}
    out = Path(out_dir) if out_dir else default_out_dir(source)
    out.mkdir(parents=True, exist_ok=True)
    writer = SimTraceWriter(out / "evaluation-simtrace")
    (out / "evaluation_metrics.json").unlink(missing_ok=True)  # a new evaluation, as the trace and report
    metrics = MetricsWriter(out / "evaluation_metrics.json", phase="evaluation")
    envs = []
    for i in range(starts):
        env = gym.make(sim.ENV_ID, mode="evaluation", laps=laps, render_mode="rgb_array" if video else None,
                       **env_kwargs(cfg, car, lambda obs: predict([obs])[0]))
        envs.append(SimTraceWrapper(env, writer, episode_offset=i, episode_stride=starts, metrics=metrics))
    options = start_options(starts)
    frames: list[np.ndarray] = []
    record = _recording(predict, envs[0], frames) if video else predict
    bot_paths: list[list[tuple[float, float]]] = [[] for _ in envs[0].unwrapped.race.bots]
    if bot_paths:
        record = _tracking_bots(record, envs[0], bot_paths)
    try:
        results = run_laps_batch(envs, record, options, seed=seed)
        boxes = [body.box for body in envs[0].unwrapped.world.objects]  # the first start's layout
    finally:
        writer.close()
        for env in envs:
            env.close()
    report = EvalReport(results, out)
    report.files["trace"] = out / "evaluation-simtrace" / "0-iteration.csv"
    track_obj = envs[0].unwrapped.track
    rows = read_trace(report.files["trace"])
    report.files["racing_line"] = out / "racing_line.png"
    plot_racing_line(track_obj, [r for r in rows if r["episode"] == 0], report.files["racing_line"], boxes,
                     bot_paths)
    if video:
        from racer.replay import save_gif, top_down_frames
        report.files["camera_gif"] = out / "camera.gif"
        save_gif(frames, report.files["camera_gif"])
        report.files["top_down_gif"] = out / "top_down.gif"
        save_gif(top_down_frames(track_obj, [r for r in rows if r["episode"] == 0], boxes=boxes),
                 report.files["top_down_gif"])
    if compare_expert:
        limit = speed_limit(car)
        report.expert_laps = [drive_expert(cfg.track, laps, max_speed=limit, reverse=cfg.reverse, start=o["start"],
                                           seed=seed + i, race=cfg.race, race_config=cfg.race_config)
                              for i, o in enumerate(options)]  # the layouts the model raced
    report.files["report"] = out / "evaluation.json"
    report.files["report"].write_text(json.dumps({
        "source": str(source), "track": cfg.track, "race": cfg.race, "race_config": cfg.race_config,
        "crashes": sum(l.crashed for r in results for l in r), "laps": [[l.as_dict() for l in r] for r in results],
        "mean_lap_time_s": report.mean_lap_time(), "expert_ratio": report.expert_ratio(),
        "expert_laps": [[l.as_dict() for l in r] for r in report.expert_laps] if report.expert_laps else None,
    }, indent=2))
    return report


def _tracking_bots(predict: Callable[[list], list], env: gym.Env,
                   paths: list[list[tuple[float, float]]]) -> Callable[[list], list]:
    """Wrap a batched policy so the first env's bot cars' positions are kept at each step."""
    def policy(obs_list: list) -> list:
        for path, bot in zip(paths, env.unwrapped.race.bots):
            path.append(bot.pose[:2])
        return predict(obs_list)
    return policy


def _recording(predict: Callable[[list], list], env: gym.Env, frames: list) -> Callable[[list], list]:
    """Wrap a batched policy so the first env's camera view is kept at each step."""
    def policy(obs_list: list) -> list:
        frames.append(env.render())
        return predict(obs_list)
    return policy

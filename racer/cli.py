"""The `racer` command line."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from racer.commands.car import bench_car, car
from racer.commands.garage import garage
from racer.commands.model import bench_policy, export, import_
from racer.commands.race import race_config, race_options
from racer.commands.reward import reward, reward_file
from racer.commands.errors import InputFailure, RacerGroup
from racer.runs import MAX_ENVS, TrainError
from sim.car import CarSpec

console = Console()
CAR = CarSpec()


@click.group(cls=RacerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="RACER_DEBUG", help="Show the traceback of an error.")
def main(debug: bool) -> None:
    """racer: train DeepRacer-style models on your laptop, and run them on the car."""


@main.command()
@click.option("--track", default="reinvent-like", show_default=True, help="Bundled track name or DeepRacer .npy path.")
@click.option("--laps", default=3, show_default=True, type=click.IntRange(1))
@click.option("--speed", "max_speed", default=1.0, show_default=True,
              type=click.FloatRange(CAR.min_speed, CAR.max_speed), help="Speed limit of the scripted driver, m/s.")
@click.option("--reverse", is_flag=True, help="Drive the track clockwise.")
@click.option("--seed", default=0, show_default=True)
@click.option("--opponents", type=click.IntRange(1, 8), default=None,
              help="head-to-model: scripted copies of the expert racing it from the grid behind.  [default: 1]")
@race_options()
def drive(track: str, laps: int, max_speed: float, reverse: bool, seed: int, opponents: int | None, race: str,
          race_config_file: str | None) -> None:
    """Drive laps with the scripted pure-pursuit expert and print lap times (and, head-to-model, the race)."""
    from racer.driving import drive_race
    if opponents is not None and race != "head-to-model":
        raise click.UsageError("--opponents: only a head-to-model race has opponents (--race head-to-model)")
    rivals = (opponents or 1) if race == "head-to-model" else 0
    results, standings = drive_race(track, laps, max_speed=max_speed, reverse=reverse, seed=seed, race=race,
                                    race_config=race_config(race, race_config_file), opponents=rivals)
    print_laps(results, title=f"Scripted expert on {track} ({race}), speed limit {max_speed} m/s")
    if rivals:
        print_standings(standings)


def print_standings(standings) -> None:
    """The race order when the first car's laps ended: laps, their total time, progress into the next."""
    table = Table(title="Race (first to finish the laps wins, penalties included)")
    for col in ("place", "car", "laps", "time (s)", "next lap", "resets"):
        table.add_column(col, justify="right")
    for place, s in enumerate(standings, start=1):
        table.add_row(str(place), s.car, str(s.laps), f"{s.time_s:.3f}", f"{s.progress:.1f}%", str(s.resets))
    console.print(table)


def print_laps(results, title: str) -> None:
    """A per-lap table (time, completion, off-tracks, resets) and the total."""
    table = Table(title=title)
    for col in ("lap", "time (s)", "completion", "off-track", "crashed", "resets", "status"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r.trial), f"{r.time_s:.3f}", f"{r.completion:.1f}%", str(r.off_track),
                      str(r.crashed), str(r.resets), str(r.status))
    console.print(table)
    total = sum(r.time_s for r in results)
    done = sum(r.complete for r in results)
    console.print(f"total {total:.3f} s, {done}/{len(results)} laps complete")


def _hyper(pairs: tuple[str, ...], hyper_file: str | None) -> dict:
    """--hyper key=value pairs (JSON values) over an optional JSON file."""
    import json

    from racer.bundle.files import read_json
    hyper = read_json(hyper_file, TrainError, "hyperparameter file") if hyper_file else {}
    if not isinstance(hyper, dict):
        raise TrainError(f"{hyper_file}: expected a JSON object of hyperparameters, got {type(hyper).__name__}")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: expected key=value", param_hint="--hyper")
        try:
            hyper[key] = json.loads(value)
        except json.JSONDecodeError:
            hyper[key] = value
    return hyper


@main.command()
@click.option("--reward", callback=reward_file,
              help="Your reward_function file, or a shipped example's name (racer reward examples).")
@click.option("--car", default=None, help="A model_metadata.json, or a garage car name (garage/NAME). "
              "Default: the DeepRacer default car (front camera, 10 discrete actions).")
@race_options()
@click.option("--track", default="reinvent-like", show_default=True)
@click.option("--minutes", type=click.FloatRange(0, min_open=True), default=None,
              help="Wall-clock budget (default 10 without --steps); with --resume: minutes more.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Env-step budget; with --resume: steps more.")
@click.option("--until-lapping", is_flag=True, help="Stop once it laps cleanly from every evaluation start.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--envs", default=4, show_default=True, type=click.IntRange(1, MAX_ENVS), help="Parallel environments.")
@click.option("--hyper", multiple=True, help="PPO hyperparameter key=value (repeatable).")
@click.option("--hyper-file", type=click.Path(exists=True, dir_okay=False), help="JSON of hyperparameters.")
@click.option("--eval-every", default=5000, show_default=True, type=click.IntRange(1),
              help="Steps between multi-start evaluations.")
@click.option("--strict", is_flag=True, help="Apply the AWS console's reward validator rules.")
@click.option("--no-augment", is_flag=True, help="No random brightness/contrast/noise on camera images.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Default: runs/<time>-<track>.")
@click.option("--opponent", "opponents", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="head-to-model: an exported bundle that drives another car (repeatable).")
@click.option("--self-play", default=0, show_default=True, type=click.IntRange(0, 8),
              help="head-to-model: this many more cars driven by the run's own latest checkpoint.")
@click.option("--imitate-expert", "imitate_steps", default=0, show_default=True, type=click.IntRange(0),
              help="First learn from the scripted expert for this many env steps (DAgger), then PPO on the reward.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False),
              help="Continue a stopped or killed run (with --reward FILE: on that reward file from now on).")
def train(reward, car, race, race_config_file, track, minutes, steps, until_lapping, seed, envs, hyper, hyper_file,
          eval_every, strict, no_augment, opponents, self_play, imitate_steps, run_dir, resume) -> None:
    """Train a PPO model on your reward function (a resumable run directory)."""
    from racer.runs import Run, TrainConfig
    from racer.train import train as run_training
    from sim.reward_check import RewardError
    if resume:
        cfg, path = None, resume
        changed = Run(resume).reward_source_changed() if not reward else None
        if changed:
            console.print(f"[yellow]note: {changed} changed since this run started; --resume trains on the run's "
                          f"copy ({Run(resume).reward_file}); to train on from here with the new one: "
                          f"racer train --resume {resume} --reward {changed}[/yellow]", soft_wrap=True)
    else:
        if not reward:
            raise click.UsageError("--reward FILE is needed (or --resume RUN)")
        cfg = TrainConfig(reward=reward, metadata=_car_metadata(car), track=track, race=race,
                          race_config=race_config(race, race_config_file),
                          opponents=[str(Path(o).resolve()) for o in opponents], self_play=self_play, seed=seed,
                          envs=envs, steps=steps, minutes=minutes if minutes or steps else 10.0,
                          hyper=_hyper(hyper, hyper_file), eval_every=eval_every,
                          stop_when_lapping=until_lapping, augment=not no_augment, strict=strict,
                          imitate_steps=imitate_steps)
        path = run_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{Path(track).stem}"
    try:
        with _progress() as update:
            run, state, reason = run_training(path, cfg, progress=update, more_steps=steps if resume else None,
                                              more_minutes=minutes if resume else None,
                                              reward=reward if resume else None)
    except RewardError as exc:
        kept = Run(path).has_checkpoint
        hint = f"; the last checkpoint is kept: racer train --resume {path}" if kept else ""
        raise InputFailure(f"{exc}{hint}") from None
    console.print(f"stopped: {reason} after {state.steps} steps, {state.wall_seconds:.0f} s; "
                  f"best checkpoint at {state.best_steps} steps: {run.checkpoints / 'best.zip'}")
    if state.lapping_at:
        console.print(f"first clean multi-start laps at {state.lapping_at['steps']} steps, "
                      f"{state.lapping_at['wall_seconds']:.0f} s")
    console.print(f"next: racer evaluate {run.path} --laps 3")


def _car_metadata(car: str | None) -> dict:
    from racer.garage import GarageError, load_metadata, metadata_to_dict, parse_metadata
    if car is None:
        return metadata_to_dict(parse_metadata({}, where="default car"))
    p = Path(car)
    if p.is_dir():
        p = p / "model_metadata.json"
    elif not p.exists() and (Path("garage") / car / "model_metadata.json").exists():
        p = Path("garage") / car / "model_metadata.json"
    try:
        return metadata_to_dict(load_metadata(p))
    except (GarageError, OSError) as exc:
        raise click.BadParameter(str(exc), param_hint="--car") from exc


@contextmanager
def _progress():
    """A live progress line: steps, steps/s, last evaluation."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("[bold]training"), TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=console, transient=False) as bar:
        task = bar.add_task("", total=None)
        last = [0.0]

        def update(p: dict) -> None:
            if p["wall"] - last[0] < 0.5:
                return
            last[0] = p["wall"]
            ev = (f", eval: completion {p['eval_completion']:.0f}%, clean laps {100 * p['clean']:.0f}%"
                  if "eval_completion" in p else "")
            lap = ", LAPPING" if p.get("lapping") else ""
            bar.update(task, description=f"{p['steps']} steps ({p['steps'] / max(p['wall'], 1e-9):.0f}/s){ev}{lap}")
        yield update


@main.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--laps", default=3, show_default=True, type=click.IntRange(1))
@click.option("--track", default=None, help="Another track than the run's.")
@click.option("--starts", default=1, show_default=True, type=click.IntRange(1),
              help="Evaluate from this many start points spread round the track.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Default: RUN/evaluation, or evaluations/<bundle name> for a bundle.")
@click.option("--video", is_flag=True, help="Also save replay GIFs (from above and from the car's camera).")
@click.option("--compare-expert", is_flag=True, help="Race the scripted expert at the same speed limit.")
@race_options(default=None)
def evaluate(source, laps, track, starts, out_dir, video, compare_expert, race, race_config_file) -> None:
    """Evaluation laps of a run or an exported bundle: per-lap table, trace CSV, JSON, racing-line plot.
    The race is the one the model was trained for, unless --race (and --race-config) say otherwise."""
    from racer.evaluate import evaluate as run_eval
    report = run_eval(source, laps=laps, track=track, starts=starts, out_dir=out_dir, video=video,
                      compare_expert=compare_expert, race=race, race_config=race_config(race, race_config_file))
    for i, laps_of_start in enumerate(report.laps):
        print_laps(laps_of_start, title=f"start {i + 1}/{starts} ({100 * i / starts:.0f}% round the track)")
    if report.expert_laps is not None:
        ratio = report.expert_ratio()
        console.print(f"expert mean lap {_mean(report.expert_laps)}; model / expert lap time ratio: "
                      f"{ratio:.3f}" if ratio else "ratio: n/a (no completed laps)")
    for name, path in report.files.items():
        console.print(f"{name}: {path}")


def _mean(laps) -> str:
    from sim.laps import mean_lap_time
    mean = mean_lap_time(lap for r in laps for lap in r)
    return f"{mean:.3f} s" if mean is not None else "n/a"


@main.group()
def bench() -> None:
    """Benchmarks that print figures."""


@bench.command("env")
@click.option("--steps", default=5000, show_default=True, type=click.IntRange(100))
@click.option("--track", default="reinvent-like", show_default=True)
def bench_env(steps: int, track: str) -> None:
    """Env steps/s per sensor configuration and race (params + a typical reward every step), one core."""
    from racer.bench import RACE_CONFIGS, RACE_SENSORS, SENSOR_CONFIGS
    from racer.bench import bench_env as run
    rows = [(name, sensors, "time-trial", None) for name, sensors in SENSOR_CONFIGS.items()]
    rows += [(f"{name}, {race_name}", SENSOR_CONFIGS[name], race, config)
             for race_name, (race, config) in RACE_CONFIGS.items() for name in RACE_SENSORS]
    for name, sensors, race, config in rows:
        r = run(sensors, steps=steps, track=track, race=race, race_config=config)
        console.print(f"{name:<44} {r.steps_per_s:7.0f} steps/s  real-time factor {r.real_time_factor:5.0f}x"
                      f"  ({r.steps} steps, {r.episodes} episodes)", soft_wrap=True)


@bench.command("train")
@click.option("--steps", default=4096, show_default=True, type=click.IntRange(512))
@click.option("--track", default="reinvent-like", show_default=True)
def bench_train(steps: int, track: str) -> None:
    """Training throughput (env steps/s, PPO updates included) for camera and LIDAR-only cars."""
    from racer.bench import TRAIN_CONFIGS
    from racer.bench import bench_train as run
    for name, (sensors, network) in TRAIN_CONFIGS.items():
        r = run(sensors, network, steps=steps, track=track)
        console.print(f"{name:<24} {r.steps_per_s:6.0f} env steps/s incl. learning  ({r.steps} steps, "
                      f"{r.seconds:.1f} s)", soft_wrap=True)


@main.group()
def tracks() -> None:
    """The bundled tracks, and DeepRacer .npy files."""


@tracks.command("list")
def tracks_list() -> None:
    """Bundled tracks with their length and width."""
    from sim.track import bundled_names, load
    table = Table()
    for col in ("name", "length (m)", "width (m)", "waypoints"):
        table.add_column(col)
    for name in bundled_names():
        t = load(name)
        table.add_row(name, f"{t.length:.2f}", f"{t.project(t.center).width.mean():.3f}", str(len(t.center)))
    console.print(table)


@tracks.command("show")
@click.argument("track")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save a plot of the track here.")
@click.option("--open-track", is_flag=True, help="Accept an open road (first and last waypoints apart).")
def tracks_show(track: str, plot_path: str | None, open_track: bool) -> None:
    """Describe a bundled track or a .npy file; optionally plot it."""
    from sim.track import load
    t = load(track, allow_open=open_track)
    width = t.project(t.center).width  # the road's, as the params measure it
    console.print(f"{t.name}: {t.length:.2f} m long, width {width.min():.3f}-{width.max():.3f} m, "
                  f"{len(t.center)} waypoints, {'loop' if t.closed else 'open'}")
    if plot_path:
        from racer.plots import plot_track
        plot_track(t, plot_path)
        console.print(f"plot: {plot_path}")


main.add_command(car)
main.add_command(garage)
main.add_command(reward)
main.add_command(export)
main.add_command(import_)
bench.add_command(bench_policy)
bench.add_command(bench_car)

if __name__ == "__main__":
    main()

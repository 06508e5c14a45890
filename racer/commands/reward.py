"""`racer reward test`: call a reward function on synthetic and logged states of a track."""
from __future__ import annotations

import ast
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import click
import gymnasium as gym
import numpy as np
from rich.console import Console
from rich.table import Table

from racer.commands.errors import InputFailure, RacerGroup
from racer.commands.race import race_config, race_options
from racer.reward import (STRICT_TIME_LIMIT, RewardFunction, RewardFunctionError, RewardTimeoutError, example_rewards,
                          find_reward_file)
from sim import ENV_ID
from sim.car import CONTROL_DT, CarSpec
from sim.params import copy_params
from sim.track import Track

console = Console()
PLOT_SPACING = 0.25  # m between the centre-line points of the plot
TEST_SPEED = 1.0  # m/s: the commanded speed of the synthetic states
BORDER_INSIDE = 0.05  # m inside a border for the "border" cases
BEYOND_BORDER = 0.35  # m beyond a border for the "off track" cases: every wheel off
# lateral positions: (side, + = left; metres beyond the border, negative = inside)
LATERAL = {"centre": (0, 0.0), "left border": (1, -BORDER_INSIDE), "right border": (-1, -BORDER_INSIDE),
           "off track left": (1, BEYOND_BORDER), "off track right": (-1, BEYOND_BORDER)}
OBJECT_PARAMS = ("closest_objects", "objects_distance", "objects_distance_from_center", "objects_heading",
                 "objects_left_of_center", "objects_location", "objects_speed", "object_in_camera")
TRACE_COLUMNS = ("X", "Y", "yaw", "steer", "throttle")


class StateMaker:
    """Real params for chosen states: the env measures the pose at reset, as on every step.

    The pose is given by the params' own (x, y), the car's front point.  The keys that an
    episode rather than a pose decides (steering, speed, steps, progress, sim_time) are set
    as a car driving from the start line at the commanded speed would have them.
    """

    def __init__(self, track: str, race: str = "time-trial", race_config: dict | None = None):
        self.envs = {rev: gym.make(ENV_ID, track=track, sensors=["LIDAR"], reverse=rev, race=race,
                                   race_config=race_config) for rev in (False, True)}
        self.track: Track = self.envs[False].unwrapped.track
        self.driving = {False: self.track, True: self.track.reversed()}
        self.front = CarSpec().front_point

    def params(self, x: float, y: float, heading_deg: float, reverse: bool = False, steer: float = 0.0,
               speed: float = TEST_SPEED, steps: float | None = None, progress: float | None = None) -> dict:
        h = math.radians(heading_deg)
        pose = (x - self.front * math.cos(h), y - self.front * math.sin(h), heading_deg)
        _, info = self.envs[reverse].reset(options={"pose": pose})
        p = copy_params(info["params"])
        s = p["projection_distance"]
        if steps is None:
            steps = 2.0 + round(s / (max(speed, 0.1) * CONTROL_DT))
        if progress is None:
            progress = 100.0 * s / p["track_length"]
        p.update(steering_angle=float(steer), speed=float(speed), steps=float(steps), progress=float(progress),
                 sim_time=(steps - 1) * CONTROL_DT)
        return p

    def at(self, s: float, lateral: str = "centre", reverse: bool = False) -> dict:
        """Params at arc length `s` of the driving direction and a LATERAL position, facing along
        the track."""
        track = self.driving[reverse]
        (cx, cy), yaw = track.point_at(s)
        side, beyond = LATERAL[lateral]
        proj = track.project(np.array([[cx, cy]]))
        half = float(proj.half_left[0] if side > 0 else proj.half_right[0])
        (x, y), _ = track.point_at(s, side * (half + beyond))
        return self.params(float(x), float(y), math.degrees(float(yaw)), reverse)

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


@dataclass
class Outcome:
    """The calls of one group of states: rewards (NaN where a call failed) and the errors."""

    case: str
    rewards: list[float]
    errors: list[RewardFunctionError]


def call_all(fn: RewardFunction, case: str, states: list[dict]) -> Outcome:
    """Call `fn` on a copy of each state (it may change its params); a call stopped at the time
    limit ends the test (RewardTimeoutError): the next would most likely hang as long."""
    out = Outcome(case, [], [])
    for params in states:
        try:
            out.rewards.append(fn(copy_params(params)))
        except RewardTimeoutError:
            raise
        except RewardFunctionError as exc:
            out.rewards.append(math.nan)
            out.errors.append(exc)
    return out


def synthetic_cases(maker: StateMaker) -> dict[str, dict]:
    """Centre line, just inside both borders, off track, the start and just before the finish,
    in both driving directions."""
    length = maker.track.length
    cases = {}
    for reverse, label in ((False, "forward"), (True, "reverse")):
        cases[f"{label}: start line"] = maker.at(0.1, "centre", reverse)
        for lateral in LATERAL:
            cases[f"{label}: {lateral}"] = maker.at(0.25 * length, lateral, reverse)
        cases[f"{label}: before the finish"] = maker.at(length - 0.2, "centre", reverse)
    return cases


def trace_states(maker: StateMaker, path: Path) -> tuple[list[dict], list[float]]:
    """States of a DeepRacer trace CSV (prepare rows left out), and the rewards it logged."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InputFailure(f"{path}: the trace has no column {', '.join(missing)}; "
                               f"expected at least {', '.join(TRACE_COLUMNS)}")
        states, logged = [], []
        for line, row in enumerate(reader, start=2):
            try:
                if row.get("episode_status") == "prepare" or float(row.get("steps") or 2) < 2:
                    continue  # DeepRacer does not call the function on the prepare step
                states.append(maker.params(
                    float(row["X"]), float(row["Y"]), float(row["yaw"]), steer=float(row["steer"]),
                    speed=float(row["throttle"]), steps=float(row["steps"]) if row.get("steps") else None,
                    progress=float(row["progress"]) if row.get("progress") else None))
            except ValueError as exc:
                raise InputFailure(f"{path}, line {line}: {exc}") from None
            logged.append(float(row["reward"]) if row.get("reward") else math.nan)
    return states, logged


def _describe(p: dict) -> str:
    wheels = "off track" if p["is_offtrack"] else "all wheels on" if p["all_wheels_on_track"] else "partly on"
    return (f"({p['x']:.2f}, {p['y']:.2f}) {p['heading']:.0f}°, progress {p['progress']:.1f}%, "
            f"{p['distance_from_center']:.3f} m from centre, {wheels}")


def _row(outcome: Outcome, params: dict | None) -> list[str]:
    ok = np.array([r for r in outcome.rewards if not math.isnan(r)])
    if params is not None:
        return [outcome.case, _describe(params), outcome.errors[0].summary if outcome.errors else f"{ok[0]:.4g}"]
    text = f"{len(outcome.rewards)} states"
    if len(ok):
        text += f", reward min {ok.min():.4g} / mean {ok.mean():.4g} / max {ok.max():.4g}"
    if outcome.errors:
        text += f", {len(outcome.errors)} failed, the first: {outcome.errors[0].summary}"
    return [outcome.case, "", text]


def reads_objects(path: Path) -> bool:
    """Whether a reward file's source names one of the params that only races with objects fill."""
    source = path.read_text(encoding="utf-8-sig")
    return any(f"'{key}'" in source or f'"{key}"' in source for key in OBJECT_PARAMS)


def reward_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a reward file's path, or a shipped example's name -> the file's path."""
    if value is None:
        return None
    try:
        return str(find_reward_file(value))
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group(cls=RacerGroup)
def reward() -> None:
    """Reward functions: try them before training."""


@reward.command("examples")
def examples() -> None:
    """The example reward functions shipped with racer (use one by name: --reward NAME)."""
    for name, path in example_rewards().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = [ast.get_docstring(n) for n in [tree, *tree.body] if isinstance(n, (ast.Module, ast.FunctionDef))]
        summary = next((d for d in docs if d), "").split(".")[0].replace("\n", " ")
        console.print(f"{name:<20} {summary}", soft_wrap=True, markup=False)
        console.print(f"{'':<20} {path}", soft_wrap=True, markup=False, style="dim")


@reward.command("test")
@click.argument("file", callback=reward_file)
@click.option("--track", default="reinvent-like", show_default=True, help="Bundled track name or DeepRacer .npy.")
@click.option("--strict", is_flag=True, help="Apply the AWS console validator's rules too.")
@click.option("--trace", "trace_path", type=click.Path(exists=True, dir_okay=False),
              help="A DeepRacer trace CSV: also replay its logged states.")
@click.option("--plot", "plot_path", default="reward_plot.png", show_default=True, type=click.Path(dir_okay=False),
              help="Where to save the plot of the reward along the centre line.")
@race_options(default=None)
def test(file: str, track: str, strict: bool, trace_path: str | None, plot_path: str, race: str | None,
         race_config_file: str | None) -> None:
    """Call FILE's reward_function on states along the track; exit code 1 if a call fails.

    Each call (and the import) may take STRICT_TIME_LIMIT (5 s); one stopped there ends the test.
    Without --race, a function that reads the object params is tested in an object-avoidance race.
    """
    fn = RewardFunction(file, strict=strict, time_limit=STRICT_TIME_LIMIT)
    if race is None:
        race = "object-avoidance" if reads_objects(Path(file)) else "time-trial"
        if race != "time-trial":
            console.print(f"{Path(file).name} reads the object params: testing it in an {race} race "
                          f"(--race time-trial to test it without objects)")
    maker = StateMaker(track, race, race_config(race, race_config_file))
    try:
        cases = synthetic_cases(maker)
        outcomes = [call_all(fn, case, [params]) for case, params in cases.items()]
        length = maker.track.length
        n = max(8, round(length / PLOT_SPACING))
        line = [maker.at(s) for s in np.arange(n) * length / n]
        centre = call_all(fn, f"centre line, every {length / n:.2f} m", line)
        outcomes.append(centre)
        if trace_path:
            states, logged = trace_states(maker, Path(trace_path))
            outcomes.append(call_all(fn, f"trace {Path(trace_path).name}", states))
            differs = np.abs(np.array(outcomes[-1].rewards) - np.array(logged)) > 1e-3 * (1 + np.abs(logged))
            if differs.any():
                console.print(f"{int(differs.sum())} of {len(states)} trace rewards differ from the logged ones")
    finally:
        maker.close()

    table = Table(title=f"{Path(file).name} on {maker.track.name}")
    table.add_column("case", no_wrap=True)
    table.add_column("state")
    table.add_column("reward")
    for outcome in outcomes:
        table.add_row(*_row(outcome, cases.get(outcome.case)))
    console.print(table)

    from racer.plots import plot_reward_over_track
    plot_reward_over_track(maker.track, [p["x"] for p in line], [p["y"] for p in line],
                           centre.rewards, plot_path)
    console.print(f"plot: {plot_path}")
    errors = [e for o in outcomes for e in o.errors]
    if errors:
        console.print(f"{len(errors)} call(s) failed; the first:\n{errors[0]}", soft_wrap=True)
        raise click.exceptions.Exit(1)

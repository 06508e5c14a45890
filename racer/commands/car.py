"""`racer car up` and `racer bench car`: the one module through which the racer CLI reaches car/.

`car up` starts a car launch file's nodes (the real car, or the car against the simulator).
What needs ROS 2 (the `car` extra) or torch (`train`) is imported inside the commands, so that
the rest of the CLI works without them.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from car.launcher import NodeExited, declared_args, find_launch_file, parse_launch, start
from racer.bundle.format import BundleError
from racer.bundle.runtime import BundlePolicy
from racer.commands.errors import InputFailure, RacerGroup

console = Console()


def _pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected name=value", param_hint="--arg")
        out[key.strip()] = value
    return out


def check_model(model: str):
    """Load the bundle as the inference node will; a clear refusal when it cannot run."""
    try:
        return BundlePolicy.load(model)
    except BundleError as exc:
        raise InputFailure(f"refusing to start the car: the model cannot run: {exc}") from None


def _read_results(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def print_results(res: dict) -> None:
    table = Table(title=f"Simulated laps on {res.get('track', '?')}")
    for col in ("lap", "time (s)", "completion", "off-track", "resets", "status"):
        table.add_column(col, justify="right")
    for lap in res.get("laps", []):
        table.add_row(str(lap["trial"]), f"{lap['time_s']:.3f}", f"{lap['completion']:.1f}%",
                      str(lap["off_track"]), str(lap["resets"]), lap["status"])
    console.print(table)
    console.print(f"{res.get('laps_done', 0)}/{res.get('laps_target', '?')} laps, completion "
                  f"{res.get('completion', 0.0):.1f}%, status {res.get('status')}")


@click.group(cls=RacerGroup)
def car() -> None:
    """The car stack: camera/LIDAR -> inference -> navigation -> control, on the car or the simulator."""


@car.command("up")
@click.argument("launch_file")
@click.option("--model", required=True, type=click.Path(), help="Exported model bundle (racer export).")
@click.option("--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C, or "
              "for a simulator launch until the laps are done).")
@click.option("--arg", "args", multiple=True, metavar="NAME=VALUE", help="A launch argument (repeatable).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Logs and results. Default: runs/<time>-car.")
@click.option("--domain-id", type=click.IntRange(0, 101), default=None,
              help="ROS_DOMAIN_ID of the graph (default: $ROS_DOMAIN_ID or random). Traffic stays on localhost.")
@click.option("--keep-running", is_flag=True, help="Simulator launch: keep running after the laps are done.")
def up(launch_file: str, model: str, duration: float | None, args: tuple[str, ...], run_dir: str | None,
       domain_id: int | None, keep_running: bool) -> None:
    """Start LAUNCH_FILE's nodes (ROS 2 YAML launch format) with MODEL; stop them on exit.
    LAUNCH_FILE is a path, or a packaged launch file's name (car_sim.launch.yaml, car.launch.yaml).

    \b
    racer car up car_sim.launch.yaml --model BUNDLE --arg track=oval \\
        --arg max_speed=1.0 --arg autonomous=true
    """
    launch_args = _pairs(args)
    if "model" in launch_args:
        raise click.BadParameter("give the model with --model, not --arg model=...", param_hint="--arg")
    run = Path(run_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-car").resolve()
    launch_args["model"] = str(Path(model).resolve())
    launch_file = str(find_launch_file(launch_file))
    declared = declared_args(launch_file)
    if "run_dir" in declared and "run_dir" not in launch_args:
        launch_args["run_dir"] = str(run)
    nodes = parse_launch(launch_file, launch_args)  # a bad file or --arg fails before the model loads
    policy = check_model(model)  # refuse before any node (or motor) starts
    sensors = list(policy.sensors)
    if "stereo" in declared and "stereo" not in launch_args:  # the real car's cameras: as the model needs
        launch_args["stereo"] = "true" if "STEREO_CAMERAS" in sensors else "false"
        nodes = parse_launch(launch_file, launch_args)

    results = None
    for n in nodes:
        if n.exec == "sim_bridge_node" and n.params.get("results_file"):
            results = Path(str(n.params["results_file"]))
            results.unlink(missing_ok=True)  # a stale file from an earlier run would end this one at once
    launch = start(nodes, run, domain_id=domain_id)

    table = Table(title=f"{Path(launch_file).name}: ROS_DOMAIN_ID={launch.domain_id}, localhost only, logs in {run}")
    for col in ("node", "executable", "pid", "log"):
        table.add_column(col)
    for p in launch.procs:
        table.add_row(p.name, f"{p.spec.pkg}/{p.spec.exec}", str(p.popen.pid), p.log.name)
    console.print(table)
    console.print(f"model {model}: sensors {', '.join(sensors)}, {policy.actions.kind} actions")
    from car.topics import graph_topics
    execs = {n.exec for n in nodes}
    console.print("topics: " + ", ".join(f"{t} ({ty})" for t, ty in graph_topics(execs, sensors)), markup=False)
    del policy  # the inference node loads its own copy

    failed: Exception | None = None
    end = None if duration is None else time.monotonic() + duration
    try:
        while end is None or time.monotonic() < end:
            launch.wait(0.5 if end is None else max(0.0, min(0.5, end - time.monotonic())))
            if results is not None and not keep_running:
                res = _read_results(results)
                if res and res.get("status") == "complete":
                    console.print("laps complete")
                    break
    except NodeExited as exc:
        failed = exc
    except KeyboardInterrupt:
        console.print("stopping (Ctrl-C)")
    finally:
        codes = launch.stop()
    console.print("stopped: " + ", ".join(f"{k} ({v})" for k, v in codes.items()))
    if results is not None:
        res = _read_results(results)
        if res:
            print_results(res)
            console.print(f"results: {results}")
    if failed is not None:
        raise click.ClickException(str(failed))


@click.command("car")
@click.argument("bundle", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(2.0),
              help="How long to measure the running graph.")
@click.option("--track", default="oval", show_default=True)
@click.option("-n", "n", default=2000, show_default=True, type=click.IntRange(100), help="Policy calls to time.")
def bench_car(bundle: str | None, seconds: float, track: str, n: int) -> None:
    """Policy latency (p50/p99, one core) of the stereo + LIDAR reference networks (FP32, and with
    --int8-weights) and of BUNDLE, then the sensor message -> PWM command latency through the car's
    ROS 2 graph driving BUNDLE (default: the stereo + LIDAR shallow FP32 reference) against the
    simulator.  Run it where DDS may only use loopback
    (e.g. `unshare -rn sh -c 'ip link set lo up && racer bench car'`)."""
    from car.bench import bench_car_latency
    from racer.bench import REFERENCE_POLICIES, bench_policy_latency, reference_bundle
    with tempfile.TemporaryDirectory(prefix="racer-bench-car-") as tmp:
        policies = {}
        for name, (sensors, network, precision) in REFERENCE_POLICIES.items():
            console.print(f"building the {name} reference bundle ...")
            policies[name] = reference_bundle(sensors, network, precision, tmp)
        if bundle:
            check_model(bundle)
            policies[bundle] = Path(bundle)
        for name, path in policies.items():
            r = bench_policy_latency(path, n=n)
            console.print(f"policy {name}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms ({n} calls, one core)")
        driven = bundle or policies[next(iter(REFERENCE_POLICIES))]
        r = bench_car_latency(driven, seconds=seconds, track=track)
        console.print(f"graph: sensor -> PWM p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms "
                      f"({r['n']} sensor messages to PWM, {r['rate_hz']:.1f} Hz, {seconds:.0f} s on {track}, "
                      f"model {driven})", soft_wrap=True)

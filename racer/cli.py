"""The `racer` command line."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

console = Console()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """racer: train DeepRacer-style models on your laptop, and run them on the car."""


@main.command()
@click.option("--track", default="reinvent-like", show_default=True, help="Bundled track name or DeepRacer .npy path.")
@click.option("--laps", default=3, show_default=True, type=click.IntRange(1))
@click.option("--speed", "max_speed", default=1.0, show_default=True, type=click.FloatRange(0.1, 4.0),
              help="Speed limit of the scripted driver, m/s.")
@click.option("--reverse", is_flag=True, help="Drive the track clockwise.")
@click.option("--seed", default=0, show_default=True)
def drive(track: str, laps: int, max_speed: float, reverse: bool, seed: int) -> None:
    """Drive laps with the scripted pure-pursuit expert and print lap times."""
    from racer.driving import drive_expert
    results = drive_expert(track, laps, max_speed=max_speed, reverse=reverse, seed=seed)
    print_laps(results, title=f"Scripted expert on {track}, speed limit {max_speed} m/s")


def print_laps(results, title: str) -> None:
    """A per-lap table (time, completion, off-tracks, resets) and the total."""
    table = Table(title=title)
    for col in ("lap", "time (s)", "completion", "off-track", "crashed", "resets", "status"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r.trial), f"{r.time_s:.3f}", f"{r.completion:.1f}%", str(r.off_track),
                      str(r.crashed), str(r.resets), r.status)
    console.print(table)
    total = sum(r.time_s for r in results)
    done = sum(r.status == "lap_complete" for r in results)
    console.print(f"total {total:.3f} s, {done}/{len(results)} laps complete")


@main.group()
def bench() -> None:
    """Benchmarks that print figures."""


@bench.command("env")
@click.option("--steps", default=5000, show_default=True, type=click.IntRange(100))
@click.option("--track", default="reinvent-like", show_default=True)
def bench_env(steps: int, track: str) -> None:
    """Env steps/s per sensor configuration (params + a typical reward every step), one core."""
    from racer.bench import SENSOR_CONFIGS, bench_env as run
    for name, sensors in SENSOR_CONFIGS.items():
        r = run(sensors, steps=steps, track=track)
        console.print(f"{name:<16} {r.steps_per_s:7.0f} steps/s  real-time factor {r.real_time_factor:5.0f}x"
                      f"  ({r.steps} steps, {r.episodes} episodes)", soft_wrap=True)


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
        table.add_row(name, f"{t.length:.2f}", f"{t.widths.mean():.3f}", str(len(t.center)))
    console.print(table)


@tracks.command("show")
@click.argument("track")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save a plot of the track here.")
def tracks_show(track: str, plot_path: str | None) -> None:
    """Describe a bundled track or a .npy file; optionally plot it."""
    from sim.track import load
    t = load(track)
    console.print(f"{t.name}: {t.length:.2f} m long, width {t.widths.min():.3f}-{t.widths.max():.3f} m, "
                  f"{len(t.center)} waypoints, {'loop' if t.closed else 'open'}")
    if plot_path:
        from racer.plots import plot_track
        plot_track(t, plot_path)
        console.print(f"plot: {plot_path}")


if __name__ == "__main__":
    main()

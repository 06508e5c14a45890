"""`racer garage`: create, show and validate car configs (model_metadata.json)."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from racer.garage import (METADATA_FILE, NEURAL_NETWORKS, PRESETS, GarageError, ModelMetadata, car_dir,
                          load_metadata, metadata_path, new_metadata, save_metadata)
from racer.commands.errors import RacerGroup
from sim.car import CarSpec
from sim.observation import CAMERA_SENSORS, LIDAR_SENSORS

console = Console()
CAR = CarSpec()
_DIR = click.option("--dir", "garage_dir", default="garage", show_default=True,
                    type=click.Path(file_okay=False), help="The garage folder: one sub-folder per car.")


@click.group(cls=RacerGroup)
def garage() -> None:
    """Car configs: one model_metadata.json (DeepRacer schema) per car."""


@garage.command("new")
@click.argument("name")
@click.option("--sensors", default="FRONT_FACING_CAMERA", show_default=True,
              help=f"Comma-separated; cameras: {', '.join(CAMERA_SENSORS)}; lidars: {', '.join(LIDAR_SENSORS)}.")
@click.option("--actions", "preset", type=click.Choice(PRESETS), default="discrete5", show_default=True,
              help="discrete5: 5 steering angles at max speed; discrete10: x {max/2, max}; "
                   "continuous: ±30°, [0.5, max] m/s.")
@click.option("--max-speed", default=1.0, show_default=True, type=click.FloatRange(CAR.min_speed, CAR.max_speed),
              help="m/s")
@click.option("--network", type=click.Choice(NEURAL_NETWORKS), default=NEURAL_NETWORKS[0], show_default=True)
@click.option("--lidar-clipping", type=click.FloatRange(0.15, 12.0), default=None,
              help="m: LIDAR observation clipping distance (lidar_config.clipping_dist).  [default: 1.0]")
@_DIR
@click.option("--force", is_flag=True, help="Overwrite an existing car.")
def new(name: str, sensors: str, preset: str, max_speed: float, network: str, lidar_clipping: float | None,
        garage_dir: str, force: bool) -> None:
    """Write <dir>/NAME/model_metadata.json; NAME is plain: letters, digits, '-', '_', '.'."""
    names = tuple(s.strip() for s in sensors.split(",") if s.strip())
    path = car_dir(name, garage_dir) / METADATA_FILE
    md = new_metadata(names, preset, max_speed, network, lidar_clipping)
    if path.exists() and not force:
        raise GarageError(f"{path} exists; pass --force to overwrite it")
    save_metadata(md, path)
    console.print(f"wrote {path}")
    print_metadata(md)


@garage.command("show")
@click.argument("path_or_name")
@_DIR
def show(path_or_name: str, garage_dir: str) -> None:
    """Show a car: a model_metadata.json, a folder holding one, or a car name in the garage."""
    path = metadata_path(path_or_name, garage_dir)
    md = load_metadata(path)
    console.print(str(path))
    print_metadata(md)


@garage.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def validate(path: str) -> None:
    """Check a model_metadata.json; exit code 2 and the reason when it is not usable."""
    md = load_metadata(path)
    console.print(f"ok: {path} ({md.action_space_type}, {', '.join(md.sensors)}, {md.neural_network})",
                  soft_wrap=True)


def print_metadata(md: ModelMetadata) -> None:
    """The sensors, network and action space as rich tables."""
    about = Table(show_header=False)
    for key, value in (("sensors", ", ".join(md.sensors)), ("neural_network", md.neural_network),
                       ("training_algorithm", md.training_algorithm),
                       ("action_space_type", md.action_space_type), ("version", md.version)):
        about.add_row(key, value)
    if md.lidar_config is not None:
        about.add_row("lidar_config", str(md.lidar_config))
    for key, value in md.extras.items():
        about.add_row(key, str(value))
    console.print(about)
    a = md.action_space
    actions = Table(title="action space")
    if a.kind == "discrete":
        for col in ("index", "steering_angle (deg)", "speed (m/s)"):
            actions.add_column(col, justify="right")
        for i, (steer, speed) in enumerate(a.actions):
            actions.add_row(str(i), f"{steer:g}", f"{speed:g}")
    else:
        for col in ("", "low", "high"):
            actions.add_column(col, justify="right")
        actions.add_row("steering_angle (deg)", *(f"{v:g}" for v in a.steer_range))
        actions.add_row("speed (m/s)", *(f"{v:g}" for v in a.speed_range))
    console.print(actions)

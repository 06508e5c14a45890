"""The `--race` and `--race-config` options that `train`, `evaluate`, `drive` and `reward test` share."""
from __future__ import annotations

from collections.abc import Callable

import click

from sim.race_config import RACE_TYPES, parse_race_config


def race_options(default: str | None = "time-trial") -> Callable:
    """Add `--race TYPE` and `--race-config FILE` (YAML, DeepRacer/DRfC key names) to a command."""
    def add(command: Callable) -> Callable:
        command = click.option("--race-config", "race_config_file", type=click.Path(exists=True, dir_okay=False),
                               help="YAML of the race's knobs in DeepRacer's spelling (NUMBER_OF_OBSTACLES, "
                                    "OBJECT_POSITIONS, NUMBER_OF_BOT_CARS, BOT_CAR_SPEED, IS_LANE_CHANGE, "
                                    "...).")(command)
        return click.option("--race", type=click.Choice(RACE_TYPES), default=default,
                            show_default=default is not None, help="Race type.")(command)
    return add


def race_config(race: str | None, race_config_file: str | None) -> dict:
    """The race config a command was given, checked and written out in full (DeepRacer spelling)."""
    if race is None:
        if race_config_file:
            raise click.UsageError("--race-config needs --race")
        return {}
    return parse_race_config(race, race_config_file).as_dict()

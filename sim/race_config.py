"""Race types and their knobs, read from the DeepRacer / DRfC keys users already have.

`parse_race_config(race, config)` takes a dict (or a YAML file) keyed in the users' spelling:
the simapp's UPPER_CASE names (`NUMBER_OF_OBSTACLES`) or DRfC's `run.env` names
(`DR_OA_NUMBER_OF_OBSTACLES`, `DR_H2B_BOT_CAR_PENALTY`, `DR_EVAL_MAX_RESETS`, ...); values may be
quoted strings ("True", "6", "0.5") as YAML and `run.env` give them.  Everything is checked here,
at the edge: an unknown key, a bad value or a key that does not apply to the race raises
`RaceConfigError` naming the key, the value and what is allowed.

Defaults are those of the reference simulator's CODE (the community simapp), not of its docs:
- MIN_DISTANCE_BETWEEN_OBSTACLES is a PERCENT of the track length (the code divides it by 100 and
  multiplies by the length), while DRfC's docs call it metres; MIN_DISTANCE_BETWEEN_BOT_CARS is in
  metres (the bot code uses it as it is).
- The code's counts default to 0 when the key is absent; a race of that type gets DRfC's
  template counts instead (6 boxes for object-avoidance, 3 bots for head-to-bot), since a race
  without its objects would not be that race.
- OBJECT_POSITIONS overrides NUMBER_OF_OBSTACLES and RANDOMIZE_OBSTACLE_LOCATIONS (as in the code).
- OFF_TRACK_PENALTY, COLLISION_PENALTY and NUMBER_OF_RESETS are None unless given, so the
  evaluation rules (`sim.rules.RaceRules`) keep their own defaults; the reference's evaluation
  worker defaults them to 2.0 s, 5.0 s and 0 resets, DRfC's template to 5.0 s, 5.0 s and 100.
- START_POS_OFFSET must lie in 0-1 m (the code clamps it there silently).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.errors import InputError

RACE_TYPES = ("time-trial", "object-avoidance", "head-to-bot", "head-to-model")
OBSTACLE_TYPES = ("box_obstacle", "deepracer_box_obstacle", "amazon_box_obstacle")
INNER, OUTER = 1, -1  # OBJECT_POSITIONS lanes
MAX_OBSTACLES = 30
MAX_BOT_CARS = 12
MAX_BOT_SPEED = 4.0  # m/s: the car's own top speed
DEFAULT_OBSTACLES = 6  # DRfC's template, for an object-avoidance race that does not say
DEFAULT_BOT_CARS = 3  # DRfC's template, for a head-to-bot race that does not say
START_POS_OFFSET = 0.75  # m between consecutive cars of the start grid (reference)


class RaceConfigError(InputError, ValueError):
    """A race type or race_config key/value that cannot be used, naming the key and what is allowed."""


@dataclass(frozen=True)
class RaceConfig:
    """A race type and its knobs (snake_case of the simapp's keys), validated."""

    race: str = "time-trial"
    # boxes (object-avoidance; head-to-bot and head-to-model may have them too)
    number_of_obstacles: int = 0
    obstacle_type: str = "box_obstacle"
    randomize_obstacle_locations: bool = False  # new jittered positions and random lanes every episode
    object_positions: tuple[tuple[float, int], ...] = ()  # (fraction of the length, lane 1 inner / -1 outer)
    min_distance_between_obstacles: float = 2.0  # PERCENT of the track length (the code), not metres
    is_obstacle_bot_car: bool = False  # the obstacles are parked bot cars, not boxes
    # bot cars (head-to-bot; head-to-model may have them too)
    number_of_bot_cars: int = 0
    bot_car_speed: float = 0.2  # m/s of centre-line arc length; also what objects_speed reports
    min_distance_between_bot_cars: float = 2.0  # metres
    randomize_bot_car_locations: bool = False
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0  # s: the next change starts U(lower, upper) s after the last ended
    upper_lane_change_time: float = 5.0
    lane_change_distance: float = 1.0  # m of travel a change takes
    penalty_seconds: float = 2.0  # s a bot car stands still after a collision
    # evaluation resets and the start grid (every race)
    off_track_penalty: float | None = None  # s held after an off-track reset; None: the rules' default
    collision_penalty: float | None = None  # s held after a crash reset; None: the rules' default
    number_of_resets: int | None = None  # resets allowed before a failure ends an evaluation; None: the rules'
    reset_behind_dist: float = 1.0  # m behind a box near the reset point, in the other lane
    enable_mercy_reset: bool = False  # after max_resets_after_crash resets at one box, reset ahead of it
    reset_ahead_dist: float = 1.0  # m
    max_resets_after_crash: int = 3
    start_pos_offset: float = START_POS_OFFSET

    def as_dict(self) -> dict[str, Any]:
        """The keys in the users' spelling that apply to this race (given ones only), for a YAML file
        or a bundle; `parse_race_config(cfg.race, cfg.as_dict()) == cfg`."""
        out: dict[str, Any] = {}
        for key, spec in KEYS.items():
            value = getattr(self, spec.field)
            if self.race in spec.races and value is not None:
                out[key] = [list(p) for p in value] if key == "OBJECT_POSITIONS" else value
        return out


# ---- the keys ---------------------------------------------------------------------------
_OBSTACLE_RACES = ("object-avoidance", "head-to-bot", "head-to-model")
_BOT_RACES = ("head-to-bot", "head-to-model")


@dataclass(frozen=True)
class _Key:
    field: str
    parse: Callable[[Any], Any]  # raises ValueError(description of what is allowed)
    races: tuple[str, ...]


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("expected true or false")


def _number(value: Any) -> float:
    """A finite float from a number or a numeric string; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _integer(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    allowed = f"an integer {lo}-{hi}" if hi is not None else f"an integer, at least {lo}"

    def parse(value: Any) -> int:
        try:
            number = _number(value)
        except ValueError:
            raise ValueError(f"expected {allowed}") from None
        if number != int(number) or number < lo or (hi is not None and number > hi):
            raise ValueError(f"expected {allowed}")
        return int(number)
    return parse


def _real(lo: float, hi: float | None = None, low_open: bool = False, unit: str = "") -> Callable[[Any], float]:
    if hi is not None:
        allowed = f"a number {'above' if low_open else 'from'} {lo:g} {'and at most' if low_open else 'to'} {hi:g}"
    else:
        allowed = f"a number {'above' if low_open else 'of at least'} {lo:g}"
    allowed += unit

    def parse(value: Any) -> float:
        try:
            number = _number(value)
        except ValueError:
            raise ValueError(f"expected {allowed}") from None
        if number < lo or (low_open and number == lo) or (hi is not None and number > hi):
            raise ValueError(f"expected {allowed}")
        return number
    return parse


def _obstacle_type(value: Any) -> str:
    if isinstance(value, str) and value.strip() in OBSTACLE_TYPES:
        return value.strip()
    raise ValueError(f"expected one of {', '.join(OBSTACLE_TYPES)}")


_POSITION = "'fraction,lane' (or [fraction, lane]) with a fraction 0-1 of the track length and lane 1 (inner) " \
            "or -1 (outer)"


def _position(entry: Any) -> tuple[float, int]:
    parts = entry.split(",") if isinstance(entry, str) else entry
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise ValueError
    fraction, lane = _number(parts[0]), _number(parts[1])
    if not 0.0 <= fraction <= 1.0 or lane not in (INNER, OUTER):
        raise ValueError
    return fraction, int(lane)


def _positions(value: Any) -> tuple[tuple[float, int], ...]:
    """OBJECT_POSITIONS: a list of "fraction,lane" strings or [fraction, lane] pairs, or DRfC's
    "0.23,-1;0.46,1" string; empty means none."""
    if value is None:
        return ()
    entries = [e for e in value.split(";") if e.strip()] if isinstance(value, str) else value
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f"expected a list of {_POSITION}, or a string '0.23,-1;0.46,1'")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(_position(entry))
        except ValueError:
            raise ValueError(f"entry {i} is {entry!r}; each entry is {_POSITION}") from None
    return tuple(out)


_ALL = RACE_TYPES
KEYS: dict[str, _Key] = {
    "NUMBER_OF_OBSTACLES": _Key("number_of_obstacles", _integer(0, MAX_OBSTACLES), _OBSTACLE_RACES),
    "OBSTACLE_TYPE": _Key("obstacle_type", _obstacle_type, _OBSTACLE_RACES),
    "RANDOMIZE_OBSTACLE_LOCATIONS": _Key("randomize_obstacle_locations", _boolean, _OBSTACLE_RACES),
    "OBJECT_POSITIONS": _Key("object_positions", _positions, _OBSTACLE_RACES),
    "MIN_DISTANCE_BETWEEN_OBSTACLES": _Key("min_distance_between_obstacles",
                                           _real(0.0, 100.0, unit=" (a percent of the track length)"),
                                           _OBSTACLE_RACES),
    "IS_OBSTACLE_BOT_CAR": _Key("is_obstacle_bot_car", _boolean, _OBSTACLE_RACES),
    "NUMBER_OF_BOT_CARS": _Key("number_of_bot_cars", _integer(0, MAX_BOT_CARS), _BOT_RACES),
    "BOT_CAR_SPEED": _Key("bot_car_speed", _real(0.0, MAX_BOT_SPEED, low_open=True, unit=" m/s"), _BOT_RACES),
    "MIN_DISTANCE_BETWEEN_BOT_CARS": _Key("min_distance_between_bot_cars", _real(0.0, unit=" m"), _BOT_RACES),
    "RANDOMIZE_BOT_CAR_LOCATIONS": _Key("randomize_bot_car_locations", _boolean, _BOT_RACES),
    "IS_LANE_CHANGE": _Key("is_lane_change", _boolean, _BOT_RACES),
    "LOWER_LANE_CHANGE_TIME": _Key("lower_lane_change_time", _real(0.0, unit=" s"), _BOT_RACES),
    "UPPER_LANE_CHANGE_TIME": _Key("upper_lane_change_time", _real(0.0, unit=" s"), _BOT_RACES),
    "LANE_CHANGE_DISTANCE": _Key("lane_change_distance", _real(0.0, low_open=True, unit=" m"), _BOT_RACES),
    "PENALTY_SECONDS": _Key("penalty_seconds", _real(0.0, unit=" s"), _BOT_RACES),
    "OFF_TRACK_PENALTY": _Key("off_track_penalty", _real(0.0, unit=" s"), _ALL),
    "COLLISION_PENALTY": _Key("collision_penalty", _real(0.0, unit=" s"), _ALL),
    "NUMBER_OF_RESETS": _Key("number_of_resets", _integer(0), _ALL),
    "RESET_BEHIND_DIST": _Key("reset_behind_dist", _real(0.0, unit=" m"), _ALL),
    "ENABLE_MERCY_RESET": _Key("enable_mercy_reset", _boolean, _ALL),
    "RESET_AHEAD_DIST": _Key("reset_ahead_dist", _real(0.0, unit=" m"), _ALL),
    "MAX_RESETS_AFTER_CRASH": _Key("max_resets_after_crash", _integer(1), _ALL),
    "START_POS_OFFSET": _Key("start_pos_offset", _real(0.0, 1.0, unit=" m"), _ALL),
}
RACE_TYPE_KEY = "RACE_TYPE"  # may repeat the race (simapp spelling OBJECT_AVOIDANCE too); must agree
# DRfC's run.env names -> the simapp's
ALIASES: dict[str, str] = {
    **{f"DR_OA_{k}": k for k in ("NUMBER_OF_OBSTACLES", "OBSTACLE_TYPE", "RANDOMIZE_OBSTACLE_LOCATIONS",
                                 "OBJECT_POSITIONS", "MIN_DISTANCE_BETWEEN_OBSTACLES", "IS_OBSTACLE_BOT_CAR")},
    **{f"DR_H2B_{k}": k for k in ("NUMBER_OF_BOT_CARS", "BOT_CAR_SPEED", "MIN_DISTANCE_BETWEEN_BOT_CARS",
                                  "RANDOMIZE_BOT_CAR_LOCATIONS", "IS_LANE_CHANGE", "LOWER_LANE_CHANGE_TIME",
                                  "UPPER_LANE_CHANGE_TIME", "LANE_CHANGE_DISTANCE")},
    "DR_H2B_BOT_CAR_PENALTY": "PENALTY_SECONDS",
    "DR_EVAL_OFF_TRACK_PENALTY": "OFF_TRACK_PENALTY",
    "DR_EVAL_COLLISION_PENALTY": "COLLISION_PENALTY",
    "DR_EVAL_MAX_RESETS": "NUMBER_OF_RESETS",
    "DR_EVAL_RESET_BEHIND_DIST": "RESET_BEHIND_DIST",
    "DR_RACE_TYPE": RACE_TYPE_KEY,
}


def race_type(race: Any, where: str = "race") -> str:
    """The race type in RACE_TYPES spelling; the simapp's `OBJECT_AVOIDANCE` spelling is accepted."""
    name = race.strip().lower().replace("_", "-") if isinstance(race, str) else None
    if name not in RACE_TYPES:
        raise RaceConfigError(f"{where}: expected one of {', '.join(RACE_TYPES)}, got {race!r}")
    return name


def parse_race_config(race: str, config: Mapping[str, Any] | str | Path | None = None) -> RaceConfig:
    """Validate a race type and its knobs (a dict, or the path of a YAML file) into a RaceConfig.

    Keys: the simapp's names (any case) or DRfC's `DR_OA_` / `DR_H2B_` / `DR_EVAL_` names; a key
    may appear once under one of its names.  Raises RaceConfigError naming the key, the value and
    what is allowed.
    """
    race = race_type(race)
    lines: dict[str, int] = {}
    source = "race_config"
    if isinstance(config, (str, Path)):
        source = str(config)
        config, lines = _load_yaml(Path(config))
    elif config is None:
        config = {}
    elif not isinstance(config, Mapping):
        raise RaceConfigError(f"race_config: expected a dict of keys such as NUMBER_OF_OBSTACLES, or the path "
                              f"of a YAML file, got {type(config).__name__}")

    def where(key: str) -> str:
        return f"{source}:{lines[key]}: {key}" if key in lines else f"{source}.{key}"

    values: dict[str, Any] = {}
    named: dict[str, str] = {}  # canonical key -> the spelling used
    for raw_key, value in config.items():
        key = str(raw_key).strip().upper()
        key = ALIASES.get(key, key)
        if key in named:
            raise RaceConfigError(f"{where(str(raw_key))}: the same key as {named[key]!r}; give it once")
        named[key] = str(raw_key)
        if key == RACE_TYPE_KEY:
            if race_type(value, where(str(raw_key))) != race:
                raise RaceConfigError(f"{where(str(raw_key))}: {value!r} disagrees with the race {race!r}")
            continue
        spec = KEYS.get(key)
        if spec is None:
            raise RaceConfigError(f"{where(str(raw_key))}: unknown key; the known keys are "
                                  f"{', '.join([*KEYS, RACE_TYPE_KEY])} (or DRfC's DR_OA_/DR_H2B_/DR_EVAL_ names)")
        if race not in spec.races:
            raise RaceConfigError(f"{where(str(raw_key))}: does not apply to a {race} race; it applies to "
                                  f"{', '.join(spec.races)}")
        try:
            values[spec.field] = spec.parse(value)
        except ValueError as exc:
            raise RaceConfigError(f"{where(str(raw_key))}: {exc}, got {value!r}") from None

    if values.get("object_positions"):
        values["number_of_obstacles"] = len(values["object_positions"])
    elif race == "object-avoidance":
        values.setdefault("number_of_obstacles", DEFAULT_OBSTACLES)
    if race == "head-to-bot":
        values.setdefault("number_of_bot_cars", DEFAULT_BOT_CARS)
    cfg = RaceConfig(race=race, **values)
    if cfg.lower_lane_change_time > cfg.upper_lane_change_time:
        key = named.get("LOWER_LANE_CHANGE_TIME", "LOWER_LANE_CHANGE_TIME")
        raise RaceConfigError(f"{where(key)}: {cfg.lower_lane_change_time:g} s is above UPPER_LANE_CHANGE_TIME "
                              f"{cfg.upper_lane_change_time:g} s; the next lane change comes after "
                              f"U(lower, upper) seconds, so lower <= upper")
    return cfg


def _load_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping of a YAML file, and the line of each top-level key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RaceConfigError(f"{path}: cannot read the race config ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise RaceConfigError(f"{path}{at}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise RaceConfigError(f"{path}: expected a mapping of keys such as NUMBER_OF_OBSTACLES: 6, "
                              f"got a {type(data).__name__}")
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return data, lines


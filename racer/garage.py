"""The garage: a car config IS a DeepRacer `model_metadata.json`, validated and kept faithfully.

Keys this module does not know (our own extras, or a newer DeepRacer's) are kept in
`ModelMetadata.extras` and written back unchanged.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racer.bundle.files import atomic_write_text, read_json
from racer.bundle.format import METADATA_FILE
from sim.actions import ActionSpace, ActionSpaceError, parse_action_space
from sim.car import CarSpec
from sim.errors import InputError
from sim.observation import LIDAR_SENSORS, SENSORS, LidarConfig, SensorSuite

NEURAL_NETWORKS = ("DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "DEEP_CONVOLUTIONAL_NETWORK",
                   "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
                   "RACER_POOLED_SHALLOW")  # ours: the shallow stack after 2x average pooling
TRAINING_ALGORITHMS = ("clipped_ppo", "sac")
ACTION_SPACE_TYPES = ("discrete", "continuous")
DEFAULT_SENSORS = ("FRONT_FACING_CAMERA",)
DEFAULT_VERSION = "5"
PRESETS = ("discrete5", "discrete10", "continuous")
PRESET_ANGLES = tuple(f * CarSpec().max_steer_deg for f in (-1.0, -0.5, 0.0, 0.5, 1.0))  # -30 .. 30 deg
CONTINUOUS_MIN_SPEED = 0.5
_KNOWN_KEYS = ("action_space", "sensor", "neural_network", "training_algorithm",
               "action_space_type", "version", "lidar_config")
MAX_NAME_LENGTH = 64
_CAR_NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")


class GarageError(InputError, ValueError):
    """A car config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ModelMetadata:
    """The contents of a `model_metadata.json`."""

    action_space: ActionSpace
    sensors: tuple[str, ...] = DEFAULT_SENSORS
    neural_network: str = NEURAL_NETWORKS[0]
    training_algorithm: str = TRAINING_ALGORITHMS[0]
    action_space_type: str = "discrete"
    version: str = DEFAULT_VERSION
    lidar_config: dict | None = None
    extras: dict = field(default_factory=dict)


def parse_metadata(data: Any, where: str = "<model_metadata>") -> ModelMetadata:
    """Validate a decoded `model_metadata.json`; missing keys get DeepRacer's defaults."""
    if not isinstance(data, dict):
        raise GarageError(f"{where}: expected a JSON object, got {type(data).__name__}")
    spec = data.get("action_space")
    kind = _action_space_type(data.get("action_space_type"), spec, where)
    try:
        actions = parse_action_space(spec, kind)
    except ActionSpaceError as exc:
        raise GarageError(f"{where}: {exc}") from None
    sensors = _sensors(data.get("sensor", list(DEFAULT_SENSORS)), where)
    lidar_config = data.get("lidar_config")
    if lidar_config is not None:
        if not isinstance(lidar_config, dict):
            raise GarageError(f"{where}: lidar_config: expected an object, got {lidar_config!r}")
        try:
            LidarConfig.from_overrides(lidar_config)
        except (ValueError, TypeError) as exc:
            raise GarageError(f"{where}: {exc}") from None
    version = data.get("version", DEFAULT_VERSION)
    if isinstance(version, bool) or not isinstance(version, (str, int, float)):
        raise GarageError(f"{where}: version: expected a string such as \"5\", got {version!r}")
    return ModelMetadata(
        action_space=actions, sensors=sensors,
        neural_network=_choice(data, "neural_network", NEURAL_NETWORKS, where),
        training_algorithm=_choice(data, "training_algorithm", TRAINING_ALGORITHMS, where),
        action_space_type=actions.kind, version=str(version), lidar_config=lidar_config,
        extras={k: v for k, v in data.items() if k not in _KNOWN_KEYS})


def _action_space_type(declared: Any, spec: Any, where: str) -> str:
    """The declared type, checked against the form of `action_space`; inferred when missing."""
    inferred = "continuous" if isinstance(spec, dict) else "discrete"
    if declared is None:
        return inferred
    if declared not in ACTION_SPACE_TYPES:
        raise GarageError(f"{where}: action_space_type: {declared!r} is not one of "
                          f"{', '.join(ACTION_SPACE_TYPES)}")
    if spec is not None and declared != inferred:
        form = "an object of ranges" if inferred == "continuous" else "a list of actions"
        raise GarageError(f"{where}: action_space_type: {declared!r} does not match action_space, "
                          f"which is {form} ({inferred})")
    return declared


def _sensors(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise GarageError(f"{where}: sensor: expected a list of sensor names, got {value!r}")
    for i, name in enumerate(value):
        if name not in SENSORS:
            raise GarageError(f"{where}: sensor[{i}]: {name!r} is not a sensor; known: {', '.join(SENSORS)}")
    try:
        return SensorSuite(tuple(value)).names
    except ValueError as exc:
        raise GarageError(f"{where}: {exc}") from None


def _choice(data: dict, key: str, allowed: tuple[str, ...], where: str) -> str:
    value = data.get(key, allowed[0])
    if value not in allowed:
        raise GarageError(f"{where}: {key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def metadata_to_dict(md: ModelMetadata) -> dict:
    """The JSON object of a `model_metadata.json`, DeepRacer's keys first, then the extras."""
    out = {"action_space": md.action_space.to_metadata(), "sensor": list(md.sensors),
           "neural_network": md.neural_network, "training_algorithm": md.training_algorithm,
           "action_space_type": md.action_space_type, "version": md.version}
    if md.lidar_config is not None:
        out["lidar_config"] = md.lidar_config
    return {**out, **md.extras}


def load_metadata(path: str | Path) -> ModelMetadata:
    """Read and validate a `model_metadata.json`."""
    return parse_metadata(read_json(path, GarageError, METADATA_FILE), where=str(path))


def save_metadata(md: ModelMetadata, path: str | Path) -> None:
    """Write model_metadata.json atomically."""
    atomic_write_text(path, json.dumps(metadata_to_dict(md), indent=4) + "\n")


def preset_action_space(preset: str, max_speed: float) -> ActionSpace:
    """discrete5: 5 angles at max speed; discrete10: x {max/2, max}; continuous: ±30°, [0.5, max]."""
    if preset == "discrete5":
        spec: list | dict = [{"steering_angle": a, "speed": max_speed} for a in PRESET_ANGLES]
    elif preset == "discrete10":
        spec = [{"steering_angle": a, "speed": v} for v in (max_speed / 2, max_speed) for a in PRESET_ANGLES]
    elif preset == "continuous":
        if max_speed < CONTINUOUS_MIN_SPEED + 0.1:
            raise GarageError(f"max_speed: {max_speed} is too low for the continuous preset, whose "
                              f"speed range starts at {CONTINUOUS_MIN_SPEED}; use at least "
                              f"{CONTINUOUS_MIN_SPEED + 0.1}")
        spec = {"steering_angle": {"low": -PRESET_ANGLES[-1], "high": PRESET_ANGLES[-1]},
                "speed": {"low": CONTINUOUS_MIN_SPEED, "high": max_speed}}
    else:
        raise GarageError(f"actions: {preset!r} is not one of {', '.join(PRESETS)}")
    try:
        return parse_action_space(spec)
    except ActionSpaceError as exc:
        raise GarageError(f"max_speed {max_speed} gives an invalid action space: {exc}") from None


def new_metadata(sensors: tuple[str, ...], preset: str, max_speed: float,
                 network: str = NEURAL_NETWORKS[0], lidar_clipping: float | None = None) -> ModelMetadata:
    """A fresh, validated car config from the `racer garage new` options (`lidar_clipping`: DeepRacer's
    lidar_config.clipping_dist, m; None leaves the block out, i.e. the default)."""
    actions = preset_action_space(preset, max_speed)
    data = {"action_space": actions.to_metadata(), "sensor": list(sensors), "neural_network": network,
            "action_space_type": actions.kind}
    if lidar_clipping is not None:
        if not any(name in LIDAR_SENSORS for name in sensors):
            raise GarageError("--lidar-clipping: the car has no LIDAR (add LIDAR to --sensors)")
        data["lidar_config"] = {"clipping_dist": lidar_clipping}
    return parse_metadata(data, where="racer garage new")


def is_car_name(name: str) -> bool:
    """True for a plain car name: one folder of the garage, never a path out of it."""
    return _CAR_NAME.fullmatch(name) is not None


def car_dir(name: str, garage_dir: str | Path) -> Path:
    """The folder of the car `name` in the garage; GarageError unless the name is plain."""
    if not is_car_name(name):
        raise GarageError(f"car name {name!r}: use 1 to {MAX_NAME_LENGTH} letters, digits, '-', '_' or '.' "
                          f"(not '.' or '-' first, no '/'), e.g. my-car; it names a folder in {garage_dir}/")
    return Path(garage_dir) / name


def metadata_path(path_or_name: str | Path, garage_dir: str | Path) -> Path:
    """A `model_metadata.json` path from a file, a folder holding one, or a car name in the garage."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    folders = (p, car_dir(str(path_or_name), garage_dir)) if is_car_name(str(path_or_name)) else (p,)
    for folder in folders:
        if (folder / METADATA_FILE).is_file():
            return folder / METADATA_FILE
    raise GarageError(f"{path_or_name}: no such file, folder with {METADATA_FILE}, or car in "
                      f"{garage_dir}/")

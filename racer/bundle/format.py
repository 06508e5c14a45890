"""The bundle directory format: file names, bundle.json and what the car reads from it.

A bundle directory holds::

    bundle.json            format, observation-contract version, sensors, IR inputs, action space, ...
    model.xml, model.bin   OpenVINO IR: one float32 input per sensor (raw contract tensors,
                           cameras NHWC 0..255), one output "action" (probabilities or Gaussian mean)
    model_metadata.json    the car config (DeepRacer schema); agrees with bundle.json (checked at load)
    checkpoint.zip         the SB3 checkpoint, for resuming training elsewhere: cloudpickle, so code;
                           optional (the car does not need it), and never loaded from a bundle
    tracks/<name>.npy      the user's track the model was trained on, when it is not a bundled one

and nothing else; bundle.json lists every other file with its sha256 ("files").
"""
from __future__ import annotations

import re
from pathlib import Path

from racer.bundle.files import read_json
from sim.actions import ActionSpace, ActionSpaceError, parse_action_space
from sim.errors import InputError
from sim.observation import CONTRACT_VERSION, LidarConfig

BUNDLE_FORMAT = "racer-bundle"
BUNDLE_VERSION = 2  # 2: every file hashed, only known files, metadata agreeing with bundle.json
BUNDLE_FILE = "bundle.json"
METADATA_FILE = "model_metadata.json"
CHECKPOINT_FILE = "checkpoint.zip"
MODEL_XML, MODEL_BIN = "model.xml", "model.bin"
TRACKS_DIR = "tracks"
KNOWN_FILES = (BUNDLE_FILE, MODEL_XML, MODEL_BIN, METADATA_FILE, CHECKPOINT_FILE)  # and one tracks/<name>.npy
OPTIONAL_FILES = (CHECKPOINT_FILE,)  # listed in "files", but may have been left out (the car-test bundle)
OUTPUT_NAME = "action"
_REQUIRED = ("sensors", "inputs", "output", "action_space_type", "action_space", "track", "files")
_TRACK_FILE = re.compile(TRACKS_DIR + r"/[^/\\.][^/\\]*\.npy")
_TRACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a bundled track's name
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DEFAULT_SENSORS = ["FRONT_FACING_CAMERA"]  # DeepRacer's, when model_metadata.json has no "sensor"


class BundleError(InputError, ValueError):
    """A bundle that cannot be run here; the message names the file and the reason."""


def is_bundle_file(rel: str) -> bool:
    """Whether `rel` (a POSIX path inside a bundle) names a file a bundle may hold."""
    return rel in KNOWN_FILES or is_track_file(rel)


def is_track_file(rel: str) -> bool:
    """Whether `rel` is `tracks/<name>.npy`: a track file inside the bundle."""
    return _TRACK_FILE.fullmatch(rel) is not None


def read_bundle_json(bundle_dir: str | Path) -> dict:
    """bundle.json, checked for format, version, observation contract, keys, file list and track."""
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{path}: missing; {Path(bundle_dir)} is not an exported bundle (racer export)")
    data = read_json(path, BundleError)
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise BundleError(f"{path}: format: expected {BUNDLE_FORMAT!r}, got {got!r}")
    version = data.get("bundle_version")
    if type(version) is int and version < BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle_version {version} is from an older racer that did not hash every file; "
                          f"re-export it with `racer export RUN --out {Path(bundle_dir)}` "
                          f"(this racer reads version {BUNDLE_VERSION})")
    if version != BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle_version {version!r} is not supported (this racer reads version "
                          f"{BUNDLE_VERSION}); export it again with this racer, or update racer")
    if data.get("contract_version") != CONTRACT_VERSION:
        raise BundleError(f"{path}: the model was trained with observation contract "
                          f"v{data.get('contract_version')}, this racer speaks v{CONTRACT_VERSION}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise BundleError(f"{path}: missing key(s) {', '.join(missing)}")
    sensors, inputs = data["sensors"], data["inputs"]
    if not (isinstance(sensors, list) and all(isinstance(x, str) for x in sensors)):
        raise BundleError(f"{path}: sensors: expected a list of sensor names, got {sensors!r}")
    if not (isinstance(inputs, dict) and all(isinstance(v, list) and all(isinstance(d, int) for d in v)
                                             for v in inputs.values())):
        raise BundleError(f"{path}: inputs: expected {{sensor: [dims]}}, got {inputs!r}")
    if data["output"] != OUTPUT_NAME:
        raise BundleError(f"{path}: output: expected {OUTPUT_NAME!r}, got {data['output']!r}")
    files = data["files"]
    if not (isinstance(files, dict) and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in files.values())):
        raise BundleError(f"{path}: files: expected {{file: sha256 hex}}, got {files!r}")
    _check_track(data["track"], Path(bundle_dir), path)
    return data


def _check_track(track, bundle_dir: Path, path: Path) -> None:
    """A bundled track's name, or a track file inside the bundle: never a path outside it."""
    if isinstance(track, str) and _TRACK_NAME.fullmatch(track):
        return
    if not (isinstance(track, str) and is_track_file(track)):
        raise BundleError(f"{path}: track {track!r}: expected a bundled track's name or "
                          f"{TRACKS_DIR}/<file>.npy inside the bundle")
    if not (bundle_dir / track).is_file():
        raise BundleError(f"{path}: track {track!r}: no such file in the bundle")


def bundle_action_space(bundle_dir: str | Path, bundle: dict | None = None) -> ActionSpace:
    """The action space bundle.json declares; BundleError names the file and the key."""
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"{bundle_dir}: no such model bundle directory")
    data = read_bundle_json(bundle_dir) if bundle is None else bundle
    try:
        return parse_action_space(data["action_space"], data["action_space_type"])
    except ActionSpaceError as exc:
        raise BundleError(f"{Path(bundle_dir) / BUNDLE_FILE}: {exc}") from None


def check_metadata(bundle_dir: str | Path, actions: ActionSpace, sensors: list[str]) -> None:
    """model_metadata.json says what bundle.json says (`actions`, `sensors`): bundle.json is the one
    source of the action space, and the metadata must not tell the evaluator or a reader otherwise."""
    path = Path(bundle_dir) / METADATA_FILE
    where = Path(bundle_dir) / BUNDLE_FILE
    data = read_json(path, BundleError)
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(data).__name__}")
    spec = data.get("action_space")
    kind = data.get("action_space_type", "continuous" if isinstance(spec, dict) else "discrete")
    if kind != actions.kind:
        raise BundleError(f"{path}: action_space_type {kind!r} disagrees with {where}'s {actions.kind!r}")
    try:
        theirs = parse_action_space(spec, kind)
    except ActionSpaceError as exc:
        raise BundleError(f"{path}: {exc}") from None
    if theirs != actions:
        raise BundleError(f"{path}: action_space {_describe_actions(theirs)} disagrees with {where}'s "
                          f"{_describe_actions(actions)}")
    theirs_sensors = data.get("sensor", _DEFAULT_SENSORS)
    if not isinstance(theirs_sensors, list) or sorted(map(str, theirs_sensors)) != sorted(sensors):
        raise BundleError(f"{path}: sensor {theirs_sensors!r} disagrees with {where}'s sensors {list(sensors)}")


def _describe_actions(actions: ActionSpace) -> str:
    """An action space in a few words: '3 actions [(-30.0, 1.0), ...]' or its ranges."""
    if actions.kind == "discrete":
        return f"{actions.n} actions {list(actions.actions)}"
    (s0, s1), (v0, v1) = actions.steer_range, actions.speed_range
    return f"continuous (steering {s0}..{s1} deg, speed {v0}..{v1} m/s)"


def bundle_lidar_config(bundle_dir: str | Path) -> LidarConfig:
    """The bundle's LIDAR preprocessing: model_metadata.json's lidar_config over the defaults."""
    path = Path(bundle_dir) / METADATA_FILE
    if not path.is_file():
        return LidarConfig()
    data = read_json(path, BundleError)
    try:
        return LidarConfig.from_overrides(data.get("lidar_config") if isinstance(data, dict) else None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: {exc}") from None

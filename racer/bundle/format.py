"""The bundle directory format: file names, bundle.json and what the car reads from it.

A bundle directory holds::

    bundle.json            format, observation-contract version, sensors, IR inputs, action space, ...
    model.xml, model.bin   OpenVINO IR: one float32 input per sensor (raw contract tensors,
                           cameras NHWC 0..255), one output "action" (probabilities or Gaussian mean)
    model_metadata.json    the car config (DeepRacer schema)
    checkpoint.zip         the SB3 checkpoint, for resuming training elsewhere
"""
from __future__ import annotations

from pathlib import Path

from racer.bundle.files import read_json
from sim.actions import ActionSpace, ActionSpaceError, parse_action_space
from sim.observation import CONTRACT_VERSION, LidarConfig

BUNDLE_FORMAT = "racer-bundle"
BUNDLE_VERSION = 1
BUNDLE_FILE = "bundle.json"
METADATA_FILE = "model_metadata.json"
CHECKPOINT_FILE = "checkpoint.zip"
MODEL_XML, MODEL_BIN = "model.xml", "model.bin"
OUTPUT_NAME = "action"
_REQUIRED = ("sensors", "inputs", "output", "action_space_type", "action_space")


class BundleError(ValueError):
    """A bundle that cannot be run here; the message names the file and the reason."""


def read_bundle_json(bundle_dir: str | Path) -> dict:
    """bundle.json, checked for format, version and observation contract."""
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{path}: missing; {Path(bundle_dir)} is not an exported bundle (racer export)")
    data = read_json(path, BundleError)
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise BundleError(f"{path}: format: expected {BUNDLE_FORMAT!r}, got {got!r}")
    if data.get("bundle_version") != BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle_version {data.get('bundle_version')!r} is not supported "
                          f"(this racer reads version {BUNDLE_VERSION})")
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
    return data


def bundle_action_space(bundle_dir: str | Path, bundle: dict | None = None) -> ActionSpace:
    """The action space bundle.json declares; BundleError names the file and the key."""
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"{bundle_dir}: no such model bundle directory")
    data = read_bundle_json(bundle_dir) if bundle is None else bundle
    try:
        return parse_action_space(data["action_space"], data["action_space_type"])
    except ActionSpaceError as exc:
        raise BundleError(f"{Path(bundle_dir) / BUNDLE_FILE}: {exc}") from None


def bundle_lidar_config(bundle_dir: str | Path) -> LidarConfig:
    """The bundle's LIDAR preprocessing: model_metadata.json's lidar_config over the defaults."""
    path = Path(bundle_dir) / METADATA_FILE
    if not path.is_file():
        return LidarConfig()
    data = read_json(path, BundleError)
    try:
        return LidarConfig.from_overrides(data.get("lidar_config") if isinstance(data, dict) else None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: lidar_config: {exc}") from None

"""The runtime policy: load an exported bundle and run it with OpenVINO (numpy + openvino only).

Used by evaluation, the league and the car's inference node (see racer.bundle.format for the files).
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from racer.bundle.format import (BUNDLE_FILE, MODEL_BIN, MODEL_XML, OUTPUT_NAME, BundleError, bundle_action_space,
                                  bundle_lidar_config, check_metadata, read_bundle_json)
from racer.bundle.hashes import check_files
from sim.actions import ActionSpace
from sim.observation import LidarConfig

if TYPE_CHECKING:
    import openvino as ov

COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY"}
_CORE = None


def cache_dir() -> Path | None:
    """Where compiled models are cached: $RACER_OV_CACHE ('' = off), else <racer's cache>/ov-<version>,
    racer's cache being $RACER_CACHE_DIR or ~/.cache/racer."""
    import openvino as ov
    env = os.environ.get("RACER_OV_CACHE")
    if env is not None:
        return Path(env) if env else None
    version = re.sub(r"[^A-Za-z0-9._-]+", "_", ov.get_version())
    base = os.environ.get("RACER_CACHE_DIR") or Path.home() / ".cache" / "racer"
    return Path(base) / f"ov-{version}"


def core() -> ov.Core:
    """One OpenVINO Core per process, with the compiled-model cache when it is writable."""
    global _CORE
    if _CORE is None:
        import openvino as ov
        c = ov.Core()
        d = cache_dir()
        if d is not None:
            try:
                d.mkdir(parents=True, exist_ok=True)
                c.set_property({"CACHE_DIR": str(d)})
            except OSError:
                pass  # a read-only home: compile every time
        _CORE = c
    return _CORE


def ov_reason(exc: BaseException) -> str:
    """OpenVINO's message without its source-location lines."""
    lines = [l.strip() for l in str(exc).splitlines()]
    keep = [l for l in lines if l and not l.startswith(("Exception from", "Check '"))]
    return " ".join(keep) or str(exc).strip() or type(exc).__name__


class BundlePolicy:
    """A compiled bundle: `outputs(obs)` -> the network's output row, `action`, `command`."""

    def __init__(self, bundle_dir: Path, bundle: dict, compiled: ov.CompiledModel, actions: ActionSpace,
                 model: ov.Model | None = None) -> None:
        self.path, self.bundle, self.compiled, self.actions = bundle_dir, bundle, compiled, actions
        self.sensors: tuple[str, ...] = tuple(bundle["sensors"])
        self.discrete = actions.kind == "discrete"
        self._request = compiled.create_infer_request()
        self._model = model  # the dynamic-batch model, compiled on the first batch
        self._batch_request = None

    @classmethod
    def load(cls, bundle_dir: str | Path, sensors: list[str] | tuple[str, ...] | None = None) -> BundlePolicy:
        """Validate and compile a bundle; `sensors`: what the car carries (checked against the bundle).

        The one loader of bundles (evaluation, import, the car, the league): only the known files, each
        matching bundle.json's sha256; model_metadata.json agreeing with bundle.json's action space and
        sensors; the IR's inputs and output fitting them.  Only the IR is read: nothing is unpickled."""
        bundle_dir = Path(bundle_dir)
        bundle = read_bundle_json(bundle_dir)
        where = bundle_dir / BUNDLE_FILE
        check_files(bundle_dir, bundle)
        actions = bundle_action_space(bundle_dir, bundle)
        check_metadata(bundle_dir, actions, bundle["sensors"])
        if sensors is not None and sorted(sensors) != sorted(bundle["sensors"]):
            raise BundleError(f"{where}: the model was trained with sensors {list(bundle['sensors'])}, "
                              f"this car has {list(sensors)}")
        model = _read_model(bundle_dir)
        _check_io(model, bundle, where, actions)
        single = model.clone()  # batch 1, static: ~40 % faster per call than the dynamic-batch model,
        if bundle.get("precision") != "INT8W":  # except that OpenVINO 2026.4's CPU plugin then unpacks
            single.reshape({name: [1, *shape[1:]] for name, shape in bundle["inputs"].items()})  # int8 weights
        return cls(bundle_dir, bundle, _compile(single, bundle_dir), actions, model)

    @property
    def lidar(self) -> LidarConfig:
        """The LIDAR preprocessing the model was trained with (model_metadata.json's lidar_config)."""
        return bundle_lidar_config(self.path)

    # ---- inference ------------------------------------------------------------------------
    def _inputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s for s in self.sensors if s not in batch]
        if missing:
            raise ValueError(f"observation: no {', '.join(missing)} (the model needs {', '.join(self.sensors)})")
        return {s: np.ascontiguousarray(batch[s], dtype=np.float32) for s in self.sensors}

    def outputs(self, obs: dict) -> np.ndarray:
        """One raw observation (the env's / the contract's tensors) -> the output row."""
        inputs = self._inputs({s: np.asarray(obs[s])[None] for s in self.sensors if s in obs})
        self._request.infer(inputs, share_inputs=True)
        return self._request.get_output_tensor(0).data[0].copy()

    def outputs_batch(self, obs_list: list[dict]) -> np.ndarray:
        """A list of raw observations -> [N, outputs]."""
        if len(obs_list) == 1:
            return self.outputs(obs_list[0])[None]
        inputs = self._inputs({s: np.stack([o[s] for o in obs_list]) for s in self.sensors if s in obs_list[0]})
        if self._batch_request is None:
            self._batch_request = _compile(self._model, self.path).create_infer_request()
        self._batch_request.infer(inputs, share_inputs=True)
        return self._batch_request.get_output_tensor(0).data.copy()

    def to_action(self, out: np.ndarray) -> int | np.ndarray:
        """An output row -> the env action: argmax index, or the mean clipped to [-1, 1]^2."""
        if self.discrete:
            return int(np.argmax(out))
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def action(self, obs: dict) -> int | np.ndarray:
        """The env action for one raw observation."""
        return self.to_action(self.outputs(obs))

    def actions_batch(self, obs_list: list[dict]) -> list:
        """The env actions for a list of raw observations (one batched call)."""
        return [self.to_action(row) for row in self.outputs_batch(obs_list)]

    def command(self, obs: dict) -> tuple[float, float]:
        """(steering deg, speed m/s) for one observation."""
        return self.actions.command(self.action(obs))


def _compile(model, bundle_dir: Path):
    try:
        return core().compile_model(model, "CPU", COMPILE_CONFIG)
    except RuntimeError as exc:
        raise BundleError(f"{bundle_dir / MODEL_XML}: OpenVINO cannot compile it: {ov_reason(exc)}") from None


def _read_model(bundle_dir: Path):
    xml, bin_ = bundle_dir / MODEL_XML, bundle_dir / MODEL_BIN
    for f in (xml, bin_):
        if not f.is_file():
            raise BundleError(f"{f}: missing; the bundle is incomplete")
    try:
        ET.parse(xml)  # a clear message for a damaged XML, before OpenVINO tries every frontend
    except (ET.ParseError, OSError) as exc:
        raise BundleError(f"{xml}: not a readable OpenVINO IR ({exc})") from None
    try:
        model = core().read_model(str(xml), str(bin_))
    except RuntimeError as exc:
        reason = ov_reason(exc)
        culprit = bin_ if "bin" in reason.lower() or "weights" in reason.lower() else xml
        raise BundleError(f"{culprit}: OpenVINO cannot read the model: {reason}") from None
    return model


def _shape(port) -> list[int]:
    return [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]


def _check_io(model, bundle: dict, where: Path, actions: ActionSpace) -> None:
    """The IR's inputs and output are the ones bundle.json declares."""
    declared = {k: list(v) for k, v in bundle["inputs"].items()}
    if sorted(declared) != sorted(bundle["sensors"]):
        raise BundleError(f"{where}: inputs {sorted(declared)} do not match sensors {bundle['sensors']}")
    ir = {}
    for port in model.inputs:
        names = port.get_names()
        name = next((n for n in names if n in declared), port.get_any_name() if names else "?")
        ir[name] = _shape(port)
    if ir != declared:
        raise BundleError(f"{where}: model.xml inputs {ir} do not match bundle.json inputs {declared}")
    outs = [p for p in model.outputs if OUTPUT_NAME in p.get_names()]
    if len(model.outputs) != 1 or not outs:
        raise BundleError(f"{where}: model.xml must have one output named {OUTPUT_NAME!r}")
    width = _shape(outs[0])[-1]
    want = actions.n if actions.kind == "discrete" else 2
    if width != want:
        raise BundleError(f"{where}: model.xml output has {width} values, the {actions.kind} action space "
                          f"needs {want}")

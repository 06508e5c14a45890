"""`racer export`: a trained run -> a verified OpenVINO bundle (the torch side of bundles).

The exported network takes the RAW contract observations (one float32 input per sensor, cameras
NHWC 0..255, exactly what the env and the car's fusion node give) and does the scaling inside,
so nothing outside the network has to know how SB3 preprocessed them.  Export succeeds only
when the IR, run through the same runtime loader the car uses, agrees with the torch policy on
real observations from the run's track; otherwise no bundle is left behind.

This is the torch side; archiving, importing and running bundles (what the car and the league do)
live in the torch-free racer.bundle package.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import gymnasium as gym
import numpy as np
import openvino as ov
import stable_baselines3
import torch
from openvino import opset13 as ops
from stable_baselines3 import PPO
from torch import nn

import sim
from racer.bundle.archive import check_out_path, clean_leftovers, move_into_place, tmp_prefix
from racer.bundle.files import atomic_write_text
from racer.bundle.format import (BUNDLE_FILE, BUNDLE_FORMAT, BUNDLE_VERSION, CHECKPOINT_FILE, METADATA_FILE, MODEL_XML,
                                 OUTPUT_NAME, TRACKS_DIR, BundleError)
from racer.bundle.hashes import file_hashes
from racer.bundle.runtime import BundlePolicy
from racer.garage import ModelMetadata
from racer.runs import Run, TrainConfig, TrainError, env_kwargs, predict_batch
from sim.errors import InputError
from sim.laps import start_options
from sim.observation import CAMERA_SENSORS, CONTRACT_VERSION, LidarConfig, SensorSuite, observation_shapes

# FP32: as trained.  FP16: weights stored as FP16.  INT8W: the large fully connected layers' weights
# as int8 with one f32 scale per output (4x fewer bytes to stream per call: the DeepRacer CNNs'
# 11264x512 layer is 23 MB in f32); activations and arithmetic stay f32 in all three.
PRECISIONS = ("FP32", "FP16", "INT8W")
INT8_MIN_WEIGHTS = 65536  # MatMul weights with fewer elements stay f32
# discrete: top-2 torch probabilities closer than this are a tie (either argmax is right); reduced
# weight precision moves probabilities by ~1e-5..1e-4 (FP16) and ~5e-4 (INT8W, measured), so ties are wider
TIE = {"FP32": 1e-4, "FP16": 1e-3, "INT8W": 2e-3}
TOLERANCE = {"FP32": 1e-3, "FP16": 2e-2, "INT8W": 2e-2}  # continuous: max abs difference of the Gaussian mean
PARITY_STARTS = 4  # start points the sample observations are recorded from


class ExportError(InputError, RuntimeError):
    """An export that cannot be made or did not verify; nothing was written."""


@dataclass
class Parity:
    samples: int
    mismatches: int
    max_abs_diff: float
    ties: int = 0

    def as_dict(self) -> dict:
        return {"samples": self.samples, "mismatches": self.mismatches, "max_abs_diff": self.max_abs_diff,
                "ties": self.ties}


def policy_module(policy, sensors: tuple[str, ...], discrete: bool) -> nn.Module:
    """A torch module over raw contract tensors (one per sensor, in `sensors` order) -> "action"."""
    class RawObservationPolicy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = policy.pi_features_extractor  # = features_extractor when shared
            self.mlp = policy.mlp_extractor
            self.action_net = policy.action_net
            self.sensors = sensors
            self.cameras = tuple(s in CAMERA_SENSORS for s in sensors)

        def forward(self, *inputs):
            obs = {}
            for name, is_camera, x in zip(self.sensors, self.cameras, inputs):
                obs[name] = x.permute(0, 3, 1, 2) / 255.0 if is_camera else x
            out = self.action_net(self.mlp.forward_actor(self.features(obs)))
            return torch.softmax(out, dim=-1) if discrete else out

    return RawObservationPolicy().eval()


def record_observations(cfg: TrainConfig, car: ModelMetadata, predict, samples: int, starts: int = PARITY_STARTS,
                        seed: int = 0) -> list[dict]:
    """`samples` raw observations met by the deterministic policy in the run's env (evaluation mode)."""
    itself = lambda obs: predict([obs])[0]  # noqa: E731  (self-play runs race the policy itself)
    envs = [gym.make(sim.ENV_ID, mode="evaluation", **env_kwargs(cfg, car, itself)) for _ in range(starts)]
    options = start_options(starts)
    try:
        obs = [env.reset(seed=seed + i, options=o)[0] for i, (env, o) in enumerate(zip(envs, options))]
        out: list[dict] = []
        while len(out) < samples:
            out.extend(obs)
            for i, (env, a) in enumerate(zip(envs, predict(obs))):
                obs[i], _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    obs[i] = env.reset(options=options[i])[0]
    finally:
        for env in envs:
            env.close()
    return out[:samples]


def torch_outputs(policy, obs_list: list[dict], discrete: bool, chunk: int = 64) -> np.ndarray:
    """The SB3 policy's own view (its preprocessing): probabilities or the Gaussian mean."""
    rows = []
    for i in range(0, len(obs_list), chunk):
        part = obs_list[i:i + chunk]
        batch = {k: np.stack([o[k] for o in part]) for k in part[0]}
        with torch.no_grad():
            tensors, _ = policy.obs_to_tensor(batch)
            dist = policy.get_distribution(tensors).distribution
            rows.append((dist.probs if discrete else dist.mean).numpy())
    return np.concatenate(rows).astype(np.float64)


def compare(ref: np.ndarray, ir: np.ndarray, discrete: bool, precision: str) -> tuple[Parity, int | None]:
    """Parity figures and the worst mismatching sample (None when all agree)."""
    diff = np.abs(ref - ir).max(axis=1)
    if discrete:
        top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.concatenate([ref * 0, ref], axis=1)
        tie = (top2[:, 1] - top2[:, 0]) < TIE[precision]
        bad = (np.argmax(ref, axis=1) != np.argmax(ir, axis=1)) & ~tie
        ties = int(tie.sum())
    else:
        bad = diff > TOLERANCE[precision]
        ties = 0
    parity = Parity(len(ref), int(bad.sum()), float(diff.max()) if len(diff) else 0.0, ties)
    worst = int(np.argmax(np.where(bad, diff, -1.0))) if bad.any() else None
    return parity, worst


def compress_int8(model: ov.Model, min_weights: int = INT8_MIN_WEIGHTS) -> int:
    """Replace each MatMul's constant 2-D weight of >= `min_weights` elements by int8 values times a
    per-output-channel f32 scale (symmetric, max |w| -> 127), in place; returns how many.  OpenVINO's
    CPU plugin keeps such weights compressed and decompresses them inside the f32 kernel."""
    done = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "MatMul":
            continue
        const = node.input_value(1).get_node()
        if const.get_type_name() != "Constant":
            continue
        w = np.asarray(const.get_data(), dtype=np.float32)
        if w.ndim != 2 or w.size < min_weights:
            continue
        reduce_axis = 1 if node.get_attributes()["transpose_b"] else 0  # the input dimension
        scale = np.abs(w).max(axis=reduce_axis, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        weights = ops.multiply(ops.convert(ops.constant(q), "f32"), ops.constant(scale.astype(np.float32)))
        node.input(1).replace_source_output(weights.output(0))
        done += 1
    return done


def _convert(module: nn.Module, shapes: dict[str, list[int]], path: Path, precision: str) -> None:
    names = list(shapes)
    example = tuple(torch.rand(*[1 if d < 0 else d for d in shapes[n]]) * (255.0 if n in CAMERA_SENSORS else 1.0)
                    for n in names)
    try:
        model = ov.convert_model(module, example_input=example,
                                 input=[ov.PartialShape(shapes[n]) for n in names])
    except Exception as exc:  # the converter raises many types
        raise ExportError(f"OpenVINO could not convert the policy: {exc}") from exc
    for port, name in zip(model.inputs, names):
        port.get_tensor().set_names({name})
        port.get_node().set_friendly_name(name)
    model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    if precision == "INT8W" and compress_int8(model) == 0:
        raise ExportError("INT8W: the policy has no fully connected layer large enough to compress "
                          f"(>= {INT8_MIN_WEIGHTS} weights); export it as FP32")
    ov.save_model(model, str(path), compress_to_fp16=precision == "FP16")


def _versions() -> dict:
    return {"openvino": ov.__version__, "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__, "racer": metadata.version("racer"),
            "python": platform.python_version()}


def export_run(run_dir: str | Path, out_dir: str | Path, precision: str = "FP32", samples: int = 300,
               overwrite: bool = False) -> Path:
    """Export the run's best checkpoint to the bundle directory `out_dir` at `precision` (one of
    PRECISIONS), verified against the torch policy; returns it."""
    run = Run(run_dir)
    out = Path(out_dir)
    try:
        check_out_path(out, overwrite, sources=(Path(run_dir),))
    except BundleError as exc:
        raise ExportError(str(exc)) from None
    try:
        cfg = run.load_config()
        ckpt = run.model_path("best")
    except TrainError as exc:
        raise ExportError(str(exc)) from None
    car = cfg.car()
    config = json.loads(run.config_file.read_text())
    torch.set_num_threads(1)
    model = PPO.load(ckpt, device="cpu")
    policy = model.policy.eval()
    if getattr(policy, "use_sde", False):
        raise ExportError(f"{ckpt}: gSDE policies are not supported by export")
    discrete = car.action_space_type == "discrete"
    lidar = LidarConfig.from_overrides(car.lidar_config)
    suite_shapes = observation_shapes(SensorSuite(tuple(car.sensors), lidar=lidar))
    shapes = {name: [-1, *suite_shapes[name][0]] for name in car.sensors}
    if precision not in PRECISIONS:
        raise ExportError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")

    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(out), suffix=".tmp", dir=out.parent))
    try:
        _convert(policy_module(policy, tuple(car.sensors), discrete), shapes, tmp / MODEL_XML, precision)
        shutil.copyfile(run.path / METADATA_FILE, tmp / METADATA_FILE)
        shutil.copyfile(ckpt, tmp / CHECKPOINT_FILE)
        track = cfg.track
        if Path(track).suffix == ".npy" and Path(track).is_file():  # a user's track travels with the model
            (tmp / TRACKS_DIR).mkdir()
            shutil.copyfile(track, tmp / TRACKS_DIR / Path(track).name)
            track = f"{TRACKS_DIR}/{Path(track).name}"
        bundle = {
            "format": BUNDLE_FORMAT, "bundle_version": BUNDLE_VERSION, "contract_version": CONTRACT_VERSION,
            "sensors": list(car.sensors), "inputs": shapes, "output": OUTPUT_NAME,
            "action_space_type": car.action_space_type, "action_space": car.action_space.to_metadata(),
            "neural_network": car.neural_network, "track": track, "race": cfg.race,
            "race_config": cfg.race_config, "reverse": cfg.reverse,
            "reward_sha256": config.get("reward_sha256"), "training_steps": int(model.num_timesteps),
            "precision": precision, "versions": _versions(),
            "files": file_hashes(tmp),  # every file; the loader refuses any other
            "parity": None, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(tmp / BUNDLE_FILE, json.dumps(bundle, indent=2) + "\n")

        obs = record_observations(cfg, car, predict_batch(model), samples)
        ref = torch_outputs(policy, obs, discrete)
        try:
            ir_policy = BundlePolicy.load(tmp, sensors=car.sensors)
        except BundleError as exc:
            raise ExportError(f"the exported bundle does not load: {exc}") from None
        # the batched model (evaluation, league) and the batch-1 model (the car) are both checked;
        # per sample, the one further from torch counts
        batched = np.concatenate([ir_policy.outputs_batch(obs[i:i + 64]) for i in range(0, len(obs), 64)])
        single = np.stack([ir_policy.outputs(o) for o in obs])
        further = np.abs(batched - ref).max(axis=1) >= np.abs(single - ref).max(axis=1)
        ir = np.where(further[:, None], batched, single)
        parity, worst = compare(ref, ir.astype(np.float64), discrete, precision)
        if worst is not None:
            what = "argmax differs" if discrete else f"max abs difference above {TOLERANCE[precision]}"
            raise ExportError(
                f"{precision} IR does not match the torch policy: {parity.mismatches} of {parity.samples} "
                f"samples ({what}); worst sample #{worst}: torch {np.round(ref[worst], 6).tolist()} vs "
                f"OpenVINO {np.round(ir[worst], 6).tolist()}; no bundle written")
        bundle["parity"] = parity.as_dict()
        atomic_write_text(tmp / BUNDLE_FILE, json.dumps(bundle, indent=2) + "\n")
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

